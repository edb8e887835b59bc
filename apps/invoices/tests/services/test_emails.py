"""Bills are emailed once, with the stored PDF attached, to the customer's email and its billing
contacts; staff can send them again; nothing goes out for drafts, void invoices or a tampered PDF."""

import hashlib
import smtplib

import pytest
from django.core import mail
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import override_settings

from apps.accounts.models import BillingContact
from apps.core.errors import InvalidTransition, NotEditable, ValidationFailed
from apps.invoices import tasks
from apps.invoices.constants import InvoiceEventType
from apps.invoices.services import invoice_email_send, invoice_finalize, invoice_render_pdf, invoice_void
from apps.invoices.services.pdf import PdfNotAvailable
from apps.invoices.tests.factories import make_draft_invoice, make_open_invoice

pytestmark = pytest.mark.django_db


def _rendered_invoice_with_contacts():
    invoice = invoice_render_pdf(invoice_id=make_open_invoice().pk)
    customer = invoice.customer
    BillingContact.objects.create(customer=customer, name="Accounts payable", email="ap@customer.example")
    BillingContact.objects.create(customer=customer, name="CFO", email="cfo@customer.example")
    BillingContact.objects.create(
        customer=customer, name="Former", email="former@customer.example", receives_invoices=False
    )
    BillingContact.objects.create(customer=customer, name="Same", email=customer.email.upper())  # listed once
    return invoice


def test_the_bill_goes_to_the_customer_and_its_billing_contacts_with_the_pdf_attached():
    invoice = _rendered_invoice_with_contacts()

    result = invoice_email_send(invoice_id=invoice.pk)

    assert result.sent is True
    [message] = mail.outbox
    assert message.to == [invoice.customer.email, "ap@customer.example", "cfo@customer.example"]
    assert message.subject == f"Invoice {invoice.number} from Acme Cloud Ltd."
    assert message.from_email == "billing@acme-cloud.example"
    assert message.reply_to == ["billing@acme-cloud.example"]
    [(filename, content, mimetype)] = message.attachments
    assert (filename, mimetype) == (f"{invoice.number}.pdf", "application/pdf")
    assert hashlib.sha256(content).hexdigest() == invoice.pdf_sha256
    assert "49.00 USD, due on 29 Jan 2026" in message.body
    assert f"with reference {invoice.number}" in message.body
    assert "IE29 AIBK 9311 5212 3456 78" in message.body
    [(html, html_type)] = message.alternatives
    assert html_type == "text/html" and invoice.number in html and "49.00 USD" in html
    event = invoice.events.get(type=InvoiceEventType.EMAILED)
    assert event == result.event
    assert event.data == {
        "recipients": [invoice.customer.email, "ap@customer.example", "cfo@customer.example"],
        "subject": message.subject,
        "pdf_sha256": invoice.pdf_sha256,
        "resend": False,
    }


def test_the_automatic_send_happens_once():
    invoice = _rendered_invoice_with_contacts()
    first = invoice_email_send(invoice_id=invoice.pk)

    again = invoice_email_send(invoice_id=invoice.pk)  # e.g. the task retried after it had sent

    assert again.sent is False and again.event == first.event
    assert len(mail.outbox) == 1
    assert invoice.events.filter(type=InvoiceEventType.EMAILED).count() == 1


def test_staff_can_send_it_again_and_each_send_is_recorded(superuser):
    invoice = _rendered_invoice_with_contacts()
    invoice_email_send(invoice_id=invoice.pk)

    again = invoice_email_send(invoice_id=invoice.pk, actor=superuser, resend=True)

    assert again.sent is True
    assert len(mail.outbox) == 2
    events = list(invoice.events.filter(type=InvoiceEventType.EMAILED).order_by("id"))
    assert [(event.actor, event.data["resend"]) for event in events] == [(None, False), (superuser, True)]


@pytest.mark.parametrize("resend", [False, True])
def test_a_draft_or_a_void_invoice_is_not_sent(resend):
    with pytest.raises(NotEditable):
        invoice_email_send(invoice_id=make_draft_invoice().pk, resend=resend)
    invoice = invoice_render_pdf(invoice_id=make_open_invoice().pk)
    invoice_void(invoice_id=invoice.pk)
    with pytest.raises(InvalidTransition):
        invoice_email_send(invoice_id=invoice.pk, resend=resend)
    assert mail.outbox == []
    assert not invoice.events.filter(type=InvoiceEventType.EMAILED).exists()


def test_a_bill_without_its_pdf_is_not_sent():
    invoice = make_open_invoice()
    with pytest.raises(PdfNotAvailable, match="no PDF bill yet"):
        invoice_email_send(invoice_id=invoice.pk)
    assert mail.outbox == []


def test_a_tampered_pdf_is_not_sent():
    invoice = invoice_render_pdf(invoice_id=make_open_invoice().pk)
    with open(invoice.pdf.path, "ab") as handle:
        handle.write(b"%%tampered")

    with pytest.raises(PdfNotAvailable, match="does not match the SHA-256"):
        invoice_email_send(invoice_id=invoice.pk, resend=True)
    assert mail.outbox == []


def test_a_customer_without_any_address_is_refused():
    invoice = invoice_render_pdf(invoice_id=make_open_invoice().pk)
    type(invoice.customer).objects.filter(pk=invoice.customer_id).update(email="")
    with pytest.raises(ValidationFailed, match="no email address"):
        invoice_email_send(invoice_id=invoice.pk)
    assert mail.outbox == []


def test_a_mail_server_failure_records_nothing(monkeypatch):
    invoice = invoice_render_pdf(invoice_id=make_open_invoice().pk)

    def refuse(self, fail_silently=False):
        raise smtplib.SMTPServerDisconnected("connection closed")

    monkeypatch.setattr("django.core.mail.EmailMessage.send", refuse)
    with pytest.raises(smtplib.SMTPException):
        invoice_email_send(invoice_id=invoice.pk)

    assert not invoice.events.filter(type=InvoiceEventType.EMAILED).exists()  # a retry will send it


# --- Tasks -------------------------------------------------------------------------------------------


def test_the_pdf_task_renders_then_queues_the_email(monkeypatch):
    invoice = make_open_invoice()
    queued = []
    monkeypatch.setattr(tasks.invoice_email_task, "delay", lambda invoice_id: queued.append(invoice_id))

    sha256 = tasks.invoice_render_pdf_task.run(invoice.pk, email_customer=True)
    again = tasks.invoice_render_pdf_task.run(invoice.pk, email_customer=True)  # redelivered: no second PDF

    invoice.refresh_from_db()
    assert sha256 == again == invoice.pdf_sha256
    assert invoice.events.filter(type=InvoiceEventType.PDF_RENDERED).count() == 1
    assert queued == [invoice.pk, invoice.pk]  # the email task itself sends once


def test_the_pdf_task_records_a_refusal_and_queues_no_email(monkeypatch):
    invoice = make_open_invoice()
    default_storage.save(f"invoices/2026/01/{invoice.number}.pdf", ContentFile(b"%PDF- stray"))
    queued = []
    monkeypatch.setattr(tasks.invoice_email_task, "delay", lambda invoice_id: queued.append(invoice_id))

    assert tasks.invoice_render_pdf_task.run(invoice.pk, email_customer=True) is None

    failure = invoice.events.get(type=InvoiceEventType.PDF_FAILED)
    assert "never overwritten" in failure.data["error"]
    assert queued == []


def test_the_pdf_task_does_not_queue_the_email_when_not_asked(monkeypatch):
    invoice = make_open_invoice()
    queued = []
    monkeypatch.setattr(tasks.invoice_email_task, "delay", lambda invoice_id: queued.append(invoice_id))

    tasks.invoice_render_pdf_task.run(invoice.pk)

    assert queued == []


def test_the_email_task_sends_once_however_often_it_runs():
    invoice = _rendered_invoice_with_contacts()

    first = tasks.invoice_email_task.run(invoice.pk)
    second = tasks.invoice_email_task.run(invoice.pk)

    assert first == second == invoice.events.get(type=InvoiceEventType.EMAILED).pk
    assert len(mail.outbox) == 1


def test_the_email_task_records_a_refusal_without_retrying():
    invoice = make_open_invoice()  # no PDF

    assert tasks.invoice_email_task.run(invoice.pk) is None

    failure = invoice.events.get(type=InvoiceEventType.EMAIL_FAILED)
    assert "no PDF bill yet" in failure.data["error"]
    assert mail.outbox == []


def test_the_email_task_gives_up_after_its_retries_and_says_so(monkeypatch):
    invoice = invoice_render_pdf(invoice_id=make_open_invoice().pk)

    def refuse(self, fail_silently=False):
        raise smtplib.SMTPServerDisconnected("connection closed")

    monkeypatch.setattr("django.core.mail.EmailMessage.send", refuse)
    tasks.invoice_email_task.push_request(retries=tasks.invoice_email_task.max_retries)
    try:
        assert tasks.invoice_email_task.run(invoice.pk) is None
    finally:
        tasks.invoice_email_task.pop_request()

    failure = invoice.events.get(type=InvoiceEventType.EMAIL_FAILED)
    assert failure.data == {"error": "SMTPServerDisconnected: connection closed"}


@pytest.mark.parametrize("setting", [True, False])
def test_finalizing_asks_for_the_email_unless_turned_off(setting, monkeypatch, django_capture_on_commit_callbacks):
    draft = make_draft_invoice()
    calls = []
    monkeypatch.setattr(tasks.invoice_render_pdf_task, "delay", lambda *args, **kwargs: calls.append((args, kwargs)))

    with override_settings(INVOICE_EMAIL_ON_FINALIZE=setting), django_capture_on_commit_callbacks(execute=True):
        invoice_finalize(invoice_id=draft.pk)

    assert calls == [((draft.pk,), {"email_customer": setting})]


def test_with_emails_turned_off_nothing_is_sent_after_rendering(monkeypatch):
    invoice = make_open_invoice()
    monkeypatch.setattr(tasks.invoice_email_task, "delay", tasks.invoice_email_task.run)  # run at once

    tasks.invoice_render_pdf_task.run(invoice.pk, email_customer=False)

    assert mail.outbox == []
    tasks.invoice_render_pdf_task.run(invoice.pk, email_customer=True)
    assert len(mail.outbox) == 1
