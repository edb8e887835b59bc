"""The PDF of a credit note: rendered after commit on the `pdf` queue, once, and never replaced."""

import hashlib
import re
import subprocess
from decimal import Decimal
from unittest import mock

import pytest
from django.db import DatabaseError, IntegrityError, transaction
from pypdf import PdfReader

from apps.accounts.tests.factories import CustomerFactory
from apps.invoices.constants import InvoiceEventType
from apps.invoices.models import CreditNote, TaxRate
from apps.invoices.services import CreditNoteLineRequest, credit_note_issue, credit_note_render_pdf
from apps.invoices.tasks import credit_note_render_pdf_task
from apps.invoices.tests.factories import make_manual_invoice
from apps.payments.services import invoice_mark_paid
from apps.subscriptions.periods import utc
from billing_portal.celery import app as celery_app

pytestmark = pytest.mark.django_db

NOW = utc(2026, 2, 3, 10)


def _text(credit_note: CreditNote) -> str:
    credit_note.refresh_from_db()
    with credit_note.pdf.open("rb") as stored:
        pdf = stored.read()
    result = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True)  # noqa: S607
    return result.stdout.decode()


def _german_invoice():
    TaxRate.objects.create(name="VAT", percentage=Decimal("19"), country="DE")
    customer = CustomerFactory(country="DE", currency="EUR", name="Beispiel GmbH")
    return make_manual_invoice(customer=customer, lines=[("Seats", "4", "200.00"), ("Setup", "1", "50.00")])


def test_the_pdf_shows_the_number_the_invoice_credited_the_lines_the_tax_and_how_it_is_settled():
    invoice = invoice_mark_paid(invoice_id=_german_invoice().pk, now=NOW)
    seats = invoice.lines.get(description="Seats")
    note = credit_note_issue(
        invoice_id=invoice.pk, reason="product_unsatisfactory", memo="Two seats were never used.",
        lines=[CreditNoteLineRequest(seats.pk, quantity=Decimal(2))], refund_amount=Decimal("19.00"),
        refund_reference="SEPA-77", now=NOW,
    )  # fmt: skip

    text = _text(credit_note_render_pdf(credit_note_id=note.pk))

    assert "CN-2026-000001" in text
    assert "CREDIT NOTE" in text  # headings are set in capitals by the stylesheet
    assert "INV-2026-000001" in text  # the invoice credited
    assert "15 Jan 2026" in text  # the invoice's date
    assert "3 Feb 2026" in text  # the credit note's date
    assert "Beispiel GmbH" in text
    assert "Seats" in text and "100.00 EUR" in text
    assert "VAT 19 % on 100.00 EUR" in text and "19.00 EUR" in text
    assert "Total credited" in text and "119.00 EUR" in text
    assert "Product unsatisfactory: Two seats were never used." in text
    assert "19.00 EUR is refunded to you (reference SEPA-77)." in text
    assert "100.00 EUR is credited to your account and taken off your next invoices." in text


def _layout_pages(credit_note: CreditNote, tmp_path) -> list[str]:
    """Each page's text as `pdftotext -layout` lays it out (columns kept on one line)."""
    credit_note.refresh_from_db()
    path = tmp_path / f"{credit_note.number}.pdf"
    with credit_note.pdf.open("rb") as stored:
        path.write_bytes(stored.read())
    return [
        subprocess.run(
            ["pdftotext", "-layout", "-f", str(number), "-l", str(number), str(path), "-"],  # noqa: S607
            check=True, capture_output=True, text=True,
        ).stdout
        for number in range(1, len(PdfReader(path).pages) + 1)
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("language", "parties", "email", "account", "page"),
    [
        ("en", "FROM +CREDIT TO", "Email", "Account", "Page 1 of 1"),
        ("zh-hans", "开票方 +贷记对象", "电子邮箱", "账户", "第 1 页，共 1 页"),
    ],
)
def test_a_one_line_credit_note_fits_one_page_with_seller_and_buyer_side_by_side_as_on_the_bill(
    tmp_path, language, parties, email, account, page
):
    """The parties as the invoice lays them out: seller and buyer in two columns, each label on the
    line of its value; with a tax, a refund, a credit to the balance and a memo, one page."""
    TaxRate.objects.create(name="VAT", percentage=Decimal("23"), country="IE")
    customer = CustomerFactory(
        country="IE", currency="EUR", name="Kilkenny Data Ltd", email="ap@kilkenny.example", external_id="cus-ie-7",
        address_line1="2 Parade", city="Kilkenny", postal_code="R95 X2E3", preferred_language=language,
    )  # fmt: skip
    invoice = make_manual_invoice(customer=customer, lines=[("Seats", "4", "200.00")])
    invoice = invoice_mark_paid(invoice_id=invoice.pk, now=NOW)
    note = credit_note_issue(
        invoice_id=invoice.pk, reason="product_unsatisfactory", memo="Two seats were never used.",
        lines=[CreditNoteLineRequest(invoice.lines.get().pk, quantity=Decimal(2))], refund_amount=Decimal("19.00"),
        refund_reference="SEPA-77", now=NOW,
    )  # fmt: skip

    pages = _layout_pages(credit_note_render_pdf(credit_note_id=note.pk), tmp_path)

    assert len(pages) == 1, pages
    [text] = pages
    assert re.search(parties, text), text  # side by side, on one line
    assert re.search(r"Acme Cloud Ltd\. +Kilkenny Data Ltd", text)
    assert re.search(rf"{email} +billing@acme-cloud\.example", text)  # each label on the line of its value
    assert re.search(rf"{account} +cus-ie-7", text)
    assert re.search(r"123\.00", text) and "SEPA-77" in text
    assert page in text


def test_the_pdf_is_stored_with_its_sha256_and_never_rendered_again():
    invoice = _german_invoice()
    note = credit_note_issue(invoice_id=invoice.pk, reason="duplicate", full=True, now=NOW)

    rendered = credit_note_render_pdf(credit_note_id=note.pk)
    with rendered.pdf.open("rb") as stored:
        assert rendered.pdf_sha256 == hashlib.sha256(stored.read()).hexdigest()
    again = credit_note_render_pdf(credit_note_id=note.pk)

    assert (again.pdf.name, again.pdf_sha256, again.pdf_rendered_at) == (
        rendered.pdf.name, rendered.pdf_sha256, rendered.pdf_rendered_at
    )  # fmt: skip
    assert rendered.pdf.name.startswith("credit_notes/2026/02/CN-2026-000001")
    assert invoice.events.filter(type=InvoiceEventType.CREDIT_NOTE_PDF_RENDERED).count() == 1
    assert "nothing is due" not in _text(rendered)
    with pytest.raises((IntegrityError, DatabaseError)), transaction.atomic():
        CreditNote.objects.filter(pk=note.pk).update(pdf_sha256="0" * 64)


def test_issuing_queues_the_pdf_after_commit_on_the_pdf_queue(django_capture_on_commit_callbacks):
    invoice = make_manual_invoice()

    with mock.patch.object(credit_note_render_pdf_task, "delay") as delay:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            note = credit_note_issue(invoice_id=invoice.pk, reason="other", full=True, now=NOW)
        delay.assert_not_called()  # nothing before the commit
        for callback in callbacks:
            callback()

    delay.assert_called_once_with(note.pk)
    assert celery_app.amqp.router.route({}, credit_note_render_pdf_task.name)["queue"].name == "pdf"


def test_the_task_renders_the_pdf():
    note = credit_note_issue(invoice_id=make_manual_invoice().pk, reason="other", full=True, now=NOW)

    digest = credit_note_render_pdf_task.run(note.pk)

    note.refresh_from_db()
    assert digest == note.pdf_sha256 != ""
    assert credit_note_render_pdf_task.run(0) is None  # vanished: logged, not retried
