from decimal import Decimal

import pytest
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import bill_due_subscriptions, subscription_change, subscription_start
from apps.catalog.tests.factories import PlanFactory
from apps.core.errors import ValidationFailed
from apps.invoices.models import Invoice
from apps.subscriptions.models import Subscription
from apps.subscriptions.periods import utc

pytestmark = pytest.mark.django_db


def _invoices(subscription):
    return list(Invoice.objects.filter(subscription=subscription).order_by("period_start_at"))


def test_calendar_billing_customer_starting_on_the_17th_gets_a_prorated_first_period():
    plan = PlanFactory(name="Pro", product__name="Hosting", prices=[Money("31.00", "USD")])

    subscription = subscription_start(
        customer=CustomerFactory(currency="USD"), plan=plan, billing_cycle_day=1,
        started_at=utc(2026, 3, 17, 10), now=utc(2026, 3, 17, 10),
    )  # fmt: skip
    bill_due_subscriptions(now=utc(2026, 4, 1, 0, 30))

    first, second = _invoices(subscription)
    # 17 Mar 10:00 → 1 Apr 00:00 is 350 of March's 744 hours: 31.00 × 350/744 = 14.5833… → 14.58.
    assert (first.period_start_at, first.period_end_at, first.total) == (
        utc(2026, 3, 17, 10), utc(2026, 4, 1), Money("14.58", "USD"),
    )  # fmt: skip
    [line] = first.lines.all()
    assert line.description == "Hosting — Pro (monthly, partial period)"
    assert line.unit_amount is None
    assert line.explanation[-1] == "Partial period: 31.00 USD × 47.04 % of the period (175/372 of its seconds)"
    assert (second.period_start_at, second.period_end_at, second.total) == (
        utc(2026, 4, 1), utc(2026, 5, 1), Money("31.00", "USD"),
    )  # fmt: skip


def test_calendar_billing_after_a_trial_prorates_from_the_trial_end():
    plan = PlanFactory(trial_days=14, prices=[Money("30.00", "USD")])

    subscription = subscription_start(
        customer=CustomerFactory(currency="USD"), plan=plan, billing_cycle_day=1, now=utc(2026, 4, 6)
    )
    bill_due_subscriptions(now=utc(2026, 5, 1, 1))

    first, second = _invoices(subscription)
    # Trial 6–20 April; then 20 Apr → 1 May is 11 of April's 30 days: 30.00 × 11/30 = 11.00.
    assert (first.period_start_at, first.total) == (utc(2026, 4, 20), Money("11.00", "USD"))
    assert (second.period_start_at, second.total) == (utc(2026, 5, 1), Money("30.00", "USD"))


def test_a_change_in_a_partial_first_period_credits_what_was_charged():
    basic = PlanFactory(name="Basic", prices=[Money("31.00", "USD")])
    pro = PlanFactory(name="Pro", product=basic.product, prices=[Money("62.00", "USD")])
    subscription = subscription_start(
        customer=CustomerFactory(currency="USD"), plan=basic, billing_cycle_day=1, now=utc(2026, 3, 17)
    )
    assert _invoices(subscription)[0].total == Money("15.00", "USD")  # 15 of 31 days

    result = subscription_change(subscription_id=subscription.pk, plan=pro, now=utc(2026, 3, 17))

    assert [line.amount for line in result.preview.lines] == [Decimal("-15.00"), Decimal("30.00")]


@pytest.mark.parametrize(("day", "interval"), [(0, "month"), (29, "month"), (5, "year")])
def test_bad_billing_days_are_refused(day, interval):
    plan = PlanFactory(interval=interval)
    with pytest.raises(ValidationFailed) as excinfo:
        subscription_start(customer=CustomerFactory(), plan=plan, billing_cycle_day=day, now=utc(2026, 3, 17))
    assert list(excinfo.value.fields) == ["billing_cycle_day"]
    assert not Subscription.objects.exists()


def test_leap_year_february_upgrade_prorates_by_29_days():
    basic = PlanFactory(name="Basic", prices=[Money("29.00", "USD")])
    pro = PlanFactory(name="Pro", product=basic.product, prices=[Money("58.00", "USD")])
    subscription = subscription_start(customer=CustomerFactory(currency="USD"), plan=basic, now=utc(2028, 2, 1))

    result = subscription_change(subscription_id=subscription.pk, plan=pro, now=utc(2028, 2, 15))
    bill_due_subscriptions(now=utc(2028, 3, 1, 1))

    # 15 of February 2028's 29 days remain.
    assert [line.amount for line in result.preview.lines] == [Decimal("-15.00"), Decimal("30.00")]
    march = _invoices(subscription)[1]
    assert (march.period_start_at, march.period_end_at, march.total) == (
        utc(2028, 3, 1), utc(2028, 4, 1), Money("73.00", "USD"),
    )  # fmt: skip
