"""PDF bills and credit notes, rendered once from frozen snapshots and local static files, then immutable.

A finalized invoice's bill is rendered (by the `pdf` queue, shortly after finalization), stored under
`invoices/<year>/<month>/<number>.pdf` with its SHA-256 and never rendered again: a second request is
refused with `PdfAlreadyStored`, an existing file is never overwritten, and a database trigger
(migration 0011) refuses any change to the stored name, hash and rendering time.
"""

import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext
from djmoney.money import Money

from apps.core import clock
from apps.core.errors import Conflict, NotEditable, NotFound
from apps.core.pdf import (
    PdfAlreadyStored,
    PdfIntegrity,
    pdf_file_discard,
    pdf_file_integrity,
    pdf_file_read,
    pdf_file_store,
    render_pdf,
    sha256_hex,
    static_url,
)

from ..constants import REVERSE_CHARGE_NOTE, InvoiceEventType, InvoiceStatus
from ..events import invoice_event_record
from ..models import CreditNote, Invoice, InvoiceLine, InvoiceTax
from ..templatetags.invoice_format import service_period

logger = logging.getLogger(__name__)

INVOICE_PDF_TEMPLATE = "invoices/invoice_pdf.html"
INVOICE_PDF_STYLESHEETS = ("invoices/invoice.css",)
DEFAULT_LOGO = "invoices/logo.svg"


class PdfNotAvailable(Conflict):
    code = "pdf_not_rendered"


def invoice_pdf_context(
    invoice: Invoice, *, lines: list[InvoiceLine] | None = None, taxes: list[InvoiceTax] | None = None
) -> dict[str, Any]:
    """What the bill template reads: the invoice and its frozen seller (`seller`) and buyer (`buyer`)
    snapshots, never live rows. `lines` and `taxes` default to the invoice's own."""
    seller = invoice.seller_details
    lines = list(invoice.lines.all()) if lines is None else lines
    taxes = list(invoice.taxes.all()) if taxes is None else taxes
    # A line taxed at a rate of its own (a one-off charge) names it, from the invoice's frozen tax rows.
    frozen_rates = {tax.rate_id: tax for tax in taxes if tax.rate_id is not None}
    for line in lines:
        line.own_tax = frozen_rates.get(line.tax_rate_id) if line.tax_rate_id is not None else None  # type: ignore[attr-defined]
    below_zero = invoice.status != InvoiceStatus.VOID and invoice.total.amount < 0
    return {
        # An invoice that came to below zero: what went to the customer's credit balance, nothing due.
        "credited_to_balance": -invoice.total if below_zero else None,
        "amount_due_zero": Money(0, invoice.currency),
        "invoice": invoice,
        "seller": seller,
        "buyer": invoice.customer_details,
        "logo_url": static_url(seller.get("logo") or settings.SELLER.get("logo") or DEFAULT_LOGO),
        "lines": lines,
        "sections": invoice_line_sections(invoice, lines),
        "taxes": taxes,
        "reverse_charge_note": REVERSE_CHARGE_NOTE,
        "currency": invoice.currency,
    }


def invoice_line_sections(invoice: Invoice, lines: list[InvoiceLine]) -> list[dict[str, Any]]:
    """The lines in sections: one, without a heading, on an invoice of one subscription; one per
    subscription (headed by it and its period) on an invoice grouping several, then the lines of
    none (customer credits) without a heading."""
    if invoice.subscription_id is not None or not any(line.subscription_id for line in lines):
        return [{"heading": "", "lines": lines}]
    periods = {period.subscription_id: period for period in invoice.invoiced_periods.all()}
    sections: dict[int | None, list[InvoiceLine]] = {}
    for line in lines:
        sections.setdefault(line.subscription_id, []).append(line)
    result = []
    for subscription_id, section_lines in sections.items():
        heading = ""
        if subscription_id is not None:
            heading = f"Subscription #{subscription_id}"
            if (period := periods.get(subscription_id)) is not None:
                heading += f" · {service_period(period.period_start_at, period.period_end_at)}"
        result.append({"heading": heading, "lines": section_lines})
    return sorted(result, key=lambda section: not section["heading"])


def document_language(customer_details: dict[str, Any]) -> str:
    """The language a bill is written in: the customer's when it was issued (English for bills issued
    before customers had one)."""
    return str(customer_details.get("language") or "en")


def invoice_render_pdf_bytes(invoice: Invoice, *, user_agent: str = "documents", **context_overrides: Any) -> bytes:
    """The bill as PDF bytes (nothing stored), in the customer's language. Used by
    `invoice_render_pdf` and the benchmark."""
    with translation.override(document_language(invoice.customer_details)):
        context = invoice_pdf_context(invoice, **context_overrides)
        return render_pdf(
            template_name=INVOICE_PDF_TEMPLATE,
            context=context,
            stylesheets=INVOICE_PDF_STYLESHEETS,
            user_agent=user_agent,
        )


def _refuse_second_rendering(invoice: Invoice) -> None:
    if invoice.pdf_sha256:
        raise PdfAlreadyStored(
            gettext(
                "Invoice %(invoice)s already has its PDF bill (rendered %(pdf_rendered_at)s UTC, SHA-256 "
                "%(pdf_sha256)s): a rendered bill never changes."
            )
            % {
                "invoice": invoice.number,
                "pdf_rendered_at": format(invoice.pdf_rendered_at, "%Y-%m-%d %H:%M"),
                "pdf_sha256": invoice.pdf_sha256,
            }
        )


def invoice_render_pdf(*, invoice_id: int, actor: Any = None) -> Invoice:
    """Render the PDF bill of a finalized invoice once and store it with its SHA-256. Refuses
    (`PdfAlreadyStored`) when the invoice already has one: a rendered bill is immutable."""
    invoice = Invoice.objects.filter(pk=invoice_id).first()
    if invoice is None:
        raise NotFound(gettext("Invoice %(invoice_id)s does not exist.") % {"invoice_id": invoice_id})
    if not invoice.number:
        raise NotEditable(gettext("Only finalized invoices have a PDF bill."))
    _refuse_second_rendering(invoice)
    pdf_bytes = invoice_render_pdf_bytes(invoice)  # slow: outside any transaction and lock
    digest = sha256_hex(pdf_bytes)
    stored_name = None
    try:
        with transaction.atomic():
            invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
            _refuse_second_rendering(invoice)  # another worker may have won meanwhile
            stored_name = pdf_file_store(field_file=invoice.pdf, filename=f"{invoice.number}.pdf", content=pdf_bytes)
            invoice.pdf_sha256 = digest
            invoice.pdf_rendered_at = clock.now()
            invoice.save(update_fields=["pdf", "pdf_sha256", "pdf_rendered_at"])
            invoice_event_record(
                invoice=invoice, type=InvoiceEventType.PDF_RENDERED, actor=actor,
                data={"sha256": digest, "bytes": len(pdf_bytes), "file": stored_name},
            )  # fmt: skip
    except BaseException:
        if stored_name is not None:  # stored, but not recorded: remove the orphan we made
            pdf_file_discard(field_file=invoice.pdf, name=stored_name)
        raise
    return invoice


def invoice_pdf_ensure(*, invoice_id: int) -> Invoice:
    """The worker's entry point: render the bill if it has none yet, else leave the stored one alone
    (a retried or repeated task is a no-op). Returns the invoice with its stored PDF."""
    try:
        return invoice_render_pdf(invoice_id=invoice_id)
    except PdfAlreadyStored:
        invoice = Invoice.objects.get(pk=invoice_id)
        if not invoice.pdf_sha256:  # a file without a record (see pdf_file_store): for staff to sort out
            raise
        return invoice


def invoice_pdf_failure_record(*, invoice_id: int, error: str) -> None:
    """Record on the invoice that its bill could not be rendered (the task gave up)."""
    invoice = Invoice.objects.filter(pk=invoice_id).first()
    if invoice is not None:
        invoice_event_record(invoice=invoice, type=InvoiceEventType.PDF_FAILED, data={"error": error[:1000]})


def invoice_pdf_verify(*, invoice_id: int) -> PdfIntegrity:
    """Recompute the SHA-256 of the stored bill and compare it with the one recorded at rendering."""
    invoice = Invoice.objects.filter(pk=invoice_id).first()
    if invoice is None:
        raise NotFound(gettext("Invoice %(invoice_id)s does not exist.") % {"invoice_id": invoice_id})
    if not invoice.pdf_sha256:
        raise PdfNotAvailable(gettext("Invoice %(invoice)s has no PDF bill yet.") % {"invoice": invoice})
    return pdf_file_integrity(field_file=invoice.pdf, sha256=invoice.pdf_sha256)


def invoice_pdf_read_verified(invoice: Invoice) -> bytes:
    """The stored bill's bytes, checked against the recorded SHA-256 (for sending it to anyone)."""
    if not invoice.pdf_sha256:
        raise PdfNotAvailable(
            gettext("Invoice %(invoice)s has no PDF bill yet; it is rendered shortly after finalization.")
            % {"invoice": invoice}
        )
    content = pdf_file_read(invoice.pdf)
    if content is None:
        raise PdfNotAvailable(
            gettext("The PDF bill of %(invoice)s is missing from storage (%(pdf_name)s).")
            % {"invoice": invoice, "pdf_name": invoice.pdf.name}
        )
    if sha256_hex(content) != invoice.pdf_sha256:
        raise PdfNotAvailable(
            gettext(
                "The stored PDF bill of %(invoice)s does not match the SHA-256 recorded when it was "
                "rendered; it is not sent."
            )
            % {"invoice": invoice}
        )
    return content


CREDIT_NOTE_PDF_TEMPLATE = "invoices/credit_note_pdf.html"


def credit_note_pdf_context(credit_note: CreditNote) -> dict[str, Any]:
    invoice = credit_note.invoice
    seller = credit_note.seller_details
    return {
        "credit_note": credit_note,
        "invoice": invoice,
        "seller": seller,
        "buyer": credit_note.customer_details,
        "logo_url": static_url(seller.get("logo") or settings.SELLER.get("logo") or DEFAULT_LOGO),
        "lines": list(credit_note.lines.all()),
        "taxes": list(credit_note.taxes.all()),
        "reverse_charge_note": REVERSE_CHARGE_NOTE,
        "currency": credit_note.currency,
    }


def credit_note_render_pdf_bytes(credit_note: CreditNote, *, user_agent: str = "documents") -> bytes:
    with translation.override(document_language(credit_note.customer_details)):
        return render_pdf(
            template_name=CREDIT_NOTE_PDF_TEMPLATE,
            context=credit_note_pdf_context(credit_note),
            stylesheets=INVOICE_PDF_STYLESHEETS,
            user_agent=user_agent,
        )


def credit_note_render_pdf(*, credit_note_id: int, actor: Any = None) -> CreditNote:
    """Render the PDF of an issued credit note once and store it with its SHA-256. A credit note's PDF
    is a document as issued: once stored it is never rendered again (a second call returns it)."""
    credit_note = CreditNote.objects.select_related("invoice").filter(pk=credit_note_id).first()
    if credit_note is None:
        raise NotFound(gettext("Credit note %(credit_note_id)s does not exist.") % {"credit_note_id": credit_note_id})
    if credit_note.pdf_sha256:
        return credit_note
    pdf_bytes = credit_note_render_pdf_bytes(credit_note)  # slow: outside any transaction
    digest = sha256_hex(pdf_bytes)
    stored_name = None
    try:
        with transaction.atomic():
            credit_note = CreditNote.objects.select_for_update().select_related("invoice").get(pk=credit_note_id)
            if credit_note.pdf_sha256:  # rendered meanwhile by another worker: theirs stands
                return credit_note
            stored_name = pdf_file_store(
                field_file=credit_note.pdf, filename=f"{credit_note.number}.pdf", content=pdf_bytes
            )
            credit_note.pdf_sha256 = digest
            credit_note.pdf_rendered_at = clock.now()
            credit_note.save(update_fields=["pdf", "pdf_sha256", "pdf_rendered_at"])
            invoice_event_record(
                invoice=credit_note.invoice, type=InvoiceEventType.CREDIT_NOTE_PDF_RENDERED, actor=actor,
                data={"credit_note": credit_note.number, "sha256": digest, "bytes": len(pdf_bytes)},
            )  # fmt: skip
    except BaseException:
        if stored_name is not None:
            pdf_file_discard(field_file=credit_note.pdf, name=stored_name)
        raise
    return credit_note
