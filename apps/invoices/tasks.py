"""Thin Celery interfaces: ids and ISO dates in, one service call each."""

import logging
from datetime import datetime

from celery import shared_task

from apps.core.errors import NotFound

from .constants import BillingRunTrigger
from .services import (
    bill_due_subscriptions,
    credit_note_render_pdf,
    invoice_finalize_due_drafts,
    invoice_render_pdf,
)

logger = logging.getLogger(__name__)


@shared_task(name="apps.invoices.tasks.billing_run_task", time_limit=3600, soft_time_limit=3500)
def billing_run_task(as_of: str | None = None, trigger: str = BillingRunTrigger.SCHEDULE) -> int:
    """Run billing as of `as_of` (ISO 8601, aware) or now. Returns the BillingRun id."""
    now = datetime.fromisoformat(as_of) if as_of else None
    return bill_due_subscriptions(now=now, trigger=trigger).pk


@shared_task(name="apps.invoices.tasks.invoice_finalize_due_drafts_task", time_limit=1800)
def invoice_finalize_due_drafts_task(as_of: str | None = None) -> int:
    from apps.core import clock

    now = datetime.fromisoformat(as_of) if as_of else clock.now()
    return invoice_finalize_due_drafts(now=now)


@shared_task(
    name="apps.invoices.tasks.invoice_render_pdf_task",
    bind=True,
    time_limit=300,
    soft_time_limit=240,
    max_retries=3,
    default_retry_delay=30,
)
def invoice_render_pdf_task(self, invoice_id: int) -> str | None:
    try:
        return invoice_render_pdf(invoice_id=invoice_id).pdf_sha256
    except NotFound:
        logger.warning("invoice %s vanished before its PDF was rendered", invoice_id)
        return None
    except OSError as exc:  # storage hiccup: worth another try
        raise self.retry(exc=exc) from exc


@shared_task(
    name="apps.invoices.tasks.credit_note_render_pdf_task",
    bind=True,
    time_limit=300,
    soft_time_limit=240,
    max_retries=3,
    default_retry_delay=30,
)
def credit_note_render_pdf_task(self, credit_note_id: int) -> str | None:
    try:
        return credit_note_render_pdf(credit_note_id=credit_note_id).pdf_sha256
    except NotFound:
        logger.warning("credit note %s vanished before its PDF was rendered", credit_note_id)
        return None
    except OSError as exc:  # storage hiccup: worth another try
        raise self.retry(exc=exc) from exc
