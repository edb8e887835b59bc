"""Emailing bills: the stored PDF attached, to the customer's email and its billing contacts.

Sent once automatically after the PDF is stored (when `INVOICE_EMAIL_ON_FINALIZE` is on), and again
whenever staff ask (admin action, `POST /api/v1/invoices/{id}/send`). Each send is recorded as an
`emailed` invoice event with its recipients; the automatic send checks for that record first, under
the invoice's row lock, so a retried or repeated task never sends twice. The send happens inside the
transaction that records it: if sending fails nothing is recorded (the task retries); only a failed
commit after a successful send could repeat it.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string, select_template
from django.utils import translation
from django.utils.translation import gettext

from apps.accounts.selectors import customer_invoice_recipients
from apps.core import clock
from apps.core.errors import InvalidTransition, NotEditable, NotFound, ValidationFailed

from ..constants import InvoiceEventType, InvoiceStatus
from ..events import invoice_event_record
from ..models import Invoice, InvoiceEvent
from ..templatetags.invoice_format import service_period
from .lifecycle import invoice_lock
from .pdf import document_language, invoice_pdf_read_verified


@dataclass(frozen=True)
class InvoiceEmailResult:
    event: InvoiceEvent  # the `emailed` event of this send, or of the earlier send it left alone
    sent: bool  # False when an automatic send found the bill already sent


def invoice_email_subject(invoice: Invoice) -> str:
    seller = invoice.seller_details.get("name") or settings.SELLER.get("name", "")
    with translation.override(document_language(invoice.customer_details)):
        return (gettext("Invoice %(number)s from %(seller)s") % {"number": invoice.number, "seller": seller}).strip()


def _in_language(language: str, function, *args):
    with translation.override(language):
        return function(*args)


def _email_template(name: str, language: str, extension: str) -> str:
    """The bill email's template in the customer's language (English when there is none)."""
    return select_template(
        [f"invoices/email/{name}.{language}.{extension}", f"invoices/email/{name}.{extension}"]
    ).template.name


def invoice_email_message(*, invoice: Invoice, recipients: list[str], pdf: bytes) -> EmailMultiAlternatives:
    """The email of a bill: plain text and HTML bodies from templates, the PDF attached. Reads the
    invoice's frozen snapshot, like the bill itself."""
    filename = f"{invoice.number}.pdf"
    context = {
        "invoice": invoice,
        "seller": invoice.seller_details,
        "buyer": invoice.customer_details,
        "billing_period": _in_language(
            document_language(invoice.customer_details), service_period, invoice.period_start_at, invoice.period_end_at
        ),
        "filename": filename,
    }
    seller_email = invoice.seller_details.get("email")
    language = document_language(invoice.customer_details)
    with translation.override(language):
        text = render_to_string(_email_template("invoice", language, "txt"), context)
        html = render_to_string(_email_template("invoice", language, "html"), context)
    message = EmailMultiAlternatives(
        subject=invoice_email_subject(invoice),
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
        reply_to=[seller_email] if seller_email else None,
    )
    message.attach_alternative(html, "text/html")
    message.attach(filename, pdf, "application/pdf")
    return message


@transaction.atomic
def invoice_email_send(
    *, invoice_id: int, actor: Any = None, resend: bool = False, now: datetime | None = None
) -> InvoiceEmailResult:
    """Email the bill to the customer's email and its billing contacts that receive invoices, with the
    stored PDF attached (checked against its SHA-256 first). Without `resend` (the automatic send),
    a bill already emailed is left alone. Drafts and void invoices are not sent."""
    invoice = invoice_lock(invoice_id)  # one send of an invoice at a time
    if not invoice.number:
        raise NotEditable(gettext("A draft is not sent: finalize it first."))
    if invoice.status == InvoiceStatus.VOID:
        raise InvalidTransition(
            gettext("Invoice %(invoice)s is void: it is not sent to the customer.") % {"invoice": invoice}
        )
    if not resend:
        earlier = invoice.events.filter(type=InvoiceEventType.EMAILED).order_by("id").first()
        if earlier is not None:
            return InvoiceEmailResult(event=earlier, sent=False)
    pdf = invoice_pdf_read_verified(invoice)
    recipients = customer_invoice_recipients(invoice.customer)
    if not recipients:
        raise ValidationFailed(
            gettext("Customer %(customer)s has no email address to send the bill to.") % {"customer": invoice.customer}
        )
    message = invoice_email_message(invoice=invoice, recipients=recipients, pdf=pdf)
    message.send(fail_silently=False)  # raises (nothing recorded) when the mail server refuses
    event = invoice_event_record(
        invoice=invoice, type=InvoiceEventType.EMAILED, actor=actor, occurred_at=now or clock.now(),
        data={"recipients": recipients, "subject": message.subject, "pdf_sha256": invoice.pdf_sha256,
              "resend": resend},
    )  # fmt: skip
    return InvoiceEmailResult(event=event, sent=True)


@transaction.atomic
def invoice_email_failure_record(*, invoice_id: int, error: str) -> None:
    """Record on the invoice that its bill could not be emailed (the task gave up): staff see it in
    the invoice's history and can send it again."""
    invoice = Invoice.objects.filter(pk=invoice_id).first()
    if invoice is None:
        raise NotFound(gettext("Invoice %(invoice_id)s does not exist.") % {"invoice_id": invoice_id})
    invoice_event_record(invoice=invoice, type=InvoiceEventType.EMAIL_FAILED, data={"error": error[:1000]})
