"""Invoicing waiting items at once: the proration of a change billed `invoice_now`, and what is left
waiting when a subscription ends."""

from datetime import datetime, timedelta

from django.conf import settings

from apps.core.money import zero
from apps.invoices.constants import BillingReason, InvoiceEventType, InvoiceStatus
from apps.invoices.events import invoice_event_record
from apps.invoices.models import Invoice, InvoicedPeriod, InvoiceItem, InvoiceLine
from apps.invoices.services.lifecycle import (
    TOTALS_FIELDS,
    bill_language,
    invoice_finalize,
    invoice_recompute_totals,
)
from apps.subscriptions.constants import SubscriptionStatus
from apps.subscriptions.models import Subscription
from apps.usage.services import usage_billing_lock

from .closeout import period_stretches, segments_mark_billed, stretch_line_drafts, subscription_open_segments
from .commitments import commitment_true_up_drafts
from .late_usage import late_usage_line_drafts
from .lines import (
    LineDraft,
    customer_credit_drafts,
    customer_credit_take,
    invoice_lines_from_drafts,
    item_line_draft,
)
from .progressive import progressive_deduction_drafts, progressive_deductions_mark


def invoice_items_invoice_now(
    *,
    subscription: Subscription,
    items: list[InvoiceItem],
    drafts: list[LineDraft],
    period_start_at: datetime | None,
    period_end_at: datetime | None,
    now: datetime,
    crossing_ids: list[int] | None = None,
) -> Invoice:
    """An invoice of its own (`billing_reason = subscription_update`) for these items, finalized at
    once unless drafts wait for review. `crossing_ids`: the progressive-billing crossings whose interim
    invoices it deducts (recorded before its tax is computed: it completes theirs)."""
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
    if crossing_ids is not None:
        progressive_deductions_mark(crossing_ids=crossing_ids, invoice=invoice, subscription_ids=[subscription.pk])
    invoice_recompute_totals(invoice)
    invoice.save(update_fields=TOTALS_FIELDS)
    invoice_event_record(
        invoice=invoice, type=InvoiceEventType.CREATED, occurred_at=now,
        data={"subscription": subscription.pk, "reason": BillingReason.SUBSCRIPTION_UPDATE},
    )  # fmt: skip
    if settings.INVOICE_DRAFT_GRACE_HOURS == 0:
        invoice = invoice_finalize(invoice_id=invoice.pk, now=now)
    return invoice


def subscription_settle_waiting_items(*, subscription_id: int, now: datetime) -> Invoice | None:
    """When a subscription ends, nothing it still owes or is owed is lost: the usage of its last
    period and the charges still waiting for its next invoice go on a final invoice of their own, and
    its waiting credits move to the customer's account, taken off that final invoice first and then off
    the customer's next invoices (never below zero)."""
    subscription = Subscription.objects.select_related("customer", "plan__product", "plan_version").get(
        pk=subscription_id
    )
    items = list(InvoiceItem.objects.select_for_update().filter(subscription=subscription, invoice__isnull=True))
    charges = [item for item in items if item.amount.amount >= 0]
    credits = [item for item in items if item.amount.amount < 0]
    if credits:
        InvoiceItem.objects.filter(pk__in=[item.pk for item in credits]).update(subscription=None)
    drafts = [item_line_draft(item) for item in charges]
    ended_at = subscription.ended_at or now
    # The stretches closed by changes inside the period, then (when the period was billed: not a
    # trial) the rest of it up to the end, each at its own prices: usage and fees billed in arrears.
    segments = subscription_open_segments(subscription, lock=True)
    period_billed = InvoicedPeriod.objects.filter(
        subscription=subscription, period_start_at=subscription.current_period_start_at
    ).exists()
    # (A paused subscription's time since its pause is not billed: its stretch closed when it paused.)
    end = min(ended_at, subscription.current_period_end_at, subscription.paused_at or ended_at)
    period_drafts: list[LineDraft] = []
    if period_billed or segments:
        usage_billing_lock(customer_id=subscription.customer_id)
        stretches = period_stretches(subscription, segments=segments, end=end if period_billed else None)
        with bill_language(subscription.customer):
            period_drafts = stretch_line_drafts(
                subscription=subscription, stretches=stretches, currency=subscription.currency
            )
        drafts += period_drafts
    # Progressive billing: the interim invoices of the period (its usage was billed in full just above).
    deductions, crossing_ids = progressive_deduction_drafts(
        subscription, before=ended_at + timedelta(microseconds=1), usage=period_drafts, lock=True
    )
    if period_billed:
        # The plan's minimum commitment for the part of the period before the end (credits for its
        # unused time count, though they go to the customer's balance).
        drafts += commitment_true_up_drafts(
            subscription=subscription, plan=subscription.plan, version=subscription.plan_version,
            currency=subscription.currency, start=subscription.current_period_start_at, end=end,
            drafts=drafts + [item_line_draft(item) for item in credits],
        )  # fmt: skip
    # Usage changed in periods already invoiced (late events, corrections): on this last invoice.
    drafts += late_usage_line_drafts(subscription=subscription, billed_from=ended_at, now=now)
    drafts += deductions
    if not drafts and not _last_chance_for_pending_charges(subscription):
        return None
    credit_drafts, uses = customer_credit_drafts(
        customer_id=subscription.customer_id, currency=subscription.currency, drafts=drafts, lock=True
    )
    if not drafts and not credit_drafts:
        return None
    starts = [draft.period_start_at for draft in drafts if draft.period_start_at is not None]
    ends = [draft.period_end_at for draft in drafts if draft.period_end_at is not None]
    invoice = invoice_items_invoice_now(
        subscription=subscription, items=charges, drafts=drafts + credit_drafts,
        period_start_at=min(starts, default=None), period_end_at=max(ends, default=None), now=now,
        crossing_ids=crossing_ids,
    )  # fmt: skip
    customer_credit_take(uses, invoice=invoice)
    segments_mark_billed([segment.pk for segment in segments], now=now)
    return invoice


def _last_chance_for_pending_charges(subscription: Subscription) -> bool:
    """Whether the customer's pending one-off charges must go on this subscription's final invoice even
    though it has nothing else to bill: no other subscription of the customer in its currency will make
    another invoice for them."""
    pending = InvoiceItem.objects.filter(
        customer_id=subscription.customer_id, subscription__isnull=True, invoice__isnull=True,
        amount_currency=subscription.currency, amount__gte=0,
    ).exists()  # fmt: skip
    if not pending:
        return False
    others = Subscription.objects.filter(customer_id=subscription.customer_id, currency=subscription.currency)
    return not others.exclude(pk=subscription.pk).exclude(status=SubscriptionStatus.CANCELED).exists()
