"""Invoicing waiting items at once: the proration of a change billed `invoice_now`, and what is left
waiting when a subscription ends."""

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings

from apps.core.money import zero
from apps.subscriptions.models import Subscription

from ..constants import BillingReason, InvoiceEventType, InvoiceStatus
from ..events import invoice_event_record
from ..models import Invoice, InvoiceItem, InvoiceLine
from .lifecycle import invoice_finalize, invoice_recompute_totals
from .lines import LineDraft, invoice_lines_from_drafts, item_line_draft


def invoice_items_invoice_now(
    *,
    subscription: Subscription,
    items: list[InvoiceItem],
    drafts: list[LineDraft],
    period_start_at: datetime | None,
    period_end_at: datetime | None,
    now: datetime,
) -> Invoice:
    """An invoice of its own (`billing_reason = subscription_update`) for these items, finalized at
    once unless drafts wait for review."""
    currency = subscription.currency
    if period_start_at is not None and period_end_at is not None and period_end_at <= period_start_at:
        period_start_at = period_end_at = None
    invoice = Invoice.objects.create(
        customer=subscription.customer,
        subscription=subscription,
        billing_reason=BillingReason.SUBSCRIPTION_UPDATE,
        status=InvoiceStatus.DRAFT,
        period_start_at=period_start_at,
        period_end_at=period_end_at,
        subtotal=zero(currency),
        tax_total=zero(currency),
        total=zero(currency),
        auto_finalize_at=now + timedelta(hours=settings.INVOICE_DRAFT_GRACE_HOURS),
    )
    InvoiceLine.objects.bulk_create(invoice_lines_from_drafts(invoice, drafts))
    InvoiceItem.objects.filter(pk__in=[item.pk for item in items]).update(invoice=invoice)
    invoice_recompute_totals(invoice)
    invoice.save(update_fields=["subtotal", "subtotal_currency", "total", "total_currency"])
    invoice_event_record(
        invoice=invoice, type=InvoiceEventType.CREATED, occurred_at=now,
        data={"subscription": subscription.pk, "reason": BillingReason.SUBSCRIPTION_UPDATE},
    )  # fmt: skip
    if settings.INVOICE_DRAFT_GRACE_HOURS == 0:
        invoice = invoice_finalize(invoice_id=invoice.pk, now=now)
    return invoice


def subscription_settle_waiting_items(*, subscription_id: int, now: datetime) -> Invoice | None:
    """When a subscription ends, what still waits for its next invoice (prorations, a pause credit)
    must not be lost: charges that outweigh credits are invoiced at once on a final invoice; a net
    credit moves to the customer's account and is taken off the customer's next invoices."""
    subscription = Subscription.objects.select_related("customer").get(pk=subscription_id)
    items = list(InvoiceItem.objects.select_for_update().filter(subscription=subscription, invoice__isnull=True))
    if not items:
        return None
    total = sum((item.amount.amount for item in items), Decimal(0))
    if total <= 0:
        InvoiceItem.objects.filter(pk__in=[item.pk for item in items]).update(subscription=None)
        return None
    starts = [item.period_start_at for item in items if item.period_start_at is not None]
    ends = [item.period_end_at for item in items if item.period_end_at is not None]
    return invoice_items_invoice_now(
        subscription=subscription, items=items, drafts=[item_line_draft(item) for item in items],
        period_start_at=min(starts, default=None), period_end_at=max(ends, default=None), now=now,
    )  # fmt: skip
