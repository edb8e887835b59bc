from datetime import datetime

from django.test import override_settings

from apps.core import clock
from apps.invoices.models import Invoice
from apps.invoices.services import invoice_finalize, subscription_bill_next_period
from apps.subscriptions.models import Subscription
from apps.subscriptions.periods import utc
from apps.subscriptions.tests.factories import make_subscription

DEFAULT_START = utc(2026, 1, 15, 9)


def make_draft_invoice(*, subscription: Subscription | None = None, now: datetime | None = None) -> Invoice:
    """The draft the billing run makes for the subscription's next period (review period on)."""
    subscription = subscription or make_subscription(started_at=DEFAULT_START)
    now = now or subscription.next_billing_at
    with override_settings(INVOICE_DRAFT_GRACE_HOURS=24), clock.frozen_at(now):
        invoice = subscription_bill_next_period(subscription_id=subscription.pk, now=now)
    assert invoice is not None, "the subscription was not due"
    return invoice


def make_open_invoice(*, subscription: Subscription | None = None) -> Invoice:
    """A finalized (open, numbered) invoice."""
    draft = make_draft_invoice(subscription=subscription)
    return invoice_finalize(invoice_id=draft.pk, now=draft.period_start_at)
