"""The billing run: turn due subscriptions into invoices, exactly once.

Each subscription period is billed in its own transaction, which locks the subscription row
(`SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL) and re-checks that it is still due; the unique
constraint on (subscription, period start) is the last line of defence. So two runs at once, or a
re-run after a crash, never bill a period twice, and a crash loses at most the period in flight
(rolled back, billed by the next run).
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.accounts.models import Customer, TestClock
from apps.accounts.selectors import customer_now
from apps.catalog.models import Plan
from apps.catalog.selectors import discounts_applicable
from apps.catalog.services import discount_record_applied
from apps.core import clock
from apps.core.money import zero
from apps.subscriptions.constants import SubscriptionStatus
from apps.subscriptions.models import Subscription
from apps.subscriptions.periods import period_containing
from apps.subscriptions.services import (
    subscription_apply_pending_version,
    subscription_apply_scheduled_change,
    subscription_create,
    subscription_end_if_due,
    subscription_end_trial_if_due,
)
from apps.usage.services import usage_billing_lock

from ..constants import BillingRunStatus, BillingRunTrigger, InvoiceEventType, InvoiceStatus
from ..events import invoice_event_record
from ..models import BillingRun, Invoice, InvoiceItem, InvoiceLine
from .billing_chunk import billing_chunk_bill
from .lifecycle import TOTALS_FIELDS, enqueue_pdfs, invoice_finalize, invoice_recompute_totals
from .lines import (
    customer_credit_drafts,
    customer_credit_take,
    discount_line_drafts,
    invoice_lines_from_drafts,
    item_line_draft,
    recurring_line_drafts,
    usage_line_drafts,
)
from .settlement import subscription_settle_waiting_items

logger = logging.getLogger(__name__)

# A run keeps the first errors it meets (the count says how many there were in all).
MAX_ERRORS_KEPT = 500


def subscription_bill_next_period(*, subscription_id: int, now: datetime) -> Invoice | None:
    """Invoice the next period of one subscription if it has begun by `now`.

    Returns the invoice, or None when the subscription is not due (any more) or another transaction
    is billing it right now.
    """
    with transaction.atomic():
        subscription = (
            Subscription.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("customer", "plan__product", "plan_version", "pending_plan_version")
            .prefetch_related("plan_version__charges__prices__tiers", "pending_plan_version__charges__prices__tiers")
            .due_for_billing(now)
            .filter(pk=subscription_id)
            .first()
        )
        if subscription is None:
            return None
        invoice = _invoice_next_period(subscription, now)
        if settings.INVOICE_DRAFT_GRACE_HOURS == 0:
            invoice = invoice_finalize(invoice_id=invoice.pk, now=now)
        return invoice


def _invoice_next_period(subscription: Subscription, now: datetime) -> Invoice:
    plan = subscription.plan
    currency = subscription.currency
    period = period_containing(
        subscription.billing_anchor_at, plan.interval, plan.interval_count, subscription.next_billing_at
    )
    # Normally the period starts at `next_billing_at`; a calendar-billed subscription's first period
    # starts before its first cycle day and is billed from `next_billing_at` on, prorated.
    billed_from = max(period.start, subscription.next_billing_at)
    # Usage is billed in arrears, at the prices of the period it happened in (before any change that
    # takes effect now), for the period ending as this one begins; trials use for free.
    usage_drafts = []
    if subscription.status != SubscriptionStatus.TRIALING and subscription.current_period_end_at == billed_from:
        usage_billing_lock(customer_id=subscription.customer_id)  # in-flight batches land first, later ones are refused
        usage_drafts = usage_line_drafts(
            customer=subscription.customer, plan=subscription.plan, version=subscription.plan_version,
            currency=currency, start=subscription.current_period_start_at, end=subscription.current_period_end_at,
        )  # fmt: skip
    subscription_end_trial_if_due(subscription, at=billed_from, now=now)
    subscription_apply_scheduled_change(subscription, at=billed_from, now=now)
    subscription_apply_pending_version(subscription, now=now)
    plan = subscription.plan
    items = list(
        InvoiceItem.objects.select_for_update().filter(subscription=subscription, invoice__isnull=True).order_by("id")
    )
    drafts = [item_line_draft(item) for item in items] + usage_drafts
    drafts += recurring_line_drafts(
        plan=plan, version=subscription.plan_version, quantity=subscription.quantity, currency=currency,
        period=period, billed_from=billed_from,
    )  # fmt: skip
    discount_drafts, used_discounts = discount_line_drafts(
        drafts=drafts, discounts=discounts_applicable(subscription=subscription), plan=plan, currency=currency
    )
    drafts += discount_drafts
    credit_drafts, credit_uses = customer_credit_drafts(
        customer_id=subscription.customer_id, currency=currency, drafts=drafts, lock=True
    )
    drafts += credit_drafts

    invoice = Invoice.objects.create(
        customer=subscription.customer,
        subscription=subscription,
        status=InvoiceStatus.DRAFT,
        period_start_at=billed_from,
        period_end_at=period.end,
        subtotal=zero(currency),
        tax_total=zero(currency),
        total=zero(currency),
        auto_finalize_at=now + timedelta(hours=settings.INVOICE_DRAFT_GRACE_HOURS),
    )
    InvoiceLine.objects.bulk_create(invoice_lines_from_drafts(invoice, drafts))
    if items:
        InvoiceItem.objects.filter(pk__in=[item.pk for item in items]).update(invoice=invoice)
    for discount in used_discounts:
        discount_record_applied(discount=discount, now=now)
    customer_credit_take(credit_uses, invoice=invoice)
    invoice_recompute_totals(invoice)
    invoice.save(update_fields=TOTALS_FIELDS)
    invoice_event_record(
        invoice=invoice,
        type=InvoiceEventType.CREATED,
        occurred_at=now,
        data={
            "subscription": subscription.pk,
            "period_start": billed_from.isoformat(),
            "period_end": period.end.isoformat(),
        },
    )

    subscription.current_period_start_at = billed_from
    subscription.current_period_end_at = period.end
    subscription.next_billing_at = period.end
    subscription.save(
        update_fields=["current_period_start_at", "current_period_end_at", "next_billing_at", "updated_at"]
    )
    return invoice


def subscription_bill_due(*, subscription_id: int, now: datetime) -> list[Invoice]:
    """Bill every period of one subscription that has begun by `now` (catching up if behind)."""
    invoices = []
    while (invoice := subscription_bill_next_period(subscription_id=subscription_id, now=now)) is not None:
        invoices.append(invoice)
    return invoices


@transaction.atomic
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


def bill_due_subscriptions(
    *,
    now: datetime | None = None,
    trigger: str = BillingRunTrigger.COMMAND,
    triggered_by=None,
    test_clock: TestClock | None = None,
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
        from ..tasks import billing_run_chunk_task

        for subscription_ids in chunks:
            billing_run_chunk_task.delay(run.pk, subscription_ids, now.isoformat())
        run.refresh_from_db()  # (in eager mode the chunks have run already)
        return run
    for subscription_ids in chunks:
        billing_run_chunk(run_id=run.pk, subscription_ids=subscription_ids, now=now)
    run.refresh_from_db()
    return run


def billing_run_begin(
    *, now: datetime, trigger: str, triggered_by=None, test_clock: TestClock | None = None
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

    due_ids = list(subscriptions.due_for_billing(now).order_by("id").values_list("id", flat=True))
    size = max(1, settings.BILLING_RUN_CHUNK_SIZE)
    chunks = [due_ids[i : i + size] for i in range(0, len(due_ids), size)]
    run.due_count = len(due_ids)
    run.chunk_count = len(chunks)
    run.save(update_fields=["due_count", "chunk_count", "ended_count"])
    return run, chunks


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
        while subscription_bill_next_period(subscription_id=subscription_id, now=now) is not None:
            tally.invoiced_count += 1
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


def _on_clock(queryset, path: str, test_clock: TestClock | None):
    """Only the given test clock's rows, or (no clock) only rows of customers without one."""
    if test_clock is None:
        return queryset.filter(**{f"{path}__isnull": True})
    return queryset.filter(**{path: test_clock})


def invoice_finalize_due_drafts(*, now: datetime, run=None, test_clock: TestClock | None = None) -> int:
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
