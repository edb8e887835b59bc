"""Changing a subscription's plan or quantity, with the proration behaviour the caller picks, and
the previews that show the money before anything changes.

- `now` + `prorate`: the change applies at once; the credit for the unused time and the charge for
  the remaining time wait as invoice items for the next invoice.
- `now` + `invoice_now`: the same lines, invoiced at once on their own invoice.
- `now` + `none`: the change applies at once; nothing is prorated (the next period is billed at the
  new price).
- `period_end`: the change is scheduled; the billing run applies it when the next period begins
  (nothing to prorate).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from django.db import transaction
from django.utils.translation import gettext

from apps.billing.constants import ChangeTiming, ProrationBehavior
from apps.catalog.models import Plan
from apps.core import clock
from apps.core.audit import audited_with_reason
from apps.core.errors import ApplicationError, InvalidTransition, NotFound, ValidationFailed
from apps.core.money import quantize_amount
from apps.invoices.constants import InvoiceLineKind, InvoiceStatus
from apps.invoices.models import Invoice, InvoicedPeriod, InvoiceItem, ProgressiveCrossing
from apps.invoices.pricing import TaxAmount, tax_added
from apps.invoices.selectors import subscription_period_invoices
from apps.invoices.services.lifecycle import bill_language
from apps.invoices.services.taxes import customer_tax_breakdown, interim_invoice_taxes, is_taxed_kind
from apps.subscriptions.constants import SubscriptionEventType, SubscriptionStatus
from apps.subscriptions.models import ScheduledChange, Subscription, SubscriptionSegment
from apps.subscriptions.periods import Period, period_containing
from apps.subscriptions.selectors import discounts_applicable
from apps.subscriptions.services import (
    subscription_apply_change,
    subscription_change_target,
    subscription_lock,
    subscription_mark_paused,
    subscription_mark_resumed,
    subscription_now,
    subscription_schedule_change,
    subscription_segment_close,
)
from apps.subscriptions.services import (
    subscription_cancel as subscription_mark_canceled,
)

from .billing import subscription_bill_due
from .closeout import period_stretches, stretch_line_drafts, subscription_open_segments
from .commitments import commitment_true_up_drafts
from .late_usage import late_usage_line_drafts
from .lines import (
    LineDraft,
    customer_credit_drafts,
    discount_line_drafts,
    invoice_item_from_draft,
    invoice_span,
    item_line_draft,
    proration_line_drafts,
    recurring_line_drafts,
)
from .progressive import progressive_deduction_drafts
from .settlement import invoice_items_invoice_now, subscription_settle_waiting_items

CHARGED_KINDS = frozenset({InvoiceLineKind.RECURRING, InvoiceLineKind.MINIMUM})


@dataclass(frozen=True)
class ChangePreview:
    """What a change would do: its proration lines (and whether they are invoiced at once)."""

    currency: str
    timing: str
    proration: str
    effective_at: datetime
    lines: list[LineDraft]
    total: Decimal
    invoiced_now: bool


@dataclass(frozen=True)
class ChangeResult:
    subscription: Subscription
    preview: ChangePreview
    invoice: Invoice | None = None
    scheduled_change: ScheduledChange | None = None


@dataclass(frozen=True)
class UpcomingInvoice:
    currency: str
    billing_at: datetime
    period_start_at: datetime
    period_end_at: datetime
    lines: list[LineDraft]
    subtotal: Decimal
    total: Decimal
    tax_total: Decimal = Decimal(0)  # added by exclusive rates (inclusive tax is inside the lines)
    taxes: list[TaxAmount] = field(default_factory=list)
    reverse_charge: bool = False

    @property
    def amount_due(self) -> Decimal:
        """What the customer will owe: the total, or nothing when it comes to below zero."""
        return max(self.total, Decimal(0))

    @property
    def credited_to_balance(self) -> Decimal:
        """What the invoice comes to below zero: credited to the customer's balance when it is issued."""
        return max(-self.total, Decimal(0))


def _validate_options(timing: str, proration: str) -> None:
    if timing not in ChangeTiming.values:
        raise ValidationFailed(
            gettext("Unknown timing %(timing)r.") % {"timing": timing},
            fields={"timing": [gettext("Use one of: %(values)s.") % {"values": ", ".join(ChangeTiming.values)}]},
        )
    if proration not in ProrationBehavior.values:
        raise ValidationFailed(
            gettext("Unknown proration behaviour %(proration)r.") % {"proration": proration},
            fields={
                "proration": [gettext("Use one of: %(values)s.") % {"values": ", ".join(ProrationBehavior.values)}]
            },
        )


def _current_period_is_billed(subscription: Subscription, now: datetime) -> bool:
    """Billing is in advance: the current period has been invoiced once `next_billing_at` moved to its end."""
    return (
        subscription.status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)
        and subscription.next_billing_at is not None
        and subscription.next_billing_at == subscription.current_period_end_at
        and subscription.current_period_start_at <= now < subscription.current_period_end_at
    )


def _full_period(subscription: Subscription, moment: datetime) -> Period:
    """The whole billing period containing `moment` (a calendar-billed first period is only its tail:
    prorating against the whole period keeps credits equal to what was charged)."""
    plan = subscription.plan
    return period_containing(subscription.billing_anchor_at, plan.interval, plan.interval_count, moment)


def _validate_effective_at(
    subscription: Subscription, timing: str, effective_at: datetime | None, now: datetime
) -> datetime:
    """A change made now may be dated back (like Stripe's proration date) within the current period,
    never into a period already invoiced and closed, nor into the future."""
    if effective_at is None:
        return now
    effective_at = clock.ensure_aware(effective_at)
    if timing != ChangeTiming.NOW:
        raise ValidationFailed(
            gettext("Only a change made now can carry a date."),
            fields={"effective_at": [gettext("Leave it empty for a change at period end.")]},
        )
    if effective_at > now:
        raise ValidationFailed(
            gettext("A change cannot be dated in the future."),
            fields={"effective_at": [gettext("Schedule it at period end instead, or date it now or earlier.")]},
        )
    last_change_at = _last_change_in_period(subscription)
    if last_change_at is not None and effective_at < last_change_at:
        raise ValidationFailed(
            gettext("That date is before the subscription's last change in this period."),
            fields={
                "effective_at": [
                    gettext(
                        "Date the change on or after %(last_change_at)s UTC, when the subscription last changed; "
                        "its prorations were computed from then."
                    )
                    % {"last_change_at": format(last_change_at, "%Y-%m-%d %H:%M")}
                ]
            },
        )
    if effective_at < subscription.current_period_start_at:
        raise ValidationFailed(
            gettext("That date falls in a period that is already invoiced and closed."),
            fields={
                "effective_at": [
                    gettext(
                        "Date the change on or after %(current_period_start_at)s UTC, the start of the current "
                        "period; correct earlier periods with a credit note."
                    )
                    % {"current_period_start_at": format(subscription.current_period_start_at, "%Y-%m-%d %H:%M")}
                ]
            },
        )
    return effective_at


def _last_change_in_period(subscription: Subscription) -> datetime | None:
    """When the plan, quantity or version last changed within the current period, if it did."""
    moments = []
    for event in subscription.events.filter(
        type__in=[SubscriptionEventType.CHANGED, SubscriptionEventType.VERSION_MIGRATED],
        occurred_at__gte=subscription.current_period_start_at,
    ):
        effective = event.data.get("effective_at")
        moments.append(datetime.fromisoformat(effective) if effective else event.occurred_at)
    return max(moments, default=None)


def _preview(
    subscription: Subscription,
    *,
    plan: Plan | None,
    quantity: int | None,
    timing: str,
    proration: str,
    now: datetime,
    effective_at: datetime | None = None,
) -> tuple[ChangePreview, tuple]:
    _validate_options(timing, proration)
    target = subscription_change_target(subscription, plan=plan, quantity=quantity)
    pending = [c for c in subscription.scheduled_changes.all() if c.applied_at is None and c.canceled_at is None]
    if timing == ChangeTiming.NOW and pending:
        raise InvalidTransition(
            gettext(
                "Subscription #%(subscription_pk)s has a change scheduled for %(effective_at)s UTC; "
                "withdraw it before changing now."
            )
            % {"subscription_pk": subscription.pk, "effective_at": format(pending[0].effective_at, "%Y-%m-%d %H:%M")},
            fields={"scheduled_change": [gettext("Withdraw the scheduled change first (it would undo this one).")]},
        )
    currency = subscription.currency
    lines: list[LineDraft] = []
    changed_at = _validate_effective_at(subscription, timing, effective_at, now)
    effective_at = changed_at if timing == ChangeTiming.NOW else subscription.current_period_end_at
    if (
        timing == ChangeTiming.NOW
        and proration != ProrationBehavior.NONE
        and _current_period_is_billed(subscription, changed_at)
    ):
        target_plan, target_version, target_quantity = target
        with bill_language(subscription.customer):  # written on the customer's bill: in its language
            lines = proration_line_drafts(
                plan=subscription.plan, version=subscription.plan_version, quantity=subscription.quantity,
                new_plan=target_plan, new_version=target_version, new_quantity=target_quantity,
                currency=currency, period=_full_period(subscription, changed_at), changed_at=changed_at,
                subscription=subscription,
            )  # fmt: skip
    preview = ChangePreview(
        currency=currency,
        timing=timing,
        proration=proration,
        effective_at=effective_at,
        lines=lines,
        total=quantize_amount(sum((line.amount for line in lines), Decimal(0)), currency),
        invoiced_now=bool(lines) and proration == ProrationBehavior.INVOICE_NOW,
    )
    return preview, target


def subscription_change_preview(
    *,
    subscription_id: int,
    plan: Plan | None = None,
    quantity: int | None = None,
    timing: str = ChangeTiming.NOW,
    proration: str = ProrationBehavior.PRORATE,
    effective_at: datetime | None = None,
    now: datetime | None = None,
) -> ChangePreview:
    """The proration lines a change would produce, without changing anything."""
    now = now or subscription_now(subscription_id)
    subscription = _load(subscription_id)
    preview, _ = _preview(
        subscription, plan=plan, quantity=quantity, timing=timing, proration=proration, now=now,
        effective_at=effective_at,
    )  # fmt: skip
    return preview


@transaction.atomic
def subscription_change(
    *,
    subscription_id: int,
    plan: Plan | None = None,
    quantity: int | None = None,
    timing: str = ChangeTiming.NOW,
    proration: str = ProrationBehavior.PRORATE,
    effective_at: datetime | None = None,
    actor: Any = None,
    now: datetime | None = None,
) -> ChangeResult:
    """Upgrade, downgrade or change the quantity of a subscription (see the module docstring)."""
    now = now or subscription_now(subscription_id)
    subscription_lock(subscription_id)
    subscription = _load(subscription_id)
    preview, (target_plan, target_version, target_quantity) = _preview(
        subscription, plan=plan, quantity=quantity, timing=timing, proration=proration, now=now,
        effective_at=effective_at,
    )  # fmt: skip
    if timing == ChangeTiming.PERIOD_END:
        change = subscription_schedule_change(
            subscription_id=subscription.pk, plan=plan, quantity=quantity, actor=actor, now=now
        )
        subscription.refresh_from_db()
        return ChangeResult(subscription=subscription, preview=preview, scheduled_change=change)

    _close_out(subscription, at=preview.effective_at, reason=SubscriptionSegment.Reason.CHANGE, now=now)
    subscription_apply_change(
        subscription, plan=target_plan, version=target_version, quantity=target_quantity, now=now, actor=actor,
        data={
            "proration": proration, "proration_total": str(preview.total),
            "effective_at": preview.effective_at.isoformat(),
        },
    )  # fmt: skip
    items = InvoiceItem.objects.bulk_create(
        invoice_item_from_draft(draft=draft, subscription=subscription, created_at=now) for draft in preview.lines
    )
    invoice = None
    if preview.invoiced_now:
        invoice = _invoice_items_now(subscription, items, preview, now)
    return ChangeResult(subscription=subscription, preview=preview, invoice=invoice)


def _close_out(subscription: Subscription, *, at: datetime, reason: str, now: datetime) -> None:
    """Close the current period's stretch up to `at` at the subscription's prices before they change:
    its usage and fees billed in arrears are billed at those prices on the next invoice (`closeout`)."""
    if _current_period_is_billed(subscription, at):
        subscription_segment_close(subscription, at=at, period=_full_period(subscription, at), reason=reason, now=now)


def _invoice_items_now(
    subscription: Subscription, items: list[InvoiceItem], preview: ChangePreview, now: datetime
) -> Invoice:
    return invoice_items_invoice_now(
        subscription=subscription, items=items, drafts=preview.lines,
        period_start_at=preview.effective_at, period_end_at=subscription.current_period_end_at, now=now,
    )  # fmt: skip


def subscription_upcoming_invoice(*, subscription_id: int, now: datetime | None = None) -> UpcomingInvoice:
    """The invoice the next billing run would issue for this subscription: the items waiting for it
    (prorations) and the next period's charges, with any scheduled change or version migration that
    takes effect then; for a subscription canceled at period end, its final invoice. Nothing is written."""
    now = now or subscription_now(subscription_id)
    subscription = _load(subscription_id)
    if subscription.next_billing_at is None:
        raise ValidationFailed(
            gettext("Subscription #%(subscription_pk)s has nothing more to bill.")
            % {"subscription_pk": subscription.pk},
            fields={"subscription": [gettext("This subscription has ended; no invoice is coming.")]},
        )
    # Every line reads as the invoice will print it: in the customer's language (as the billing run
    # writes it), whoever asks for the preview (the portal, the staff API, the admin).
    if subscription.cancel_at_period_end:
        return _upcoming_final_invoice(subscription, subscription.next_billing_at, now)
    try:
        with bill_language(subscription.customer):
            return _upcoming_next_invoice(subscription, now)
    except ApplicationError:
        # A refusal (e.g. a charge without a price in the currency) answers the one who asked: the
        # preview writes nothing, so working it out again in their language raises it in their words.
        return _upcoming_next_invoice(subscription, now)


def _upcoming_next_invoice(subscription: Subscription, now: datetime) -> UpcomingInvoice:
    """The next billing run's invoice of a subscription that renews (see `subscription_upcoming_invoice`),
    in the language active."""
    plan, version, quantity = subscription.plan, subscription.plan_version, subscription.quantity
    pending = next(
        (
            change
            for change in subscription.scheduled_changes.all()
            if change.applied_at is None and change.canceled_at is None
            and change.effective_at <= subscription.next_billing_at
        ),
        None,
    )  # fmt: skip
    if pending is not None:
        plan, version, quantity = pending.plan, pending.plan_version, pending.quantity
    elif subscription.pending_plan_version is not None:
        version = subscription.pending_plan_version
    period = period_containing(
        subscription.billing_anchor_at, plan.interval, plan.interval_count, subscription.next_billing_at
    )
    currency = subscription.currency
    items = subscription.invoice_items.filter(invoice__isnull=True).select_related("charge").order_by("id")
    lines = [item_line_draft(item) for item in items]
    closes_period = (
        subscription.status != SubscriptionStatus.TRIALING and subscription.current_period_end_at == period.start
    )
    # What the current period owes in arrears, stretch by stretch at the prices of each: its fees billed
    # in arrears and its usage so far.
    stretches = period_stretches(
        subscription, segments=subscription_open_segments(subscription),
        end=subscription.current_period_end_at if closes_period else None,
    )  # fmt: skip
    period_lines = stretch_line_drafts(
        subscription=subscription, stretches=stretches, currency=currency, usage_until=now
    )
    lines += period_lines
    crossing_ids: list[int] = []
    if stretches:  # less what interim invoices of the period billed (progressive billing)
        deductions, crossing_ids = progressive_deduction_drafts(subscription, before=period.start, usage=period_lines)
        lines += deductions
    if closes_period:
        # The minimum commitment for the whole current period, measured on its charges so far.
        lines += commitment_true_up_drafts(
            subscription=subscription, plan=subscription.plan, version=subscription.plan_version,
            currency=currency, start=subscription.current_period_start_at,
            end=subscription.current_period_end_at, drafts=lines,
        )  # fmt: skip
    # The trial's usage and usage changed in periods already invoiced (see late_usage.py).
    lines += late_usage_line_drafts(
        subscription=subscription, billed_from=max(period.start, subscription.next_billing_at), now=now, settle=False
    )
    lines += recurring_line_drafts(
        plan=plan, version=version, quantity=quantity, currency=currency, period=period,
        billed_from=max(period.start, subscription.next_billing_at), subscription=subscription,
    )  # fmt: skip
    discounts, _ = discount_line_drafts(
        drafts=lines, discounts=discounts_applicable(subscription=subscription), plan=plan, currency=currency
    )
    lines += discounts
    credits, _ = customer_credit_drafts(customer_id=subscription.customer_id, currency=currency, drafts=lines)
    # The period the invoice will name: the new one, or, when it bills nothing in advance, the time it
    # bills in arrears, to the end of the current period (as the billing run will name it).
    billed_from = max(period.start, subscription.next_billing_at)
    span_start, span_end = invoice_span(lines, start=billed_from, end=period.end)
    if (span_start, span_end) == (billed_from, period.end):
        period_start_at, period_end_at = period.start, period.end
    else:
        period_start_at, period_end_at = span_start, max(span_end, subscription.current_period_end_at)
    return _upcoming(
        subscription, lines + credits, billing_at=subscription.next_billing_at,
        period_start_at=period_start_at, period_end_at=period_end_at, crossing_ids=crossing_ids,
    )  # fmt: skip


def _upcoming_final_invoice(subscription: Subscription, ends_at: datetime, now: datetime) -> UpcomingInvoice:
    """A subscription canceled at period end is not renewed, but when the billing run ends it, what it
    still owes is billed on a final invoice (`subscription_settle_waiting_items`): its waiting charges
    and its last period's usage, less its waiting credits (moved to the customer's balance) and the
    customer's other credits. This previews that invoice; nothing is written."""
    currency = subscription.currency
    items = list(subscription.invoice_items.filter(invoice__isnull=True).select_related("charge").order_by("id"))
    lines = [item_line_draft(item) for item in items if item.amount.amount >= 0]
    period_billed = InvoicedPeriod.objects.filter(
        subscription=subscription, period_start_at=subscription.current_period_start_at
    ).exists()
    stretches = period_stretches(
        subscription, segments=subscription_open_segments(subscription),
        end=subscription.current_period_end_at if period_billed else None,
    )  # fmt: skip
    with bill_language(subscription.customer):  # as the final invoice will print it
        period_lines = stretch_line_drafts(
            subscription=subscription, stretches=stretches, currency=currency, usage_until=now
        )
        lines += period_lines
        deductions, crossing_ids = progressive_deduction_drafts(subscription, before=ends_at, usage=period_lines)
        lines += deductions
    if not lines:
        raise ValidationFailed(
            gettext("Subscription #%(subscription_pk)s ends at the end of its period; no invoice is coming.")
            % {"subscription_pk": subscription.pk},
            fields={"subscription": [gettext("The subscription is canceled at period end.")]},
        )
    with bill_language(subscription.customer):
        credits, _ = customer_credit_drafts(
            customer_id=subscription.customer_id, currency=currency, drafts=lines,
            moving=[item for item in items if item.amount.amount < 0],
        )  # fmt: skip
    starts = [line.period_start_at for line in lines if line.period_start_at is not None]
    ends = [line.period_end_at for line in lines if line.period_end_at is not None]
    return _upcoming(
        subscription, lines + credits, billing_at=ends_at,
        period_start_at=min(starts, default=subscription.current_period_start_at),
        period_end_at=max(ends, default=subscription.current_period_end_at), crossing_ids=crossing_ids,
    )  # fmt: skip


def _upcoming(
    subscription: Subscription,
    lines: list[LineDraft],
    *,
    billing_at: datetime,
    period_start_at: datetime,
    period_end_at: datetime,
    crossing_ids: Sequence[int] = (),
) -> UpcomingInvoice:
    """An upcoming invoice of these lines, with its totals and taxes (completing the tax of the interim
    invoices of `crossing_ids` it deducts, as the invoice will)."""
    currency = subscription.currency
    subtotal = quantize_amount(sum((line.amount for line in lines), Decimal(0)), currency)
    taxed = [line for line in lines if is_taxed_kind(line.kind)]
    taxes, reverse_charge = customer_tax_breakdown(
        customer=subscription.customer,
        amounts=[line.amount for line in taxed],
        currency=currency,
        rates=[line.tax_rate for line in taxed],
        invoiced=interim_invoice_taxes(crossings=ProgressiveCrossing.objects.filter(pk__in=crossing_ids))
        if crossing_ids
        else (),
    )
    tax_total = quantize_amount(tax_added(taxes), currency)
    return UpcomingInvoice(
        currency=currency,
        billing_at=billing_at,
        period_start_at=period_start_at,
        period_end_at=period_end_at,
        lines=lines,
        subtotal=subtotal,
        total=subtotal + tax_total,
        tax_total=tax_total,
        taxes=taxes,
        reverse_charge=reverse_charge,
    )


def _load(subscription_id: int) -> Subscription:
    subscription = (
        Subscription.objects.select_related("customer", "plan__product", "plan_version", "pending_plan_version")
        .prefetch_related(
            "plan_version__charges__prices__tiers",
            "pending_plan_version__charges__prices__tiers",
            "scheduled_changes__plan__product",
            "scheduled_changes__plan_version__charges__prices__tiers",
        )
        .filter(pk=subscription_id)
        .first()
    )
    if subscription is None:
        raise NotFound(
            gettext("Subscription %(subscription_id)s does not exist.") % {"subscription_id": subscription_id}
        )
    return subscription


def _unused_time_credits(subscription: Subscription, now: datetime, *, as_invoiced: bool = False) -> list[LineDraft]:
    """Credits for the unused time of the period already invoiced (nothing if it is not invoiced).
    `as_invoiced`: scaled to what the period's invoice charged after its discounts."""
    if not _current_period_is_billed(subscription, now):
        return []
    with bill_language(subscription.customer):
        lines = proration_line_drafts(
            plan=subscription.plan, version=subscription.plan_version, quantity=subscription.quantity,
            new_plan=subscription.plan, new_version=subscription.plan_version, new_quantity=subscription.quantity,
            currency=subscription.currency, period=_full_period(subscription, now), changed_at=now,
            credit_scale=_invoiced_share(subscription) if as_invoiced else Fraction(1), skip_unchanged=False,
            subscription=subscription,
        )  # fmt: skip
    return [line for line in lines if line.amount < 0]


def _invoiced_share(subscription: Subscription) -> Fraction:
    """The share of the current period's charges its invoice actually billed after discounts (1 without)."""
    invoice = (
        subscription_period_invoices(
            subscription_id=subscription.pk, period_start_at=subscription.current_period_start_at
        )
        .exclude(status=InvoiceStatus.VOID)
        .first()
    )
    if invoice is None:
        return Fraction(1)
    lines = list(invoice.lines.all())
    if invoice.subscription_id is None:  # an invoice grouping several subscriptions: this one's lines
        lines = [line for line in lines if line.subscription_id == subscription.pk]
    charged = sum((line.amount.amount for line in lines if line.kind in CHARGED_KINDS), Decimal(0))
    discounted = sum((line.amount.amount for line in lines if line.kind == InvoiceLineKind.DISCOUNT), Decimal(0))
    if charged <= 0:
        return Fraction(1)
    return max(Fraction(0), Fraction(charged + discounted) / Fraction(charged))


def subscription_cancel_credit_preview(*, subscription_id: int, now: datetime | None = None) -> list[LineDraft]:
    """The credit lines a cancellation now would give. Changes nothing."""
    now = now or subscription_now(subscription_id)
    subscription = _load(subscription_id)
    if subscription.status == SubscriptionStatus.CANCELED:
        raise InvalidTransition(
            gettext("Subscription #%(subscription_pk)s is already canceled.") % {"subscription_pk": subscription.pk},
            fields={"status": [gettext("Already canceled.")]},
        )
    return _unused_time_credits(subscription, now, as_invoiced=True)


@audited_with_reason
@transaction.atomic
def subscription_cancel(
    *,
    subscription_id: int,
    when: str,
    prorate: bool = True,
    reason: str = "",
    actor: Any = None,
    now: datetime | None = None,
) -> ChangeResult:
    """Cancel a subscription: the one entry point the admin, the API, the portal, dunning and the demo
    call. `when` is a `ChangeTiming`: at the end of the current period (it does not renew; undo with
    `subscription_cancel_undo` until then), or now (`subscription_cancel_with_credit`: with `prorate`,
    the unused time already invoiced is credited; either way what still waits for the subscription's
    next invoice is settled)."""
    if when == ChangeTiming.PERIOD_END:
        now = now or subscription_now(subscription_id)
        subscription = subscription_mark_canceled(
            subscription_id=subscription_id, at_period_end=True, reason=reason, actor=actor, now=now
        )
        preview = ChangePreview(
            currency=subscription.currency, timing=ChangeTiming.PERIOD_END, proration=ProrationBehavior.NONE,
            effective_at=subscription.current_period_end_at, lines=[], total=Decimal(0), invoiced_now=False,
        )  # fmt: skip
        return ChangeResult(subscription=subscription, preview=preview)
    if when != ChangeTiming.NOW:
        raise ValidationFailed(
            gettext("%(when)r is not a moment to cancel at.") % {"when": when},
            fields={"when": [gettext("Choose one of: %(values)s.") % {"values": ", ".join(ChangeTiming.values)}]},
        )
    return subscription_cancel_with_credit(
        subscription_id=subscription_id, prorate=prorate, reason=reason, actor=actor, now=now
    )


@audited_with_reason
@transaction.atomic
def subscription_cancel_with_credit(
    *, subscription_id: int, prorate: bool = True, reason: str = "", actor: Any = None, now: datetime | None = None
) -> ChangeResult:
    """Cancel at once; with `prorate`, credit the unused time of the period already invoiced (as
    invoiced, discounts included). The credit waits on the customer's account and is taken off the
    customer's next invoices (never below zero). Anything still waiting for the subscription's next
    invoice is settled (see `subscription_settle_waiting_items`)."""
    now = now or subscription_now(subscription_id)
    subscription_lock(subscription_id)
    subscription = _load(subscription_id)
    lines = _unused_time_credits(subscription, now, as_invoiced=True) if prorate else []
    subscription_mark_canceled(
        subscription_id=subscription.pk, at_period_end=False, reason=reason, actor=actor, now=now
    )
    items = [invoice_item_from_draft(draft=draft, subscription=subscription, created_at=now) for draft in lines]
    InvoiceItem.objects.bulk_create(items)
    subscription_settle_waiting_items(subscription_id=subscription.pk, now=now)
    subscription.refresh_from_db()
    preview = ChangePreview(
        currency=subscription.currency, timing=ChangeTiming.NOW, proration=ProrationBehavior.PRORATE,
        effective_at=now, lines=lines,
        total=quantize_amount(sum((line.amount for line in lines), Decimal(0)), subscription.currency),
        invoiced_now=False,
    )  # fmt: skip
    return ChangeResult(subscription=subscription, preview=preview)


@audited_with_reason
@transaction.atomic
def subscription_pause(
    *, subscription_id: int, prorate: bool = True, reason: str = "", actor: Any = None, now: datetime | None = None
) -> ChangeResult:
    """Pause billing. With `prorate`, the unused time of the period already invoiced is credited on
    the invoice issued when the subscription resumes."""
    now = now or subscription_now(subscription_id)
    subscription_lock(subscription_id)
    subscription = _load(subscription_id)
    lines = _unused_time_credits(subscription, now) if prorate else []
    _close_out(subscription, at=now, reason=SubscriptionSegment.Reason.PAUSE, now=now)
    subscription_mark_paused(subscription, now=now, actor=actor, reason=reason)
    InvoiceItem.objects.bulk_create(
        invoice_item_from_draft(draft=draft, subscription=subscription, created_at=now) for draft in lines
    )
    preview = ChangePreview(
        currency=subscription.currency, timing=ChangeTiming.NOW,
        proration=ProrationBehavior.PRORATE if prorate else ProrationBehavior.NONE, effective_at=now, lines=lines,
        total=quantize_amount(sum((line.amount for line in lines), Decimal(0)), subscription.currency),
        invoiced_now=False,
    )  # fmt: skip
    return ChangeResult(subscription=subscription, preview=preview)


@transaction.atomic
def subscription_resume(*, subscription_id: int, actor: Any = None, now: datetime | None = None) -> ChangeResult:
    """Resume a paused subscription: a new period starts now and is invoiced at once (with any credit
    from the pause)."""
    now = now or subscription_now(subscription_id)
    subscription = subscription_lock(subscription_id)
    subscription_mark_resumed(subscription, now=now, actor=actor)
    invoices = subscription_bill_due(subscription_id=subscription.pk, now=now)
    subscription.refresh_from_db()
    preview = ChangePreview(
        currency=subscription.currency, timing=ChangeTiming.NOW, proration=ProrationBehavior.NONE, effective_at=now,
        lines=[], total=Decimal(0), invoiced_now=bool(invoices),
    )  # fmt: skip
    return ChangeResult(subscription=subscription, preview=preview, invoice=invoices[0] if invoices else None)
