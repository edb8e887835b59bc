"""The billing run: turn due subscriptions into invoices, exactly once.

A run splits the due subscriptions into chunks; a chunk bills in bulk (`billing_chunk.py`), one
subscription at a time for special cases, and one customer at a time for customers whose invoices are
grouped. Every way locks the subscription rows (`SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL),
re-checks that they are still due, and records each billed period as an `InvoicedPeriod`, whose
unique constraint on (subscription, period start) is the last line of defence. So two runs at once,
or a re-run after a crash, never bill a period twice, and a crash loses at most the work in flight
(rolled back, billed by the next run).
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.dispatch import Signal
from django.utils import timezone

from apps.accounts.constants import InvoiceGrouping
from apps.accounts.models import Customer, SimulatedClock
from apps.accounts.selectors import customer_now
from apps.catalog.models import Plan
from apps.core import clock
from apps.core.audit import audited_as
from apps.core.money import zero
from apps.invoices.constants import BillingRunStatus, BillingRunTrigger, InvoiceEventType, InvoiceStatus
from apps.invoices.events import invoice_event_record
from apps.invoices.models import BillingRun, Invoice, InvoicedPeriod, InvoiceItem, InvoiceLine
from apps.invoices.services.lifecycle import (
    TOTALS_FIELDS,
    bill_language,
    enqueue_pdfs,
    invoice_finalize,
    invoice_recompute_totals,
)
from apps.subscriptions.constants import SubscriptionStatus
from apps.subscriptions.models import Subscription
from apps.subscriptions.periods import Period, period_containing
from apps.subscriptions.selectors import active_discounts, discounts_applicable
from apps.subscriptions.services import (
    discount_record_applied,
    subscription_apply_pending_version,
    subscription_apply_scheduled_change,
    subscription_create,
    subscription_end_if_due,
    subscription_end_trial_if_due,
)
from apps.usage.services import usage_billing_lock

from .billing_chunk import billing_chunk_bill
from .closeout import period_stretches, segments_mark_billed, stretch_line_drafts, subscription_open_segments
from .commitments import commitment_true_up_drafts
from .late_usage import late_usage_line_drafts
from .lines import (
    LineDraft,
    customer_credit_drafts,
    customer_credit_take,
    discount_line_drafts,
    invoice_lines_from_drafts,
    invoice_span,
    item_line_draft,
    recurring_line_drafts,
)
from .progressive import progressive_deduction_drafts, progressive_deductions_mark
from .settlement import subscription_settle_waiting_items

logger = logging.getLogger(__name__)

# A run keeps the first errors it meets (the count says how many there were in all).
MAX_ERRORS_KEPT = 500


def subscription_bill_next_period(*, subscription_id: int, now: datetime) -> Invoice | None:
    """Invoice the next period of one subscription if it has begun by `now`.

    Returns the invoice, or None when the subscription is not due (any more), another transaction
    is billing it right now, or its billing came to no line (the period is then recorded as billed
    without an invoice, see `subscription_bill_due`)."""
    return _bill_next_period(subscription_id, now)[1]


def _bill_next_period(subscription_id: int, now: datetime) -> tuple[bool, Invoice | None]:
    """Bill the next period of one subscription if it is due: (whether a period was billed, its
    invoice; None when the period came to no line)."""
    with transaction.atomic():
        subscription = _locked_due(now).filter(pk=subscription_id).first()
        if subscription is None:
            return False, None
        invoice = _invoice_next_period(subscription, now)
        return True, _finalize_unless_reviewed(invoice, now) if invoice is not None else None


def _locked_due(now: datetime):
    """Due subscriptions, locked for this transaction (rows another transaction holds are skipped),
    with what pricing their next period reads."""
    return (
        Subscription.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("customer", "plan__product", "plan_version", "pending_plan_version")
        .prefetch_related("plan_version__charges__prices__tiers", "pending_plan_version__charges__prices__tiers")
        .due_for_billing(now)
    )


def _finalize_unless_reviewed(invoice: Invoice, now: datetime) -> Invoice:
    """Issue a new draft at once, unless drafts wait for staff review (`INVOICE_DRAFT_GRACE_HOURS`)."""
    if settings.INVOICE_DRAFT_GRACE_HOURS == 0:
        return invoice_finalize(invoice_id=invoice.pk, now=now)
    return invoice


@dataclass
class _PeriodPart:
    """One subscription's next period, priced and ready to go on an invoice (its own or a grouped one)."""

    subscription: Subscription
    billed_from: datetime
    period: Period
    drafts: list[LineDraft]
    items: list[InvoiceItem]
    used_discounts: list
    segment_ids: list[int] = field(default_factory=list)
    # Where the period just ended began: the name of an invoice with nothing of it but late usage.
    previous_start: datetime | None = None
    # Progressive billing: the interim invoices this invoice deducts (`ProgressiveCrossing` ids).
    crossing_ids: list[int] = field(default_factory=list)


def _invoice_next_period(subscription: Subscription, now: datetime) -> Invoice | None:
    return _invoice_from_parts([_next_period_part(subscription, now)], now)


def _next_period_part(subscription: Subscription, now: datetime) -> _PeriodPart:
    """Price the next period of a locked, due subscription: what the period ending owes in arrears
    (its usage and fees billed in arrears, stretch by stretch), waiting items, the fees billed in
    advance and its discounts (applying a trial end or a change that takes effect now)."""
    plan = subscription.plan
    currency = subscription.currency
    period = period_containing(
        subscription.billing_anchor_at, plan.interval, plan.interval_count, subscription.next_billing_at
    )
    # Normally the period starts at `next_billing_at`; a calendar-billed subscription's first period
    # starts before its first cycle day and is billed from `next_billing_at` on, prorated.
    billed_from = max(period.start, subscription.next_billing_at)
    previous_start = subscription.current_period_start_at
    # Usage (and fees billed in arrears) for the period ending as this one begins, at the prices of
    # each stretch of it (before any change that takes effect now); trials use for free. Stretches
    # closed by a change inside a period (or a pause) are billed on this invoice too.
    closes_period = (
        subscription.status != SubscriptionStatus.TRIALING and subscription.current_period_end_at == billed_from
    )
    closing_plan, closing_version = subscription.plan, subscription.plan_version
    segments = subscription_open_segments(subscription, lock=True)
    arrears_drafts: list[LineDraft] = []
    if closes_period or segments:
        usage_billing_lock(customer_id=subscription.customer_id)  # in-flight batches land first, later ones are refused
        stretches = period_stretches(
            subscription, segments=segments, end=subscription.current_period_end_at if closes_period else None
        )
        with bill_language(subscription.customer):
            arrears_drafts = stretch_line_drafts(subscription=subscription, stretches=stretches, currency=currency)
    period_drafts = list(arrears_drafts)  # the closing period's own lines (what interim invoices billed of)
    # The trial's usage (by the plan's rule) and usage changed in periods already invoiced.
    with bill_language(subscription.customer):
        arrears_drafts += late_usage_line_drafts(subscription=subscription, billed_from=billed_from, now=now)
    subscription_end_trial_if_due(subscription, at=billed_from, now=now)
    subscription_apply_scheduled_change(subscription, at=billed_from, now=now)
    subscription_apply_pending_version(subscription, now=now)
    plan = subscription.plan
    items = list(
        InvoiceItem.objects.select_for_update().filter(subscription=subscription, invoice__isnull=True).order_by("id")
    )
    drafts = [item_line_draft(item) for item in items] + arrears_drafts
    crossing_ids: list[int] = []
    if closes_period or segments:  # the usage of the period closing: less what interim invoices billed
        deductions, crossing_ids = progressive_deduction_drafts(
            subscription, before=billed_from, usage=period_drafts, lock=True
        )
        drafts += deductions
    if closes_period:  # the plan's minimum commitment for the period closing, at its version's terms
        drafts += commitment_true_up_drafts(
            subscription=subscription, plan=closing_plan, version=closing_version, currency=currency,
            start=subscription.current_period_start_at, end=subscription.current_period_end_at, drafts=drafts,
        )  # fmt: skip
    with bill_language(subscription.customer):
        drafts += recurring_line_drafts(
            plan=plan, version=subscription.plan_version, quantity=subscription.quantity, currency=currency,
            period=period, billed_from=billed_from, subscription=subscription,
        )  # fmt: skip
    with bill_language(subscription.customer):
        discount_drafts, used_discounts = discount_line_drafts(
            drafts=drafts, discounts=discounts_applicable(subscription=subscription), plan=plan, currency=currency
        )
    drafts += discount_drafts
    return _PeriodPart(
        subscription,
        billed_from,
        period,
        drafts,
        items,
        used_discounts,
        [segment.pk for segment in segments],
        previous_start=previous_start,
        crossing_ids=crossing_ids,
    )


def _invoice_from_parts(parts: list[_PeriodPart], now: datetime) -> Invoice | None:
    """The draft invoice of one or more periods of one customer's subscriptions in one currency (more
    than one: an invoice grouping them, with each line naming its subscription). Each period billed is
    recorded in `InvoicedPeriod`, whose unique constraint bills it once. The customer's credit balance
    comes off the whole invoice; the subscriptions move on to their next periods.

    Periods that come to no line (a usage-only plan's first period, or a period without usage) go on
    no invoice: they are recorded as billed without one, and their subscriptions move on all the same;
    when no period has a line, no invoice is made and this returns None."""
    empty = [part for part in parts if not part.drafts]
    parts = [part for part in parts if part.drafts]
    InvoicedPeriod.objects.bulk_create(
        InvoicedPeriod(
            invoice=None,
            subscription=part.subscription,
            period_start_at=part.billed_from,
            period_end_at=part.period.end,
            billed_at=now,
        )  # fmt: skip
        for part in empty
    )
    _advance(empty, now)
    if not parts:
        return None
    first = parts[0]
    customer, currency = first.subscription.customer, first.subscription.currency
    grouped = len(parts) > 1
    drafts = [draft for part in parts for draft in part.drafts]
    credit_drafts, credit_uses = customer_credit_drafts(
        customer_id=customer.pk, currency=currency, drafts=drafts, lock=True
    )
    previous_starts = [part.previous_start for part in parts if part.previous_start is not None]
    period_start_at, period_end_at = invoice_span(
        drafts, start=min(part.billed_from for part in parts), end=max(part.period.end for part in parts),
        previous_start=min(previous_starts, default=None),
    )  # fmt: skip
    invoice = Invoice.objects.create(
        customer=customer,
        subscription=None if grouped else first.subscription,
        status=InvoiceStatus.DRAFT,
        period_start_at=period_start_at,
        period_end_at=period_end_at,
        subtotal=zero(currency),
        tax_total=zero(currency),
        total=zero(currency),
        auto_finalize_at=now + timedelta(hours=settings.INVOICE_DRAFT_GRACE_HOURS),
    )
    lines: list[InvoiceLine] = []
    for part in parts:
        part_lines = invoice_lines_from_drafts(invoice, part.drafts, start=len(lines) + 1)
        if grouped:
            for line in part_lines:
                line.subscription = part.subscription
        lines += part_lines
    lines += invoice_lines_from_drafts(invoice, credit_drafts, start=len(lines) + 1)
    InvoiceLine.objects.bulk_create(lines)
    InvoicedPeriod.objects.bulk_create(
        InvoicedPeriod(
            invoice=invoice,
            subscription=part.subscription,
            period_start_at=part.billed_from,
            period_end_at=part.period.end,
        )  # fmt: skip
        for part in parts
    )
    item_ids = [item.pk for part in parts for item in part.items]
    if item_ids:
        InvoiceItem.objects.filter(pk__in=item_ids).update(invoice=invoice)
    segments_mark_billed([segment_id for part in parts for segment_id in part.segment_ids], now=now)
    progressive_deductions_mark(
        crossing_ids=[crossing_id for part in parts for crossing_id in part.crossing_ids], invoice=invoice,
        subscription_ids=[part.subscription.pk for part in parts if part.crossing_ids],
    )  # fmt: skip
    for part in parts:
        for discount in part.used_discounts:
            discount_record_applied(discount=discount, now=now)
    customer_credit_take(credit_uses, invoice=invoice)
    invoice_recompute_totals(invoice)
    invoice.save(update_fields=TOTALS_FIELDS)
    periods = [
        {"subscription": part.subscription.pk, "period_start": part.billed_from.isoformat(),
         "period_end": part.period.end.isoformat()}
        for part in parts
    ]  # fmt: skip
    invoice_event_record(
        invoice=invoice,
        type=InvoiceEventType.CREATED,
        occurred_at=now,
        data={"subscriptions": periods} if grouped else periods[0],
    )
    _advance(parts, now)
    return invoice


def _advance(parts: list[_PeriodPart], now: datetime) -> None:
    """Make each billed period its subscription's current one."""
    for part in parts:
        subscription = part.subscription
        subscription.current_period_start_at = part.billed_from
        subscription.current_period_end_at = part.period.end
        subscription.next_billing_at = part.period.end
        subscription.save(
            update_fields=["current_period_start_at", "current_period_end_at", "next_billing_at", "updated_at"]
        )


def subscription_bill_due(*, subscription_id: int, now: datetime) -> list[Invoice]:
    """Bill every period of one subscription that has begun by `now` (catching up if behind); returns
    the invoices made (a period that came to no line makes none)."""
    invoices = []
    while True:
        billed, invoice = _bill_next_period(subscription_id, now)
        if not billed:
            return invoices
        if invoice is not None:
            invoices.append(invoice)


def subscription_start(
    *,
    customer: Customer,
    plan: Plan,
    quantity: int = 1,
    started_at: datetime | None = None,
    trial_days: int | None = None,
    billing_cycle_day: int | None = None,
    now: datetime | None = None,
    actor: Any = None,
) -> Subscription:
    """Subscribe a customer and invoice every period that has already begun (normally the first one;
    none during a trial), in one transaction: either the subscription exists with its first invoice,
    or neither does."""
    now = now or customer_now(customer)
    subscription = subscription_create(
        customer=customer, plan=plan, quantity=quantity, started_at=started_at or now, trial_days=trial_days,
        billing_cycle_day=billing_cycle_day, actor=actor, now=now,
    )  # fmt: skip
    subscription_bill_due(subscription_id=subscription.pk, now=now)
    subscription.refresh_from_db()
    return subscription


@audited_as("billing run")
def bill_due_subscriptions(
    *,
    now: datetime | None = None,
    trigger: str = BillingRunTrigger.COMMAND,
    triggered_by=None,
    test_clock: SimulatedClock | None = None,
    fan_out: bool = False,
) -> BillingRun:
    """Run billing as of `now`: invoice every due period, then finalize drafts whose review time is
    over. One failing subscription is recorded on the run and does not stop the others.

    The due subscriptions are split into chunks (`BILLING_RUN_CHUNK_SIZE`). With `fan_out`, each
    chunk becomes a Celery task on the `billing` queue and this returns the running run at once (the
    last chunk to finish completes it); without, the chunks are billed here, one after the other.

    Customers on a test clock are billed only by their clock's runs (`test_clock`), never by others."""
    now = clock.ensure_aware(now or clock.now())
    run, chunks = billing_run_begin(now=now, trigger=trigger, triggered_by=triggered_by, test_clock=test_clock)
    if not chunks:
        return billing_run_complete(run_id=run.pk, now=now)
    if fan_out:
        from apps.billing.tasks import billing_run_chunk_task

        for subscription_ids in chunks:
            billing_run_chunk_task.delay(run.pk, subscription_ids, now.isoformat())
        run.refresh_from_db()  # (in eager mode the chunks have run already)
        return run
    for subscription_ids in chunks:
        billing_run_chunk(run_id=run.pk, subscription_ids=subscription_ids, now=now)
    run.refresh_from_db()
    return run


def billing_run_begin(
    *, now: datetime, trigger: str, triggered_by=None, test_clock: SimulatedClock | None = None
) -> tuple[BillingRun, list[list[int]]]:
    """Open a run: end the subscriptions canceled at period end, settle what they leave, and split the
    due subscriptions into chunks (kept on the run as their count)."""
    _mark_interrupted_runs()
    run = BillingRun.objects.create(
        as_of=now,
        test_clock=test_clock,
        trigger=trigger,
        triggered_by=triggered_by if triggered_by is not None and triggered_by.is_authenticated else None,
        started_at=clock.now(),
        heartbeat_at=timezone.now(),
    )
    subscriptions = _on_clock(Subscription.objects.all(), "customer__test_clock", test_clock)
    ending_ids = list(subscriptions.due_to_end(now).order_by("next_billing_at", "id").values_list("id", flat=True))
    for subscription_id in ending_ids:
        with transaction.atomic():
            ended = subscription_end_if_due(subscription_id=subscription_id, now=now)
            if ended:
                subscription_settle_waiting_items(subscription_id=subscription_id, now=now)
        run.ended_count += ended
    # Anything still waiting on a subscription that ended some other way is settled too.
    stranded = _on_clock(
        InvoiceItem.objects.filter(invoice__isnull=True, subscription__status=SubscriptionStatus.CANCELED),
        "customer__test_clock",
        test_clock,
    )
    for subscription_id in set(stranded.values_list("subscription_id", flat=True)):
        with transaction.atomic():
            subscription_settle_waiting_items(subscription_id=subscription_id, now=now)

    due = subscriptions.due_for_billing(now)
    due_ids = list(due.order_by("id").values_list("id", "customer_id"))
    grouping_customer_ids = set(due.filter(_groups_invoices("customer__")).values_list("customer_id", flat=True))
    chunks = _chunks(due_ids, grouping_customer_ids, max(1, settings.BILLING_RUN_CHUNK_SIZE))
    run.due_count = len(due_ids)
    run.chunk_count = len(chunks)
    run.save(update_fields=["due_count", "chunk_count", "ended_count"])
    return run, chunks


def _groups_invoices(prefix: str = "") -> Q:
    """Customers whose subscriptions renewing on the same date share one invoice."""
    grouped = Q(**{f"{prefix}invoice_grouping": InvoiceGrouping.PER_CUSTOMER})
    if settings.INVOICE_GROUPING == InvoiceGrouping.PER_CUSTOMER:
        grouped |= Q(**{f"{prefix}invoice_grouping": ""})
    return grouped


def _chunks(due: list[tuple[int, int]], grouping_customer_ids: set[int], size: int) -> list[list[int]]:
    """Due subscription ids in chunks of about `size`, a grouping customer's subscriptions all in one
    chunk (so that one chunk makes their shared invoice)."""
    of_customer: dict[int, list[int]] = {}
    for subscription_id, customer_id in due:
        if customer_id in grouping_customer_ids:
            of_customer.setdefault(customer_id, []).append(subscription_id)
    chunks: list[list[int]] = []
    current: list[int] = []
    for subscription_id, customer_id in due:
        if customer_id not in grouping_customer_ids:
            current.append(subscription_id)
        elif of_customer[customer_id][0] == subscription_id:
            current += of_customer[customer_id]
        if len(current) >= size:
            chunks.append(current)
            current = []
    if current:
        chunks.append(current)
    return chunks


@dataclass
class _Tally:
    invoiced_count: int = 0
    skipped_count: int = 0
    failed_count: int = 0
    errors: list = field(default_factory=list)
    extra_statements: int = 0


def billing_run_chunk(*, run_id: int, subscription_ids: list[int], now: datetime) -> None:
    """Bill one chunk of a run: in bulk where it can (`billing_chunk_bill`), one by one for the rest;
    then add its counts to the run, and complete the run if this was its last chunk."""
    tally = _Tally()
    statements = _StatementCounter()
    with connection.execute_wrapper(statements):
        _bill_chunk(tally, subscription_ids, now)
    with transaction.atomic():
        run = BillingRun.objects.select_for_update().get(pk=run_id)
        run.invoiced_count += tally.invoiced_count
        run.skipped_count += tally.skipped_count
        run.failed_count += tally.failed_count
        run.errors = (run.errors + tally.errors)[:MAX_ERRORS_KEPT]
        run.processed_count += len(subscription_ids)
        run.chunks_done += 1
        run.statement_count += statements.count + tally.extra_statements
        run.heartbeat_at = timezone.now()
        run.save(
            update_fields=[
                "invoiced_count", "skipped_count", "failed_count", "errors", "processed_count", "chunks_done",
                "statement_count", "heartbeat_at",
            ]
        )  # fmt: skip
        last = run.chunks_done >= run.chunk_count and run.finished_at is None
    if last:
        billing_run_complete(run_id=run_id, now=now)


class _StatementCounter:
    """A Django execute wrapper counting the statements a chunk sends."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def _bill_chunk(tally: "_Tally", subscription_ids: list[int], now: datetime) -> None:
    groups = _grouping_customers_subscriptions(subscription_ids)
    if groups:
        grouped_ids = {subscription_id for ids in groups.values() for subscription_id in ids}
        subscription_ids = [
            subscription_id for subscription_id in subscription_ids if subscription_id not in grouped_ids
        ]
        for customer_id, ids in groups.items():
            _bill_group(tally, customer_id, ids, now)
    outcome = billing_chunk_bill(subscription_ids=subscription_ids, now=now)
    tally.extra_statements += outcome.copy_statements
    tally.invoiced_count += len(outcome.invoice_ids)
    tally.skipped_count += len(outcome.not_due_ids)
    tally.failed_count += len(outcome.errors)
    tally.errors += outcome.errors
    if outcome.finalized_ids:
        finalized_ids = outcome.finalized_ids
        transaction.on_commit(lambda: enqueue_pdfs(finalized_ids))
    for subscription_id in outcome.one_by_one_ids:
        _bill_one(tally, subscription_id, now)
    # A subscription billed in bulk with another period already begun (a run that was days late).
    behind = Subscription.objects.due_for_billing(now).filter(pk__in=outcome.billed_subscription_ids)
    for subscription_id in behind.values_list("id", flat=True):
        _bill_one(tally, subscription_id, now, counted=True)


# Sent after commit when a billing run closes (`run_id`, `as_of`): reports refresh their figures.
billing_run_completed = Signal()


def billing_run_complete(*, run_id: int, now: datetime) -> BillingRun:
    """Finalize the drafts whose review time is over and close the run with its status and duration."""
    test_clock = BillingRun.objects.get(pk=run_id).test_clock
    tally = _Tally()
    finalized = invoice_finalize_due_drafts(now=now, run=tally, test_clock=test_clock)
    with transaction.atomic():
        run = BillingRun.objects.select_for_update().get(pk=run_id)
        run.finalized_count += finalized
        run.failed_count += tally.failed_count
        run.errors = (run.errors + tally.errors)[:MAX_ERRORS_KEPT]
        run.status = BillingRunStatus.COMPLETED_WITH_ERRORS if run.failed_count else BillingRunStatus.SUCCEEDED
        elapsed = timezone.now() - (run.created_at or timezone.now())
        run.duration_ms = int(elapsed.total_seconds() * 1000)
        run.finished_at = run.started_at + elapsed
        run.heartbeat_at = timezone.now()
        run.save()
        transaction.on_commit(
            lambda: billing_run_completed.send(sender=BillingRun, run_id=run_id, as_of=now.isoformat())
        )
    logger.info(
        "billing run %s as of %s: %s due, %s invoiced, %s skipped, %s failed, %s finalized, %s ended in %.1f s",
        run.pk, now.isoformat(), run.due_count, run.invoiced_count, run.skipped_count, run.failed_count,
        run.finalized_count, run.ended_count, run.duration_ms / 1000,
    )  # fmt: skip
    return run


def _mark_interrupted_runs() -> None:
    """Runs with no chunk finished for a long time lost their worker: a later run bills what they
    left (their subscriptions are still due), so they are closed as interrupted."""
    stale_before = timezone.now() - timedelta(minutes=settings.BILLING_RUN_STALE_MINUTES)
    BillingRun.objects.filter(status=BillingRunStatus.RUNNING, heartbeat_at__lt=stale_before).update(
        status=BillingRunStatus.INTERRUPTED
    )


def _bill_one(tally, subscription_id: int, now: datetime, *, counted: bool = False) -> None:
    """Bill one subscription's due periods in their own transactions (`counted`: it was already
    counted by the chunk, so not billing it now is not a skip)."""
    billed_any = False
    try:
        while True:
            billed, invoice = _bill_next_period(subscription_id, now)
            if not billed:
                break
            tally.invoiced_count += invoice is not None
            billed_any = True
    except IntegrityError:
        # Another run invoiced this period between our read and our write: nothing to do.
        tally.skipped_count += 0 if billed_any or counted else 1
        return
    except Exception as exc:  # noqa: BLE001 - one subscription must not stop the run
        logger.exception("billing subscription %s failed", subscription_id)
        tally.failed_count += 1
        tally.errors.append({"subscription": subscription_id, "error": f"{type(exc).__name__}: {exc}"})
        return
    if not billed_any and not counted:
        tally.skipped_count += 1


def _grouping_customers_subscriptions(subscription_ids: list[int]) -> dict[int, list[int]]:
    """The chunk's subscriptions of customers who group their invoices, per customer (only customers with
    several: a lone subscription's invoice is its own either way).

    A customer with an active customer-wide discount is not grouped while it lasts: such a coupon is
    counted per invoice ("once", "for 3 periods") and priced per subscription, so each subscription
    keeps its own invoice, as without grouping."""
    per_customer: dict[int, list[int]] = {}
    rows = Subscription.objects.filter(_groups_invoices("customer__"), pk__in=subscription_ids).order_by("id")
    for subscription_id, customer_id in rows.values_list("id", "customer_id"):
        per_customer.setdefault(customer_id, []).append(subscription_id)
    several = {customer_id: ids for customer_id, ids in per_customer.items() if len(ids) > 1}
    if several:
        discounted = active_discounts().filter(customer_id__in=several).values_list("customer_id", flat=True)
        for customer_id in set(discounted):
            del several[customer_id]
    return several


def _bill_group(tally, customer_id: int, subscription_ids: list[int], now: datetime) -> None:
    """Bill one grouping customer's subscriptions (`customer_bill_due_grouped`); if that fails, bill
    them one by one, so that the failing subscription is recorded and the others are billed."""
    billed: set[int] = set()
    try:
        grouped = customer_bill_due_grouped(customer_id=customer_id, subscription_ids=subscription_ids, now=now)
        for invoice, billed_ids in grouped:
            tally.invoiced_count += invoice is not None
            billed.update(billed_ids)
    except IntegrityError:
        logger.warning("customer %s: a period was invoiced meanwhile; billing the rest one by one", customer_id)
    except Exception:  # noqa: BLE001 - one subscription must not stop the others
        logger.exception("customer %s: grouped billing failed; billing its subscriptions one by one", customer_id)
    else:
        tally.skipped_count += len(set(subscription_ids) - billed)
        return
    for subscription_id in subscription_ids:
        _bill_one(tally, subscription_id, now, counted=subscription_id in billed)


def customer_bill_due_grouped(*, customer_id: int, subscription_ids: list[int], now: datetime):
    """Bill the due periods of one customer's subscriptions with one invoice per renewal date (in the
    project's time zone) and currency, earliest date first, each date in its own transaction. Yields
    each invoice with the ids of the subscriptions it bills.

    Each transaction first takes the customer's billing lock (the one usage ingestion meets, see
    `usage_billing_lock`), so a second run billing the same customer waits, then finds nothing due:
    a group is never split between two runs. Subscriptions locked by anything else are left to it
    (`SKIP LOCKED`), as in `subscription_bill_next_period`."""
    while True:
        with transaction.atomic():
            usage_billing_lock(customer_id=customer_id)
            subscriptions = list(
                _locked_due(now).filter(pk__in=subscription_ids, customer_id=customer_id).order_by("id")
            )
            if not subscriptions:
                return
            first_date = min(timezone.localdate(sub.next_billing_at) for sub in subscriptions)
            groups: dict[str, list[_PeriodPart]] = {}
            for subscription in subscriptions:
                if timezone.localdate(subscription.next_billing_at) == first_date:
                    part = _next_period_part(subscription, now)
                    groups.setdefault(subscription.currency, []).append(part)
            billed = []
            for parts in groups.values():
                invoice = _invoice_from_parts(parts, now)
                if invoice is not None:
                    invoice = _finalize_unless_reviewed(invoice, now)
                billed.append((invoice, [part.subscription.pk for part in parts]))
        yield from billed


def _on_clock(queryset, path: str, test_clock: SimulatedClock | None):
    """Only the given test clock's rows, or (no clock) only rows of customers without one."""
    if test_clock is None:
        return queryset.filter(**{f"{path}__isnull": True})
    return queryset.filter(**{path: test_clock})


def invoice_finalize_due_drafts(*, now: datetime, run=None, test_clock: SimulatedClock | None = None) -> int:
    """Finalize drafts whose review period is over. Returns how many were finalized."""
    drafts = _on_clock(Invoice.objects.all(), "customer__test_clock", test_clock)
    draft_ids = list(
        drafts.filter(status=InvoiceStatus.DRAFT, auto_finalize_at__lte=now)
        .order_by("auto_finalize_at", "id")
        .values_list("id", flat=True)
    )
    finalized = 0
    for invoice_id in draft_ids:
        try:
            with transaction.atomic():
                locked = Invoice.objects.select_for_update(skip_locked=True).filter(
                    pk=invoice_id, status=InvoiceStatus.DRAFT
                )
                if not locked.exists():
                    continue
                invoice_finalize(invoice_id=invoice_id, now=now)
                finalized += 1
        except Exception as exc:  # noqa: BLE001 - one bad draft must not stop the others
            logger.exception("finalizing invoice %s failed", invoice_id)
            if run is not None:
                run.failed_count += 1
                run.errors.append({"invoice": invoice_id, "error": f"{type(exc).__name__}: {exc}"})
    return finalized
