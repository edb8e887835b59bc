from decimal import Decimal

import pytest
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import (
    bill_due_subscriptions,
    subscription_change,
    subscription_pause,
    subscription_resume,
    subscription_start,
)
from apps.catalog.tests.factories import PlanFactory
from apps.core.errors import InvalidTransition
from apps.invoices.models import Invoice, InvoiceItem
from apps.subscriptions.constants import SubscriptionEventType, SubscriptionStatus
from apps.subscriptions.periods import utc
from apps.subscriptions.services import subscription_cancel, subscription_cancel_undo

pytestmark = pytest.mark.django_db


def _start():
    plan = PlanFactory(name="Team", product__name="Chat", prices=[Money("30.00", "USD")])
    return subscription_start(customer=CustomerFactory(currency="USD"), plan=plan, now=utc(2026, 4, 1))


def test_pause_credits_the_unused_time_bills_nothing_and_resume_starts_a_new_period():
    subscription = _start()

    paused = subscription_pause(subscription_id=subscription.pk, now=utc(2026, 4, 11))  # 20 of 30 days unused

    assert [(line.description, line.amount) for line in paused.preview.lines] == [
        ("Unused time on Chat — Team ×1", Decimal("-20.00"))
    ]
    subscription.refresh_from_db()
    assert (subscription.status, subscription.paused_at) == (SubscriptionStatus.PAUSED, utc(2026, 4, 11))
    assert bill_due_subscriptions(now=utc(2026, 6, 1)).due_count == 0  # nothing billed while paused

    resumed = subscription_resume(subscription_id=subscription.pk, now=utc(2026, 6, 10, 12))

    invoice = resumed.invoice
    assert (invoice.period_start_at, invoice.period_end_at) == (utc(2026, 6, 10, 12), utc(2026, 7, 10, 12))
    assert [(line.kind, line.amount.amount) for line in invoice.lines.order_by("position")] == [
        ("proration", Decimal("-20.00")),
        ("recurring", Decimal("30.00")),
    ]
    assert invoice.total == Money("10.00", "USD")
    subscription.refresh_from_db()
    assert (subscription.status, subscription.billing_anchor_at, subscription.next_billing_at) == (
        SubscriptionStatus.ACTIVE, utc(2026, 6, 10, 12), utc(2026, 7, 10, 12),
    )  # fmt: skip
    assert list(subscription.events.order_by("id").values_list("type", flat=True))[-2:] == [
        SubscriptionEventType.PAUSED,
        SubscriptionEventType.RESUMED,
    ]


def test_pause_without_proration_credits_nothing():
    subscription = _start()
    subscription_pause(subscription_id=subscription.pk, prorate=False, now=utc(2026, 4, 11))
    assert not InvoiceItem.objects.exists()


def test_invalid_pause_and_resume_are_refused_and_change_nothing():
    subscription = _start()
    with pytest.raises(InvalidTransition, match="not paused"):
        subscription_resume(subscription_id=subscription.pk, now=utc(2026, 4, 5))

    subscription_cancel(subscription_id=subscription.pk, at_period_end=True, now=utc(2026, 4, 5))
    with pytest.raises(InvalidTransition, match="ends with this period"):
        subscription_pause(subscription_id=subscription.pk, now=utc(2026, 4, 6))
    subscription_cancel_undo(subscription_id=subscription.pk, now=utc(2026, 4, 7))

    subscription_pause(subscription_id=subscription.pk, now=utc(2026, 4, 8))
    with pytest.raises(InvalidTransition, match="paused"):
        subscription_cancel(subscription_id=subscription.pk, at_period_end=True, now=utc(2026, 4, 9))
    subscription_cancel(subscription_id=subscription.pk, at_period_end=False, now=utc(2026, 4, 9))
    with pytest.raises(InvalidTransition):
        subscription_resume(subscription_id=subscription.pk, now=utc(2026, 4, 10))  # resume a canceled one
    with pytest.raises(InvalidTransition, match="canceled"):
        subscription_change(subscription_id=subscription.pk, quantity=2, now=utc(2026, 4, 10))

    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.CANCELED
    assert Invoice.objects.filter(subscription=subscription).count() == 1


def test_changes_while_paused_are_not_prorated():
    subscription = _start()
    subscription_pause(subscription_id=subscription.pk, prorate=False, now=utc(2026, 4, 11))

    result = subscription_change(subscription_id=subscription.pk, quantity=2, now=utc(2026, 4, 20))

    assert result.preview.lines == []
    assert subscription_resume(subscription_id=subscription.pk, now=utc(2026, 5, 1)).invoice.total == Money(
        "60.00", "USD"
    )
