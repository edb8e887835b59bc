"""Thin Celery interfaces: ids and ISO dates in, one service call each."""

import logging
from datetime import datetime

from celery import shared_task
from django.conf import settings

from apps.core.errors import NotFound

from .constants import BillingRunTrigger
from .services import (
    bill_due_subscriptions,
    credit_note_render_pdf,
    invoice_finalize_due_drafts,
    invoice_render_pdf,
)
from .services.billing import billing_run_chunk

logger = logging.getLogger(__name__)


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


@shared_task(name="apps.invoices.tasks.invoice_render_pdfs_task", time_limit=3600, soft_time_limit=3500)
def invoice_render_pdfs_task(invoice_ids: list[int]) -> int:
    """Render the PDFs of a billing run chunk's invoices; one failing bill does not stop the others
    (staff can re-render it from the admin). Returns how many were rendered."""
    rendered = 0
    for invoice_id in invoice_ids:
        try:
            invoice_render_pdf(invoice_id=invoice_id)
            rendered += 1
        except Exception:  # noqa: BLE001 - logged; the others still get their bill
            logger.exception("rendering the PDF of invoice %s failed", invoice_id)
    return rendered


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
