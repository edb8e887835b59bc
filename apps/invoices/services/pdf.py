"""PDF bills and credit notes, rendered with WeasyPrint from frozen snapshots and local static files."""

import hashlib
import logging

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.template.loader import render_to_string

from apps.core import clock
from apps.core.errors import NotEditable, NotFound

from ..constants import REVERSE_CHARGE_NOTE, InvoiceEventType
from ..events import invoice_event_record
from ..models import CreditNote, Invoice

logger = logging.getLogger(__name__)


def _local_only_fetcher():
    """A WeasyPrint URL fetcher for one rendering: bills may load local files (stylesheet, logo,
    fonts) but never anything from the network. WeasyPrint 70 wants a `URLFetcher` instance (it
    reads attributes of it), not a plain function; imported lazily because weasyprint is slow to
    import."""
    from weasyprint.urls import URLFetcher

    class LocalOnlyURLFetcher(URLFetcher):
        def fetch(self, url, headers=None):
            if not url.startswith("file://"):
                raise ValueError(f"refusing to fetch {url!r} while rendering a bill")
            return super().fetch(url, headers)

    return LocalOnlyURLFetcher(allowed_protocols={"file"})


def invoice_pdf_context(invoice: Invoice) -> dict:
    return {
        "invoice": invoice,
        "seller": invoice.seller_details,
        "buyer": invoice.customer_details,
        "lines": list(invoice.lines.all()),
        "taxes": list(invoice.taxes.all()),
        "reverse_charge_note": REVERSE_CHARGE_NOTE,
        "currency": invoice.currency,
    }


def _render_pdf_bytes(template: str, context: dict) -> bytes:
    from weasyprint import HTML

    html = render_to_string(template, context)
    base_url = (settings.BASE_DIR / "static").as_uri() + "/"
    return HTML(string=html, base_url=base_url, url_fetcher=_local_only_fetcher()).write_pdf()


def invoice_render_pdf_bytes(invoice: Invoice) -> bytes:
    return _render_pdf_bytes("invoices/invoice_pdf.html", invoice_pdf_context(invoice))


def invoice_render_pdf(*, invoice_id: int, actor=None) -> Invoice:
    """Render (or re-render) the PDF bill of a finalized invoice and store it with its SHA-256."""
    invoice = Invoice.objects.select_related("customer").filter(pk=invoice_id).first()
    if invoice is None:
        raise NotFound(f"Invoice {invoice_id} does not exist.")
    if not invoice.number:
        raise NotEditable("Only finalized invoices have a PDF bill.")
    pdf_bytes = invoice_render_pdf_bytes(invoice)  # slow: outside any transaction
    digest = hashlib.sha256(pdf_bytes).hexdigest()
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        old_name = invoice.pdf.name
        invoice.pdf.save(f"{invoice.number}.pdf", ContentFile(pdf_bytes), save=False)
        invoice.pdf_sha256 = digest
        invoice.pdf_rendered_at = clock.now()
        invoice.save(update_fields=["pdf", "pdf_sha256", "pdf_rendered_at"])
        invoice_event_record(
            invoice=invoice, type=InvoiceEventType.PDF_RENDERED, actor=actor,
            data={"sha256": digest, "bytes": len(pdf_bytes)},
        )  # fmt: skip
        if old_name and old_name != invoice.pdf.name:
            storage, name = invoice.pdf.storage, old_name
            transaction.on_commit(lambda: storage.delete(name))
    return invoice


def credit_note_pdf_context(credit_note: CreditNote) -> dict:
    invoice = credit_note.invoice
    return {
        "credit_note": credit_note,
        "invoice": invoice,
        "seller": credit_note.seller_details,
        "buyer": credit_note.customer_details,
        "lines": list(credit_note.lines.all()),
        "taxes": list(credit_note.taxes.all()),
        "reverse_charge_note": REVERSE_CHARGE_NOTE,
        "currency": credit_note.currency,
    }


def credit_note_render_pdf_bytes(credit_note: CreditNote) -> bytes:
    return _render_pdf_bytes("invoices/credit_note_pdf.html", credit_note_pdf_context(credit_note))


def credit_note_render_pdf(*, credit_note_id: int, actor=None) -> CreditNote:
    """Render the PDF of an issued credit note once and store it with its SHA-256. A credit note's PDF
    is a document as issued: once stored it is never rendered again (a second call returns it)."""
    credit_note = CreditNote.objects.select_related("invoice").filter(pk=credit_note_id).first()
    if credit_note is None:
        raise NotFound(f"Credit note {credit_note_id} does not exist.")
    if credit_note.pdf_sha256:
        return credit_note
    pdf_bytes = credit_note_render_pdf_bytes(credit_note)  # slow: outside any transaction
    digest = hashlib.sha256(pdf_bytes).hexdigest()
    with transaction.atomic():
        credit_note = CreditNote.objects.select_for_update().select_related("invoice").get(pk=credit_note_id)
        if credit_note.pdf_sha256:  # rendered meanwhile by another worker: theirs stands
            return credit_note
        credit_note.pdf.save(f"{credit_note.number}.pdf", ContentFile(pdf_bytes), save=False)
        credit_note.pdf_sha256 = digest
        credit_note.pdf_rendered_at = clock.now()
        credit_note.save(update_fields=["pdf", "pdf_sha256", "pdf_rendered_at"])
        invoice_event_record(
            invoice=credit_note.invoice, type=InvoiceEventType.CREDIT_NOTE_PDF_RENDERED, actor=actor,
            data={"credit_note": credit_note.number, "sha256": digest, "bytes": len(pdf_bytes)},
        )  # fmt: skip
    return credit_note
