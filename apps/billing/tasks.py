"""Thin Celery interfaces of the billing engine: ids and ISO dates in, one service call each. The
task names are the ones they had in apps.invoices, so that queued tasks and beat schedules keep
working across the move."""

from datetime import datetime

from celery import shared_task
from django.conf import settings

from apps.core import clock
from apps.invoices.constants import BillingRunTrigger

from .services import bill_due_subscriptions, invoice_finalize_due_drafts
from .services.billing import billing_run_chunk
from .services.progressive import progressive_candidate_customer_ids, progressive_evaluate_customer


@shared_task(name="apps.invoices.tasks.billing_run_task", time_limit=3600, soft_time_limit=3500)
def billing_run_task(as_of: str | None = None, trigger: str = BillingRunTrigger.SCHEDULE) -> int:
    """Start billing as of `as_of` (ISO 8601, aware) or now: the due subscriptions are split into
    chunks, each billed by `billing_run_chunk_task` on the `billing` queue. Returns the BillingRun id."""
    now = datetime.fromisoformat(as_of) if as_of else None
    return bill_due_subscriptions(now=now, trigger=trigger, fan_out=settings.BILLING_RUN_FAN_OUT).pk


@shared_task(name="apps.invoices.tasks.billing_run_chunk_task", time_limit=1800, soft_time_limit=1700)
def billing_run_chunk_task(run_id: int, subscription_ids: list[int], as_of: str) -> None:
    """Bill one chunk of a run. Safe to run twice (a redelivery after a lost worker): subscriptions
    billed already are not due any more."""
    billing_run_chunk(run_id=run_id, subscription_ids=subscription_ids, now=datetime.fromisoformat(as_of))


@shared_task(name="apps.invoices.tasks.invoice_finalize_due_drafts_task", time_limit=1800, soft_time_limit=1700)
def invoice_finalize_due_drafts_task(as_of: str | None = None) -> int:
    now = datetime.fromisoformat(as_of) if as_of else clock.now()
    return invoice_finalize_due_drafts(now=now)


@shared_task(name="apps.billing.tasks.progressive_evaluate_customers_task", time_limit=600, soft_time_limit=570)
def progressive_evaluate_customers_task(customer_ids: list[int]) -> int:
    """Progressive billing: evaluate these customers' subscriptions (one task per ingested batch).
    Returns how many interim invoices were issued."""
    return sum(len(progressive_evaluate_customer(customer_id=customer_id)) for customer_id in customer_ids)


@shared_task(name="apps.billing.tasks.progressive_evaluate_all_task", time_limit=1800, soft_time_limit=1750)
def progressive_evaluate_all_task() -> int:
    """The sweep: every customer with progressive billing, in case an evaluation was lost."""
    return progressive_evaluate_customers_task(progressive_candidate_customer_ids())
