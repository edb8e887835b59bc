"""Progressive billing: invoice a period's usage as soon as its amount to date reaches a threshold, and
deduct what those interim invoices billed from the invoice that closes the period.

- **Thresholds** come from the subscription's own schedule (`SubscriptionProgressiveBilling`) or else
  its plan version's in its currency (`ProgressiveBilling`); see `apps.catalog.progressive`.
- **Evaluation** (`subscription_progressive_evaluate`) locks the subscription row, prices the usage of
  its current period to date exactly as the period's invoice will (stretch by stretch, tiers and
  included units applied to the whole period so far, each line rounded once), and, when the highest
  threshold reached is above every threshold already billed in the period, issues one interim invoice
  (`billing_reason = subscription_threshold`): the usage to date, less a line per earlier interim
  invoice of the period. Fees are not billed by it. The crossing is recorded as a `ProgressiveCrossing`
  whose unique constraint (subscription, period start, threshold) is the last line of defence, as
  `InvoicedPeriod` is for the billing run: with the row lock, two evaluations at once bill once.
- **Deduction** (`progressive_deduction_drafts`): the invoice that bills the period's usage in arrears
  (the renewal, the invoice made at resume, a grouped invoice, or the final invoice of a subscription
  that ends) bills the whole period's usage as usual and adds, per interim invoice of it (not void), a
  negative line of its amount, before tax. So tiers straddling a threshold come out exactly as on a
  single invoice: interim + final = the period billed at once. Its tax completes theirs: per rate, the
  tax of the whole period's base rounded once less what they charged (`apps.invoices.pricing.tax_breakdown`).
- **Lifetime thresholds** (`scope = lifetime`, Lago's model): the thresholds measure the usage since the
  subscription started (`subscription_usage_billed_before` + the period's to date) and each fires once in
  its life; the interim invoice still bills the period's usage to date.

Evaluation runs off the ingestion path: usage recorded marks its customers (debounced through the
cache, as spend alerts are) and a Celery task evaluates them; a periodic sweep catches lost tasks.
See docs/billing-rules.md, "Progressive billing".
"""

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Q, Sum
from django.utils.formats import date_format
from django.utils.translation import gettext
from kombu.exceptions import OperationalError as BrokerUnavailable

from apps.accounts.selectors import customer_now
from apps.catalog.pricing import format_price
from apps.catalog.progressive import ThresholdSchedule
from apps.core.money import zero
from apps.invoices.constants import BillingReason, InvoiceEventType, InvoiceLineKind, InvoiceStatus
from apps.invoices.events import invoice_event_record
from apps.invoices.models import Invoice, InvoiceLine, ProgressiveCrossing
from apps.invoices.services.lifecycle import TOTALS_FIELDS, bill_language, invoice_finalize, invoice_recompute_totals
from apps.subscriptions.constants import SubscriptionStatus
from apps.subscriptions.models import Subscription
from apps.subscriptions.selectors import subscription_progressive_schedule

from .closeout import period_stretches, stretch_line_drafts, subscription_open_segments
from .lines import LineDraft, invoice_lines_from_drafts

# Subscriptions whose usage may be invoiced before their period ends (a trial's usage is not billed
# during the trial; a paused one's time is not billed).
PROGRESSIVE_STATUSES = (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)
PENDING_KEY = "progressive:evaluate:{customer_id}"


def subscription_progressive_thresholds(subscription: Subscription) -> ThresholdSchedule:
    return subscription_progressive_schedule(subscription)[0]


def _usage_to_date(subscription: Subscription, now: datetime) -> list[LineDraft]:
    """The usage lines of the current period up to `now`, as the invoice closing it would bill them:
    each stretch (closed by a change inside the period, then the open one) at its own prices."""
    stretches = period_stretches(subscription, segments=subscription_open_segments(subscription), end=now)
    drafts = stretch_line_drafts(subscription=subscription, stretches=stretches, currency=subscription.currency)
    return [draft for draft in drafts if draft.kind == InvoiceLineKind.USAGE]


def subscription_usage_billed_before(subscription: Subscription, start: datetime) -> Decimal:
    """The usage the subscription's invoices billed for the time before `start` (before tax and
    discounts): its usage lines on invoices not voided, late usage and corrections included, interim
    invoices left out (the invoice closing their period bills that period's whole usage)."""
    billed = (
        InvoiceLine.objects.filter(
            Q(subscription=subscription) | Q(subscription__isnull=True, invoice__subscription=subscription),
            kind=InvoiceLineKind.USAGE,
            period_start_at__lt=start,
        )
        .exclude(invoice__status=InvoiceStatus.VOID)
        .exclude(invoice__billing_reason=BillingReason.SUBSCRIPTION_THRESHOLD)
        .aggregate(total=Sum("amount"))["total"]
    )
    return billed or Decimal(0)


def _day(moment: datetime) -> str:
    return date_format(moment, "j M Y H:i")


def _invoice_label(invoice: Invoice | None, crossed_at: datetime) -> str:
    if invoice is not None and invoice.number:
        return invoice.number
    return gettext("the interim invoice of %(date)s") % {"date": _day(crossed_at)}


def _deduction_draft(crossing: ProgressiveCrossing, currency: str) -> LineDraft:
    label = _invoice_label(crossing.invoice, crossing.crossed_at)
    return LineDraft(
        kind=InvoiceLineKind.PROGRESSIVE,
        description=gettext("Usage already billed on %(invoice)s (progressive billing)") % {"invoice": label},
        period_start_at=crossing.period_start_at,
        period_end_at=crossing.crossed_at,
        quantity=Decimal(1),
        unit_amount=None,
        amount=-crossing.billed_amount,
        currency=currency,
        explanation=(
            gettext(
                "Usage from %(start)s to %(end)s was invoiced when it reached %(threshold)s; "
                "that invoice billed %(amount)s of it, deducted here."
            )
            % {
                "start": _day(crossing.period_start_at),
                "end": _day(crossing.crossed_at),
                "threshold": format_price(crossing.threshold, currency),
                "amount": format_price(crossing.billed_amount, currency),
            },
        ),
    )


def _billed_crossings(crossings: list[ProgressiveCrossing]) -> list[ProgressiveCrossing]:
    """The crossings whose interim invoice billed something and was not voided."""
    return [
        crossing
        for crossing in crossings
        if crossing.invoice is not None and crossing.invoice.status != InvoiceStatus.VOID and crossing.billed_amount
    ]


@transaction.atomic
def subscription_progressive_evaluate(*, subscription_id: int, now: datetime | None = None) -> Invoice | None:
    """Issue the interim invoice of the subscription's current period if its usage amount to date has
    reached a threshold not billed yet in the period; None otherwise. Safe to call any number of times,
    at once from several workers: a crossing is invoiced once."""
    subscription = (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("customer", "plan__product", "plan_version", "progressive_billing")
        .prefetch_related("plan_version__charges__prices__tiers", "plan_version__progressive_billing")
        .filter(pk=subscription_id, status__in=PROGRESSIVE_STATUSES)
        .first()
    )
    if subscription is None:
        return None
    schedule = subscription_progressive_thresholds(subscription)
    if not schedule:
        return None
    now = now or customer_now(subscription.customer)
    start, end = subscription.current_period_start_at, subscription.current_period_end_at
    if not start < now < end or (subscription.trial_end_at is not None and now <= subscription.trial_end_at):
        return None  # the period is over (its invoice bills it all), or not begun
    currency = subscription.currency
    with bill_language(subscription.customer):
        usage = _usage_to_date(subscription, now)
    amount = sum((draft.amount for draft in usage), Decimal(0))
    # What the thresholds measure: the period's usage to date, or (lifetime) all of it since the
    # subscription started: the usage its earlier periods' invoices billed, plus the period's to date.
    measured = amount + (subscription_usage_billed_before(subscription, start) if schedule.lifetime else 0)
    reached = schedule.highest_reached(measured)
    if reached is None:
        return None
    crossings = list(
        ProgressiveCrossing.objects.select_related("invoice")
        .filter(subscription=subscription, period_start_at=start)
        .order_by("threshold")
    )
    # A period threshold fires once per period; a lifetime one once in the subscription's life.
    fired = (
        ProgressiveCrossing.objects.filter(subscription=subscription).aggregate(highest=Max("threshold"))["highest"]
        if schedule.lifetime
        else (crossings[-1].threshold if crossings else None)
    )
    if fired is not None and fired >= reached:
        return None
    earlier = _billed_crossings(crossings)
    with bill_language(subscription.customer):
        deductions = [_deduction_draft(crossing, currency) for crossing in earlier]
        crossed = schedule.reached_between(fired, measured)
        values = {
            "start": _day(start),
            "end": _day(now),
            "thresholds": ", ".join(format_price(threshold, currency) for threshold in crossed),
        }
        if schedule.lifetime:
            note = gettext(
                "Progressive billing: usage since the subscription started reached %(thresholds)s (%(lifetime)s); "
                "this invoice bills the usage of the period to date (%(start)s – %(end)s). Fees are billed when "
                "the period ends, and the period's final invoice deducts this invoice."
            ) % {**values, "lifetime": format_price(measured, currency)}
        else:
            note = (
                gettext(
                    "Progressive billing: usage of the period to date (%(start)s – %(end)s) reached %(thresholds)s; "
                    "fees are billed when the period ends, and the period's final invoice deducts this invoice."
                )
                % values
            )
        usage = [
            replace(draft, period_end_at=min(draft.period_end_at or now, now), explanation=(*draft.explanation, note))
            for draft in usage
        ]
    billed = amount - sum((crossing.billed_amount for crossing in earlier), Decimal(0))
    invoice = None
    if billed > 0:
        invoice = _interim_invoice(subscription, usage + deductions, start=start, now=now, reached=reached)
    try:
        with transaction.atomic():
            ProgressiveCrossing.objects.create(
                subscription=subscription, period_start_at=start, period_end_at=end, threshold=reached,
                currency=currency, usage_amount=amount, billed_amount=max(billed, Decimal(0)), crossed_at=now,
                invoice=invoice,
            )  # fmt: skip
    except IntegrityError:
        # Another evaluation recorded this crossing first (only possible without the row lock, e.g. a
        # subscription row changed hands): undo this one's invoice with the rest of the transaction.
        transaction.set_rollback(True)
        return None
    if invoice is None:
        return None
    subscription.interim_invoices_pending = True
    subscription.save(update_fields=["interim_invoices_pending", "updated_at"])
    if settings.INVOICE_DRAFT_GRACE_HOURS == 0:
        invoice = invoice_finalize(invoice_id=invoice.pk, now=now)
    return invoice


def _interim_invoice(
    subscription: Subscription, drafts: list[LineDraft], *, start: datetime, now: datetime, reached: Decimal
) -> Invoice:
    currency = subscription.currency
    invoice = Invoice.objects.create(
        customer=subscription.customer, subscription=subscription,
        billing_reason=BillingReason.SUBSCRIPTION_THRESHOLD, status=InvoiceStatus.DRAFT,
        period_start_at=start, period_end_at=now, subtotal=zero(currency), tax_total=zero(currency),
        total=zero(currency), auto_finalize_at=now + timedelta(hours=settings.INVOICE_DRAFT_GRACE_HOURS),
    )  # fmt: skip
    InvoiceLine.objects.bulk_create(invoice_lines_from_drafts(invoice, drafts))
    invoice_recompute_totals(invoice)
    invoice.save(update_fields=TOTALS_FIELDS)
    invoice_event_record(
        invoice=invoice, type=InvoiceEventType.CREATED, occurred_at=now,
        data={
            "subscription": subscription.pk, "reason": BillingReason.SUBSCRIPTION_THRESHOLD,
            "threshold": f"{reached.normalize():f}", "period_start": start.isoformat(), "until": now.isoformat(),
        },
    )  # fmt: skip
    return invoice


# --- The invoice closing the period -----------------------------------------------------------------


def progressive_deduction_drafts(
    subscription: Subscription, *, before: datetime, usage: list[LineDraft], lock: bool = False
) -> tuple[list[LineDraft], list[int]]:
    """The deduction lines for the subscription's interim invoices of periods that began before `before`
    and were not deducted yet (voided ones deduct nothing), and the ids of all those crossings (for
    `progressive_deductions_mark`). With `lock` (the billing run), the crossing rows are locked.

    `usage` is the invoice's lines for those periods (their stretches; late usage of earlier periods
    apart): the deductions never take the period's usage below zero (`_deductions_within_usage`)."""
    if not subscription.interim_invoices_pending:
        return [], []
    crossings = ProgressiveCrossing.objects.filter(
        subscription=subscription, deducted_by__isnull=True, period_start_at__lt=before
    )
    if lock:
        crossings = crossings.select_for_update(of=("self",))
    rows = list(crossings.select_related("invoice").order_by("period_start_at", "threshold"))
    billed = _billed_crossings(rows)
    usage_amount = sum((draft.amount for draft in usage if draft.kind == InvoiceLineKind.USAGE), Decimal(0))
    with bill_language(subscription.customer):
        drafts = _deductions_within_usage(billed, usage_amount=usage_amount, currency=subscription.currency)
    return drafts, [crossing.pk for crossing in rows]


def _deductions_within_usage(
    crossings: list[ProgressiveCrossing], *, usage_amount: Decimal, currency: str
) -> list[LineDraft]:
    """One deduction line per interim invoice, each of what that invoice billed — as long as the
    period's usage on the final invoice covers them. When the interim invoices billed more than the
    whole period's usage came to (a pooled charge whose pool grew after they were issued: members that
    joined later share it, so less of this subscription's usage is beyond it; or usage corrected
    since), the deductions stop at the usage, so the period's usage never comes to less than zero, and
    what they billed beyond it is given back on a credit line of its own, "Usage billed on interim
    invoices beyond the period's usage, credited back" (taxed like the usage it returns). The invoice's
    total is the same either way; the line says why it is a credit."""
    drafts = [_deduction_draft(crossing, currency) for crossing in crossings]
    deducted = -sum((draft.amount for draft in drafts), Decimal(0))
    left = max(usage_amount, Decimal(0))
    if deducted <= left:
        return drafts
    capped = []
    for crossing, draft in zip(crossings, drafts, strict=True):
        amount = min(crossing.billed_amount, left)
        left -= amount
        if amount == crossing.billed_amount:
            capped.append(draft)
            continue
        if amount > 0:
            note = gettext(
                "The period's usage came to less than the interim invoices billed: %(amount)s of this one is "
                "deducted, the rest is credited back below."
            ) % {"amount": format_price(amount, currency)}
            capped.append(replace(draft, amount=-amount, explanation=(*draft.explanation, note)))
    over = deducted - max(usage_amount, Decimal(0))
    labels = ", ".join(_invoice_label(crossing.invoice, crossing.crossed_at) for crossing in crossings)
    capped.append(
        LineDraft(
            kind=InvoiceLineKind.PROGRESSIVE,
            description=gettext("Usage billed on interim invoices beyond the period's usage, credited back"),
            period_start_at=min(crossing.period_start_at for crossing in crossings),
            period_end_at=max(crossing.crossed_at for crossing in crossings),
            quantity=Decimal(1),
            unit_amount=None,
            amount=-over,
            currency=currency,
            explanation=(
                gettext(
                    "The interim invoices %(invoices)s billed %(billed)s of usage; the whole period's usage came "
                    "to %(usage)s (usage beyond a shared pool shrinks when other subscriptions join the pool "
                    "later in the period, and corrected usage can lower it). The difference, %(over)s, is "
                    "credited back here."
                )
                % {
                    "invoices": labels,
                    "billed": format_price(deducted, currency),
                    "usage": format_price(max(usage_amount, Decimal(0)), currency),
                    "over": format_price(over, currency),
                },
            ),
        )
    )
    return capped


def progressive_deductions_mark(
    *, crossing_ids: list[int], invoice: Invoice | None, subscription_ids: list[int]
) -> None:
    """Record that `invoice` deducted these crossings; a subscription with none left waiting is a plain
    renewal again for the billing run's bulk path."""
    if crossing_ids and invoice is not None:
        ProgressiveCrossing.objects.filter(pk__in=crossing_ids, deducted_by__isnull=True).update(deducted_by=invoice)
    if subscription_ids:
        waiting = set(
            ProgressiveCrossing.objects.filter(
                subscription_id__in=subscription_ids, deducted_by__isnull=True, invoice__isnull=False
            ).values_list("subscription_id", flat=True)
        )
        done = [subscription_id for subscription_id in subscription_ids if subscription_id not in waiting]
        Subscription.objects.filter(pk__in=done, interim_invoices_pending=True).update(interim_invoices_pending=False)


# --- Asking for an evaluation (ingestion's side) ------------------------------------------------------


def progressive_candidates(customer_ids: list[int] | None = None):
    """Live subscriptions that may have progressive billing: their own thresholds, or their plan
    version's in their currency (an empty own schedule is checked by the evaluation)."""
    subscriptions = Subscription.objects.filter(status__in=PROGRESSIVE_STATUSES).filter(
        Q(progressive_billing__isnull=False) | Q(plan_version__progressive_billing__currency=F("currency"))
    )
    if customer_ids is not None:
        subscriptions = subscriptions.filter(customer_id__in=customer_ids)
    return subscriptions


def progressive_evaluation_request(*, customer_ids: list[int]) -> list[int]:
    """Queue one evaluation task for the batch's customers with progressive billing, at most once per
    customer every `ALERTS_EVALUATION_DELAY_SECONDS` (the same debounce as spend alerts: a cache mark,
    removed by the evaluation before it reads). Called after ingestion commits."""
    delay = settings.ALERTS_EVALUATION_DELAY_SECONDS
    fresh = [
        customer_id for customer_id in customer_ids if cache.add(PENDING_KEY.format(customer_id=customer_id), 1, delay)
    ]
    if not fresh:
        return []
    watched = sorted(set(progressive_candidates(fresh).values_list("customer_id", flat=True)))
    if watched:
        from apps.billing.tasks import progressive_evaluate_customers_task

        try:
            progressive_evaluate_customers_task.apply_async(args=[watched], countdown=delay)
        except BrokerUnavailable:  # the periodic sweep evaluates every candidate
            cache.delete_many([PENDING_KEY.format(customer_id=customer_id) for customer_id in watched])
    return watched


def progressive_evaluate_customer(*, customer_id: int, now: datetime | None = None) -> list[Invoice]:
    """Evaluate each of the customer's subscriptions with progressive billing (the mark goes first)."""
    cache.delete(PENDING_KEY.format(customer_id=customer_id))
    invoices = []
    for subscription_id in progressive_candidates([customer_id]).order_by("id").values_list("id", flat=True):
        invoice = subscription_progressive_evaluate(subscription_id=subscription_id, now=now)
        if invoice is not None:
            invoices.append(invoice)
    return invoices


def progressive_candidate_customer_ids() -> list[int]:
    return sorted(set(progressive_candidates().values_list("customer_id", flat=True)))
