"""Thin Celery interfaces: ids and ISO dates in, one service call each."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings

from apps.core.errors import ApplicationError, NotFound

from .selectors import invoice_ids_missing_pdf
from .services import (
    credit_note_render_pdf,
    invoice_email_failure_record,
    invoice_email_send,
    invoice_pdf_ensure,
    invoice_pdf_failure_record,
)

logger = logging.getLogger(__name__)


@shared_task(name="apps.invoices.tasks.invoice_render_pdfs_task", time_limit=3600, soft_time_limit=3500)
def invoice_render_pdfs_task(invoice_ids: list[int], email_customer: bool = False) -> int:
    """Render the PDFs of a billing run chunk's invoices (each once: a stored bill is left alone) and
    hand each bill's email to the `email` queue when asked; one failing bill does not stop the others
    (the failure is recorded on it). Returns how many were rendered."""
    rendered = 0
    for invoice_id in invoice_ids:
        try:
            invoice_pdf_ensure(invoice_id=invoice_id)
        except Exception as exc:  # noqa: BLE001 - recorded; the others still get their bill
            logger.exception("rendering the PDF of invoice %s failed", invoice_id)
            invoice_pdf_failure_record(invoice_id=invoice_id, error=f"{type(exc).__name__}: {exc}")
            continue
        rendered += 1
        if email_customer:
            invoice_email_task.delay(invoice_id)
    return rendered


@shared_task(name="apps.invoices.tasks.invoice_render_missing_pdfs_task", time_limit=3600, soft_time_limit=3500)
def invoice_render_missing_pdfs_task() -> int:
    """Render (and email, once) the bills of invoices finalized while the queue was unreachable: any
    finalized invoice without a PDF issued more than INVOICE_PDF_SWEEP_MIN_AGE_MINUTES ago (the normal
    task had its chance) and less than INVOICE_PDF_SWEEP_MAX_AGE_DAYS ago. Runs every few minutes from
    beat; rendering and emailing are once-only, so overlapping the normal task is harmless."""
    from apps.core import clock

    invoice_ids = invoice_ids_missing_pdf(
        now=clock.now(),
        min_age=timedelta(minutes=settings.INVOICE_PDF_SWEEP_MIN_AGE_MINUTES),
        max_age=timedelta(days=settings.INVOICE_PDF_SWEEP_MAX_AGE_DAYS),
    )
    if not invoice_ids:
        return 0
    logger.info("rendering the missing PDFs of %s invoices", len(invoice_ids))
    return invoice_render_pdfs_task(invoice_ids, email_customer=settings.INVOICE_EMAIL_ON_FINALIZE)


@shared_task(
    name="apps.invoices.tasks.invoice_render_pdf_task",
    bind=True,
    time_limit=300,
    soft_time_limit=240,
    max_retries=3,
    default_retry_delay=30,
)
def invoice_render_pdf_task(self, invoice_id: int, email_customer: bool = False) -> str | None:
    """Render and store the bill (once: a repeated task finds it stored), then hand the email to the
    `email` queue when asked. Returns the PDF's SHA-256."""
    try:
        sha256 = invoice_pdf_ensure(invoice_id=invoice_id).pdf_sha256
    except NotFound:
        logger.warning("invoice %s vanished before its PDF was rendered", invoice_id)
        return None
    except ApplicationError as exc:  # e.g. a stray file where the bill goes: retrying would not help
        logger.warning("PDF of invoice %s not rendered: %s", invoice_id, exc.message)
        invoice_pdf_failure_record(invoice_id=invoice_id, error=exc.message)
        return None
    except OSError as exc:  # storage hiccup: worth another try
        if self.request.retries >= self.max_retries:
            invoice_pdf_failure_record(invoice_id=invoice_id, error=f"{type(exc).__name__}: {exc}")
            raise
        raise self.retry(exc=exc) from exc
    if email_customer:
        invoice_email_task.delay(invoice_id)
    return sha256


@shared_task(
    name="apps.invoices.tasks.invoice_email_task",
    bind=True,
    time_limit=120,
    soft_time_limit=100,
    max_retries=5,
)
def invoice_email_task(self, invoice_id: int) -> int | None:
    """Email the bill once (a bill already emailed is left alone). Retries a mail server failure with
    growing delays; the last failure is recorded on the invoice. Returns the `emailed` event id."""
    try:
        return invoice_email_send(invoice_id=invoice_id).event.pk
    except NotFound:
        logger.warning("invoice %s vanished before its bill was emailed", invoice_id)
        return None
    except ApplicationError as exc:  # void meanwhile, no PDF, no address: retrying would not help
        logger.warning("bill of invoice %s not emailed: %s", invoice_id, exc.message)
        invoice_email_failure_record(invoice_id=invoice_id, error=exc.message)
        return None
    except OSError as exc:  # mail server unreachable or refusing (smtplib errors are OSErrors)
        if self.request.retries >= self.max_retries:
            invoice_email_failure_record(invoice_id=invoice_id, error=f"{type(exc).__name__}: {exc}")
            return None
        raise self.retry(exc=exc, countdown=60 * 2**self.request.retries) from exc


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
