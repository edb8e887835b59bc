"""Plan and quantity changes with proration, on real timelines; every line asserted to the cent."""

from decimal import Decimal

import pytest
from django.test import override_settings
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import (
    bill_due_subscriptions,
    subscription_change,
    subscription_change_preview,
    subscription_start,
    subscription_upcoming_invoice,
)
from apps.catalog.tests.factories import PlanFactory
from apps.core.errors import InvalidTransition, ValidationFailed
from apps.invoices.constants import BillingReason, InvoiceStatus
from apps.invoices.models import Invoice, InvoiceItem, TaxRate
from apps.subscriptions.constants import SubscriptionEventType
from apps.subscriptions.models import ScheduledChange
from apps.subscriptions.periods import utc
from apps.subscriptions.services import subscription_cancel

pytestmark = pytest.mark.django_db


APRIL_1 = utc(2026, 4, 1)


def _start(plan, *, quantity=1, at=APRIL_1):
    return subscription_start(
        customer=CustomerFactory(currency="USD"), plan=plan, quantity=quantity, started_at=at, now=at
    )


def _lines(invoice):
    return [(line.kind, line.description, line.amount.amount) for line in invoice.lines.order_by("position")]


def _cycle_invoices(subscription):
    return list(
        Invoice.objects.filter(subscription=subscription, billing_reason=BillingReason.SUBSCRIPTION_CYCLE).order_by(
            "period_start_at"
        )
    )


def test_upgrade_on_day_10_of_a_30_day_period_prorates_onto_the_next_invoice():
    basic = PlanFactory(name="Basic", product__name="Hosting", prices=[Money("30.00", "USD")])
    pro = PlanFactory(name="Pro", product=basic.product, prices=[Money("60.00", "USD")])
    subscription = _start(basic)  # April: 30 days, billed 1 April

    result = subscription_change(subscription_id=subscription.pk, plan=pro, now=utc(2026, 4, 10))

    # 21 of April's 30 days remain: -30.00 × 21/30 and +60.00 × 21/30.
    assert [(line.description, line.amount) for line in result.preview.lines] == [
        ("Unused time on Hosting — Basic ×1", Decimal("-21.00")),
        ("Remaining time on Hosting — Pro ×1", Decimal("42.00")),
    ]
    assert result.invoice is None
    assert InvoiceItem.objects.filter(subscription=subscription, invoice=None).count() == 2

    bill_due_subscriptions(now=utc(2026, 5, 1, 1))

    april, may = _cycle_invoices(subscription)
    assert _lines(may) == [
        ("proration", "Unused time on Hosting — Basic ×1", Decimal("-21.00")),
        ("proration", "Remaining time on Hosting — Pro ×1", Decimal("42.00")),
        ("recurring", "Hosting — Pro (monthly)", Decimal("60.00")),
    ]
    assert may.total == Money("81.00", "USD")
    assert InvoiceItem.objects.filter(subscription=subscription, invoice=None).count() == 0
    assert may.lines.first().period_start_at == utc(2026, 4, 10)  # the credit names the time it covers


@override_settings(INVOICE_DRAFT_GRACE_HOURS=0)
def test_invoice_now_bills_the_proration_at_once_on_its_own_invoice():
    basic = PlanFactory(name="Basic", product__name="Hosting", prices=[Money("30.00", "USD")])
    pro = PlanFactory(name="Pro", product=basic.product, prices=[Money("60.00", "USD")])
    subscription = _start(basic)

    result = subscription_change(
        subscription_id=subscription.pk, plan=pro, proration="invoice_now", now=utc(2026, 4, 10)
    )

    invoice = result.invoice
    assert (invoice.billing_reason, invoice.status, invoice.total) == (
        BillingReason.SUBSCRIPTION_UPDATE,
        InvoiceStatus.OPEN,
        Money("21.00", "USD"),
    )
    assert invoice.number
    assert (invoice.period_start_at, invoice.period_end_at) == (utc(2026, 4, 10), utc(2026, 5, 1))
    bill_due_subscriptions(now=utc(2026, 5, 1, 1))
    assert _lines(_cycle_invoices(subscription)[1]) == [("recurring", "Hosting — Pro (monthly)", Decimal("60.00"))]


def test_downgrade_at_period_end_is_scheduled_and_billed_at_the_new_price_without_proration():
    pro = PlanFactory(name="Pro", product__name="Hosting", prices=[Money("60.00", "USD")])
    basic = PlanFactory(name="Basic", product=pro.product, prices=[Money("30.00", "USD")])
    subscription = _start(pro)

    result = subscription_change(subscription_id=subscription.pk, plan=basic, timing="period_end", now=utc(2026, 4, 10))

    assert result.scheduled_change.effective_at == utc(2026, 5, 1)
    subscription.refresh_from_db()
    assert subscription.plan == pro  # nothing changes before the period ends
    preview = subscription_upcoming_invoice(subscription_id=subscription.pk, now=utc(2026, 4, 20))
    assert [(line.description, line.amount) for line in preview.lines] == [
        ("Hosting — Basic (monthly)", Decimal("30.00"))
    ]

    bill_due_subscriptions(now=utc(2026, 5, 1, 1))

    subscription.refresh_from_db()
    assert subscription.plan == basic
    assert _lines(_cycle_invoices(subscription)[1]) == [("recurring", "Hosting — Basic (monthly)", Decimal("30.00"))]
    assert ScheduledChange.objects.get().applied_at == utc(2026, 5, 1, 1)
    assert list(subscription.events.order_by("id").values_list("type", flat=True))[-2:] == [
        SubscriptionEventType.CHANGE_SCHEDULED,
        SubscriptionEventType.CHANGED,
    ]


def test_three_quantity_changes_in_one_period_are_each_prorated():
    seats = PlanFactory(name="Team", product__name="Chat", prices=[Money("10.00", "USD")])
    subscription = _start(seats, quantity=1)

    for moment, quantity in [(utc(2026, 4, 6), 3), (utc(2026, 4, 16), 2), (utc(2026, 4, 26), 5)]:
        subscription_change(subscription_id=subscription.pk, quantity=quantity, now=moment)
    bill_due_subscriptions(now=utc(2026, 5, 1, 1))

    may = _cycle_invoices(subscription)[1]
    assert [(line.description, line.amount.amount) for line in may.lines.order_by("position")] == [
        ("Unused time on Chat — Team ×1", Decimal("-8.33")),  # 10 × 1 × 25/30
        ("Remaining time on Chat — Team ×3", Decimal("25.00")),  # 10 × 3 × 25/30
        ("Unused time on Chat — Team ×3", Decimal("-15.00")),  # 10 × 3 × 15/30
        ("Remaining time on Chat — Team ×2", Decimal("10.00")),  # 10 × 2 × 15/30
        ("Unused time on Chat — Team ×2", Decimal("-3.33")),  # 10 × 2 × 5/30
        ("Remaining time on Chat — Team ×5", Decimal("8.33")),  # 10 × 5 × 5/30
        ("Chat — Team (monthly)", Decimal("50.00")),
    ]
    assert may.total == Money("66.67", "USD")


def test_no_proration_changes_now_and_bills_the_new_price_next_period():
    seats = PlanFactory(prices=[Money("10.00", "USD")])
    subscription = _start(seats)

    result = subscription_change(subscription_id=subscription.pk, quantity=4, proration="none", now=utc(2026, 4, 10))

    assert result.preview.lines == []
    assert not InvoiceItem.objects.exists()
    bill_due_subscriptions(now=utc(2026, 5, 1, 1))
    assert _cycle_invoices(subscription)[1].total == Money("40.00", "USD")


def test_the_preview_shows_exactly_what_the_change_does_and_writes_nothing():
    basic = PlanFactory(name="Basic", prices=[Money("29.00", "USD")])
    pro = PlanFactory(name="Pro", product=basic.product, prices=[Money("99.00", "USD")])
    subscription = _start(basic)
    events_before = subscription.events.count()

    preview = subscription_change_preview(subscription_id=subscription.pk, plan=pro, now=utc(2026, 4, 10))

    assert [line.amount for line in preview.lines] == [Decimal("-20.30"), Decimal("69.30")]  # 21/30 of each
    assert preview.total == Decimal("49.00")
    subscription.refresh_from_db()
    assert (subscription.plan, subscription.events.count(), InvoiceItem.objects.count()) == (basic, events_before, 0)
    done = subscription_change(subscription_id=subscription.pk, plan=pro, now=utc(2026, 4, 10))
    assert done.preview.lines == preview.lines


@pytest.mark.parametrize(
    ("changes", "error", "field"),
    [
        ({"quantity": 1}, ValidationFailed, "plan"),  # nothing to change
        ({"quantity": 0}, ValidationFailed, "quantity"),
        ({"plan": "yearly"}, ValidationFailed, "plan"),
        ({"plan": "archived"}, ValidationFailed, "plan"),
        ({"plan": "euro_only"}, ValidationFailed, "plan"),
        ({"quantity": 2, "timing": "tomorrow"}, ValidationFailed, "timing"),
        ({"quantity": 2, "proration": "maybe"}, ValidationFailed, "proration"),
    ],
)
def test_invalid_changes_are_refused_and_change_nothing(changes, error, field):
    plan = PlanFactory(prices=[Money("10.00", "USD")])
    plans = {
        "yearly": PlanFactory(interval="year", prices=[Money("100.00", "USD")]),
        "archived": PlanFactory(is_archived=True, prices=[Money("10.00", "USD")]),
        "euro_only": PlanFactory(prices=[Money("10.00", "EUR")]),
    }
    subscription = _start(plan)
    if "plan" in changes:
        changes = {**changes, "plan": plans[changes["plan"]]}

    with pytest.raises(error) as excinfo:
        subscription_change(subscription_id=subscription.pk, now=utc(2026, 4, 10), **changes)

    assert field in excinfo.value.fields
    subscription.refresh_from_db()
    assert (subscription.plan, subscription.quantity) == (plan, 1)
    assert not InvoiceItem.objects.exists()
    assert not subscription.events.filter(type=SubscriptionEventType.CHANGED).exists()


def test_a_canceled_subscription_cannot_change():
    plan = PlanFactory(prices=[Money("10.00", "USD")])
    subscription = _start(plan)
    subscription_cancel(subscription_id=subscription.pk, at_period_end=False, now=utc(2026, 4, 5))

    with pytest.raises(InvalidTransition, match="canceled"):
        subscription_change(subscription_id=subscription.pk, quantity=3, now=utc(2026, 4, 10))
    with pytest.raises(InvalidTransition, match="canceled"):
        subscription_change_preview(subscription_id=subscription.pk, quantity=3, now=utc(2026, 4, 10))
    assert not InvoiceItem.objects.exists()


def test_upcoming_invoice_shows_waiting_prorations_and_the_next_period():
    plan = PlanFactory(name="Team", product__name="Chat", prices=[Money("10.00", "USD")])
    subscription = _start(plan, quantity=2)
    subscription_change(subscription_id=subscription.pk, quantity=3, now=utc(2026, 4, 16))

    upcoming = subscription_upcoming_invoice(subscription_id=subscription.pk, now=utc(2026, 4, 20))

    assert (upcoming.billing_at, upcoming.period_start_at, upcoming.period_end_at) == (
        utc(2026, 5, 1), utc(2026, 5, 1), utc(2026, 6, 1),
    )  # fmt: skip
    assert [(line.kind, line.amount) for line in upcoming.lines] == [
        ("proration", Decimal("-10.00")),
        ("proration", Decimal("15.00")),
        ("recurring", Decimal("30.00")),
    ]
    assert upcoming.total == Decimal("35.00")
    bill_due_subscriptions(now=utc(2026, 5, 1, 1))
    assert _cycle_invoices(subscription)[1].total == Money(upcoming.total, "USD")  # the preview was right


def test_upcoming_invoice_after_a_prorated_increase_then_cancel_at_period_end_is_the_final_invoice():
    """The period is not renewed, but the proration still waiting is billed when the subscription ends:
    its charge on a final invoice, its credit taken off it through the customer's balance, with tax."""
    TaxRate.objects.create(name="VAT", percentage=Decimal("19"), country="DE")
    plan = PlanFactory(name="Team", product__name="Chat", prices=[Money("40.00", "EUR")])
    subscription = subscription_start(
        customer=CustomerFactory(currency="EUR", country="DE"), plan=plan, started_at=APRIL_1, now=APRIL_1
    )
    subscription_change(subscription_id=subscription.pk, quantity=3, now=utc(2026, 4, 16))  # 15 of 30 days left
    subscription_cancel(subscription_id=subscription.pk, at_period_end=True, now=utc(2026, 4, 20))

    upcoming = subscription_upcoming_invoice(subscription_id=subscription.pk, now=utc(2026, 4, 20))

    assert (upcoming.billing_at, upcoming.period_start_at, upcoming.period_end_at) == (
        utc(2026, 5, 1), utc(2026, 4, 16), utc(2026, 5, 1),
    )  # fmt: skip
    assert [(line.kind, line.description, line.amount) for line in upcoming.lines] == [
        ("proration", "Remaining time on Chat — Team ×3", Decimal("60.00")),
        ("proration", "Unused time on Chat — Team ×1", Decimal("-20.00")),
    ]
    assert (upcoming.subtotal, upcoming.tax_total, upcoming.total) == (
        Decimal("40.00"), Decimal("7.60"), Decimal("47.60"),
    )  # fmt: skip
    bill_due_subscriptions(now=utc(2026, 5, 1, 1))
    final = Invoice.objects.get(subscription=subscription, billing_reason=BillingReason.SUBSCRIPTION_UPDATE)
    assert _lines(final) == [(line.kind, line.description, line.amount) for line in upcoming.lines]
    assert (final.subtotal, final.tax_total, final.total) == (
        Money("40.00", "EUR"), Money("7.60", "EUR"), Money("47.60", "EUR"),
    )  # fmt: skip


def test_upcoming_invoice_of_a_subscription_canceled_at_period_end_with_nothing_left_to_bill():
    plan = PlanFactory(prices=[Money("40.00", "USD")])
    subscription = _start(plan)
    subscription_cancel(subscription_id=subscription.pk, at_period_end=True, now=utc(2026, 4, 20))

    with pytest.raises(ValidationFailed, match="no invoice is coming") as excinfo:
        subscription_upcoming_invoice(subscription_id=subscription.pk, now=utc(2026, 4, 20))

    assert excinfo.value.fields == {"subscription": ["The subscription is canceled at period end."]}
    bill_due_subscriptions(now=utc(2026, 5, 1, 1))
    assert list(Invoice.objects.filter(subscription=subscription)) == _cycle_invoices(subscription)  # April's only


def test_a_change_can_be_dated_back_within_the_current_period():
    seats = PlanFactory(prices=[Money("30.00", "USD")])
    subscription = _start(seats)

    result = subscription_change(
        subscription_id=subscription.pk, quantity=2, effective_at=utc(2026, 4, 11), now=utc(2026, 4, 20)
    )

    assert [line.amount for line in result.preview.lines] == [Decimal("-20.00"), Decimal("40.00")]  # 20 of 30 days
    assert result.preview.effective_at == utc(2026, 4, 11)


@pytest.mark.parametrize(
    ("effective_at", "message"),
    [
        (utc(2026, 3, 31), "already invoiced and closed"),
        (utc(2026, 4, 25), "cannot be dated in the future"),
    ],
)
def test_a_change_dated_in_a_closed_period_or_the_future_is_refused(effective_at, message):
    seats = PlanFactory(prices=[Money("30.00", "USD")])
    subscription = _start(seats)
    subscription_start(customer=CustomerFactory(), plan=seats, now=utc(2026, 3, 1))  # unrelated

    with pytest.raises(ValidationFailed, match=message) as excinfo:
        subscription_change(
            subscription_id=subscription.pk, quantity=2, effective_at=effective_at, now=utc(2026, 4, 20)
        )

    assert list(excinfo.value.fields) == ["effective_at"]
    subscription.refresh_from_db()
    assert subscription.quantity == 1
    assert not InvoiceItem.objects.exists()


def test_a_quantity_change_leaves_charges_that_do_not_depend_on_it_alone():
    from apps.catalog.models import PlanVersion
    from apps.catalog.tests.factories import add_charge

    plan = PlanFactory(prices=[], name="Team", product__name="Chat")
    version = PlanVersion.objects.create(plan=plan, number=1)
    add_charge(version, name="Platform fee", price_model="flat", amount=Decimal("49"))
    add_charge(version, name="Seats", price_model="per_unit", amount=Decimal("10"))
    subscription = _start(plan, quantity=2)

    result = subscription_change(subscription_id=subscription.pk, quantity=3, now=utc(2026, 4, 16, 12))

    assert [(line.description, line.amount) for line in result.preview.lines] == [
        ("Unused time on Chat — Team: Seats ×2", Decimal("-9.67")),  # 20.00 × 14.5/30
        ("Remaining time on Chat — Team: Seats ×3", Decimal("14.50")),
    ]
    assert result.preview.lines[0].explanation == (
        "20.00 USD per period × 48.33 % of the period (14 days 12 h of 30 days)",
    )
