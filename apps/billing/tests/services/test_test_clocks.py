"""Test clocks walk real timelines: advancing the clock runs what would have happened, in order."""

from decimal import Decimal

import pytest
from djmoney.money import Money

from apps.accounts.services import simulated_clock_create
from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import bill_due_subscriptions, subscription_change, subscription_start
from apps.billing.services.simulated_clocks import simulated_clock_advance
from apps.catalog.tests.factories import PlanFactory
from apps.core.errors import ValidationFailed
from apps.invoices.constants import BillingRunTrigger
from apps.invoices.models import BillingRun, Invoice
from apps.subscriptions.constants import SubscriptionEventType, SubscriptionStatus
from apps.subscriptions.periods import utc
from apps.subscriptions.services import subscription_cancel, subscription_cancel_undo

pytestmark = pytest.mark.django_db


def _cycle_totals(subscription):
    return [
        (invoice.period_start_at, invoice.total)
        for invoice in Invoice.objects.filter(subscription=subscription).order_by("period_start_at")
    ]


def test_a_trial_an_upgrade_and_an_undone_cancellation_on_a_test_clock():
    clock = simulated_clock_create(name="Trial walk-through", frozen_at=utc(2026, 1, 20, 9))
    customer = CustomerFactory(currency="USD", test_clock=clock)
    basic = PlanFactory(name="Basic", product__name="Hosting", trial_days=14, prices=[Money("28.00", "USD")])
    pro = PlanFactory(name="Pro", product=basic.product, prices=[Money("56.00", "USD")])

    subscription = subscription_start(customer=customer, plan=basic)  # at the clock's time
    assert (subscription.started_at, subscription.status) == (utc(2026, 1, 20, 9), SubscriptionStatus.TRIALING)

    simulated_clock_advance(test_clock_id=clock.pk, to=utc(2026, 2, 13, 9))  # the trial ended on 3 Feb
    assert _cycle_totals(subscription) == [(utc(2026, 2, 3, 9), Money("28.00", "USD"))]

    # Day 10 of the 28-day period 3 Feb → 3 Mar, at the clock's time: 18 of 28 days remain.
    change = subscription_change(subscription_id=subscription.pk, plan=pro)
    assert [line.amount for line in change.preview.lines] == [Decimal("-18.00"), Decimal("36.00")]
    subscription_cancel(subscription_id=subscription.pk, at_period_end=True)
    subscription_cancel_undo(subscription_id=subscription.pk)

    clock = simulated_clock_advance(test_clock_id=clock.pk, to=utc(2026, 4, 10))

    assert clock.frozen_at == utc(2026, 4, 10)
    assert _cycle_totals(subscription) == [
        (utc(2026, 2, 3, 9), Money("28.00", "USD")),
        (utc(2026, 3, 3, 9), Money("74.00", "USD")),  # -18.00 + 36.00 + 56.00
        (utc(2026, 4, 3, 9), Money("56.00", "USD")),
    ]
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    events = list(subscription.events.order_by("id").values_list("type", "occurred_at"))
    assert events == [
        (SubscriptionEventType.CREATED, utc(2026, 1, 20, 9)),
        (SubscriptionEventType.TRIAL_ENDED, utc(2026, 2, 3, 9)),
        (SubscriptionEventType.CHANGED, utc(2026, 2, 13, 9)),
        (SubscriptionEventType.CANCELLATION_SCHEDULED, utc(2026, 2, 13, 9)),
        (SubscriptionEventType.CANCELLATION_UNDONE, utc(2026, 2, 13, 9)),
    ]
    runs = BillingRun.objects.filter(test_clock=clock).order_by("as_of")
    assert [run.as_of for run in runs] == [utc(2026, 2, 3, 9), utc(2026, 2, 13, 9), utc(2026, 3, 3, 9),
                                           utc(2026, 4, 3, 9), utc(2026, 4, 10)]  # fmt: skip
    assert {run.trigger for run in runs} == {BillingRunTrigger.TEST_CLOCK}


def test_a_cancellation_at_period_end_ends_when_the_clock_passes_it():
    clock = simulated_clock_create(name="Cancel", frozen_at=utc(2026, 1, 1))
    subscription = subscription_start(
        customer=CustomerFactory(currency="USD", test_clock=clock), plan=PlanFactory(prices=[Money("10", "USD")])
    )
    subscription_cancel(subscription_id=subscription.pk, at_period_end=True)

    simulated_clock_advance(test_clock_id=clock.pk, to=utc(2026, 6, 1))

    subscription.refresh_from_db()
    assert (subscription.status, subscription.ended_at) == (SubscriptionStatus.CANCELED, utc(2026, 2, 1))
    assert len(_cycle_totals(subscription)) == 1


def test_production_runs_leave_test_clock_customers_alone():
    clock = simulated_clock_create(name="Isolated", frozen_at=utc(2026, 1, 1))
    on_clock = subscription_start(
        customer=CustomerFactory(currency="USD", test_clock=clock), plan=PlanFactory(prices=[Money("10", "USD")])
    )
    real = subscription_start(
        customer=CustomerFactory(currency="USD"), plan=PlanFactory(prices=[Money("10", "USD")]), now=utc(2026, 1, 1)
    )

    run = bill_due_subscriptions(now=utc(2026, 3, 1, 1))

    assert (run.invoiced_count, len(_cycle_totals(real)), len(_cycle_totals(on_clock))) == (2, 3, 1)


@pytest.mark.parametrize("to", [utc(2025, 12, 31), utc(2026, 1, 1), utc(2032, 1, 1)])
def test_a_clock_only_moves_forward_and_not_too_far(to):
    clock = simulated_clock_create(name="Bounds", frozen_at=utc(2026, 1, 1))

    with pytest.raises(ValidationFailed) as excinfo:
        simulated_clock_advance(test_clock_id=clock.pk, to=to)

    assert list(excinfo.value.fields) == ["frozen_at"]
    clock.refresh_from_db()
    assert clock.frozen_at == utc(2026, 1, 1)


def _on_clock(start):
    clock = simulated_clock_create(name="Timeline", frozen_at=start)
    return clock, CustomerFactory(currency="USD", test_clock=clock)


def test_downgrade_at_period_end_on_a_test_clock():
    clock, customer = _on_clock(utc(2026, 4, 1))
    pro = PlanFactory(name="Pro", product__name="Hosting", prices=[Money("60.00", "USD")])
    basic = PlanFactory(name="Basic", product=pro.product, prices=[Money("30.00", "USD")])
    subscription = subscription_start(customer=customer, plan=pro)
    simulated_clock_advance(test_clock_id=clock.pk, to=utc(2026, 4, 20))

    subscription_change(subscription_id=subscription.pk, plan=basic, timing="period_end")
    simulated_clock_advance(test_clock_id=clock.pk, to=utc(2026, 6, 15))

    assert _cycle_totals(subscription) == [
        (utc(2026, 4, 1), Money("60.00", "USD")),
        (utc(2026, 5, 1), Money("30.00", "USD")),
        (utc(2026, 6, 1), Money("30.00", "USD")),
    ]


def test_three_quantity_changes_in_one_period_on_a_test_clock():
    clock, customer = _on_clock(utc(2026, 4, 1))
    subscription = subscription_start(customer=customer, plan=PlanFactory(prices=[Money("10.00", "USD")]))

    for moment, quantity in [(utc(2026, 4, 6), 3), (utc(2026, 4, 16), 2), (utc(2026, 4, 26), 5)]:
        simulated_clock_advance(test_clock_id=clock.pk, to=moment)
        subscription_change(subscription_id=subscription.pk, quantity=quantity)
    simulated_clock_advance(test_clock_id=clock.pk, to=utc(2026, 5, 2))

    may = Invoice.objects.get(subscription=subscription, period_start_at=utc(2026, 5, 1))
    assert [line.amount.amount for line in may.lines.order_by("position")] == [
        Decimal("-8.33"), Decimal("25.00"), Decimal("-15.00"), Decimal("10.00"), Decimal("-3.33"), Decimal("8.33"),
        Decimal("50.00"),
    ]  # fmt: skip
    assert may.total == Money("66.67", "USD")


def test_calendar_billing_from_the_17th_on_a_test_clock():
    clock, customer = _on_clock(utc(2026, 3, 17, 10))
    subscription = subscription_start(
        customer=customer, plan=PlanFactory(prices=[Money("31.00", "USD")]), billing_cycle_day=1
    )

    simulated_clock_advance(test_clock_id=clock.pk, to=utc(2026, 5, 5))

    assert _cycle_totals(subscription) == [
        (utc(2026, 3, 17, 10), Money("14.58", "USD")),
        (utc(2026, 4, 1), Money("31.00", "USD")),
        (utc(2026, 5, 1), Money("31.00", "USD")),
    ]


def test_leap_year_february_on_a_test_clock():
    clock, customer = _on_clock(utc(2028, 1, 31))
    subscription = subscription_start(customer=customer, plan=PlanFactory(prices=[Money("29.00", "USD")]))

    simulated_clock_advance(test_clock_id=clock.pk, to=utc(2028, 4, 1))

    # Anchored on 31 January: periods end on 29 February (a leap year), 31 March, 30 April.
    assert [
        (invoice.period_start_at, invoice.period_end_at)
        for invoice in Invoice.objects.filter(subscription=subscription).order_by("period_start_at")
    ] == [
        (utc(2028, 1, 31), utc(2028, 2, 29)),
        (utc(2028, 2, 29), utc(2028, 3, 31)),
        (utc(2028, 3, 31), utc(2028, 4, 30)),
    ]


def test_a_subscription_starting_in_the_future_is_billed_when_it_starts():
    clock, customer = _on_clock(utc(2026, 1, 10))
    subscription = subscription_start(
        customer=customer, plan=PlanFactory(prices=[Money("10.00", "USD")]), started_at=utc(2026, 2, 1)
    )
    assert _cycle_totals(subscription) == []

    simulated_clock_advance(test_clock_id=clock.pk, to=utc(2026, 2, 1, 1))

    assert _cycle_totals(subscription) == [(utc(2026, 2, 1), Money("10.00", "USD"))]
