"""The database itself refuses changes to a finalized invoice, whatever code path tries."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from djmoney.money import Money

from apps.invoices.constants import InvoiceStatus
from apps.invoices.models import Invoice, InvoiceLine, InvoiceTax, TaxRate
from apps.invoices.services import invoice_render_pdf, invoice_void
from apps.invoices.tests.factories import make_draft_invoice, make_open_invoice
from apps.payments.services import invoice_mark_paid

pytestmark = pytest.mark.django_db


def _refused(action) -> None:
    with pytest.raises(IntegrityError, match="finalized|final status"), transaction.atomic():
        action()


@pytest.mark.parametrize(
    "changes",
    [
        {"memo": "edited after issue"},
        {"number": "INV-2026-999999"},
        {"subtotal": Decimal("1.00"), "total": Decimal("1.00")},
        {"customer_details": {"name": "Someone else"}},
        {"due_on": "2099-01-01"},
    ],
)
def test_frozen_columns_of_a_finalized_invoice_cannot_be_updated(changes):
    invoice = make_open_invoice()
    _refused(lambda: Invoice.objects.filter(pk=invoice.pk).update(**changes))
    fresh = Invoice.objects.get(pk=invoice.pk)
    assert (fresh.memo, fresh.number, fresh.total) == (invoice.memo, invoice.number, invoice.total)


def test_lines_of_a_finalized_invoice_cannot_be_added_or_changed():
    invoice = make_open_invoice()
    line = invoice.lines.get()
    _refused(lambda: InvoiceLine.objects.filter(pk=line.pk).update(description="changed"))
    _refused(
        lambda: InvoiceLine.objects.create(
            invoice=invoice, description="extra", quantity=1, unit_amount=Money(1, "USD"), amount=Money(1, "USD")
        )
    )
    assert list(invoice.lines.values_list("description", flat=True)) == [line.description]


def test_paid_and_void_are_final_statuses():
    """Void is final; a paid invoice only becomes due again (open, uncollectible) when a payment is
    reversed, never draft or void."""
    paid = invoice_mark_paid(invoice_id=make_open_invoice().pk)
    _refused(lambda: Invoice.objects.filter(pk=paid.pk).update(status=InvoiceStatus.VOID))
    _refused(lambda: Invoice.objects.filter(pk=paid.pk).update(status=InvoiceStatus.DRAFT))
    void = invoice_void(invoice_id=make_open_invoice().pk)
    _refused(lambda: Invoice.objects.filter(pk=void.pk).update(status=InvoiceStatus.OPEN))
    _refused(lambda: Invoice.objects.filter(pk=void.pk).update(status=InvoiceStatus.PAID))


def test_a_paid_invoice_may_become_due_again():
    paid = invoice_mark_paid(invoice_id=make_open_invoice().pk)
    assert Invoice.objects.filter(pk=paid.pk).update(status=InvoiceStatus.OPEN) == 1
    assert Invoice.objects.get(pk=paid.pk).status == InvoiceStatus.OPEN


def test_allowed_changes_still_work():
    draft = make_draft_invoice()
    Invoice.objects.filter(pk=draft.pk).update(memo="drafts are editable")
    InvoiceLine.objects.filter(invoice=draft).update(description="edited draft line")
    invoice = make_open_invoice()
    invoice_render_pdf(invoice_id=invoice.pk)  # PDF bookkeeping columns may change
    assert invoice_mark_paid(invoice_id=invoice.pk).status == InvoiceStatus.PAID


def test_taxes_of_a_finalized_invoice_cannot_be_added_or_changed():
    TaxRate.objects.create(name="VAT", percentage=Decimal("20"), country="GB")
    invoice = make_open_invoice()  # a GB customer
    tax = invoice.taxes.get()
    _refused(lambda: InvoiceTax.objects.filter(pk=tax.pk).update(tax_amount=Money(0, "USD")))
    _refused(
        lambda: InvoiceTax.objects.create(
            invoice=invoice,
            name="Extra",
            percentage=Decimal(1),
            taxable_amount=Money(1, "USD"),
            tax_amount=Money(1, "USD"),
        )  # fmt: skip
    )
    assert list(invoice.taxes.values_list("name", "tax_amount")) == [("VAT", tax.tax_amount.amount)]


@pytest.mark.parametrize(
    "changes",
    [
        {"pdf": "invoices/2026/01/other.pdf"},
        {"pdf": ""},
        {"pdf_sha256": "0" * 64},
        {"pdf_rendered_at": "2030-01-01T00:00:00Z"},
    ],
)
def test_a_rendered_pdf_cannot_be_replaced_or_forgotten(changes):
    invoice = invoice_render_pdf(invoice_id=make_open_invoice().pk)

    with pytest.raises(IntegrityError, match="immutable|invoice_pdf_has_sha256"), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).update(**changes)

    fresh = Invoice.objects.get(pk=invoice.pk)
    assert (fresh.pdf.name, fresh.pdf_sha256, fresh.pdf_rendered_at) == (
        invoice.pdf.name, invoice.pdf_sha256, invoice.pdf_rendered_at,
    )  # fmt: skip


def test_a_rendered_pdf_stays_through_later_status_changes():
    invoice = invoice_render_pdf(invoice_id=make_open_invoice().pk)

    paid = invoice_mark_paid(invoice_id=invoice.pk)

    assert (paid.status, paid.pdf_sha256) == (InvoiceStatus.PAID, invoice.pdf_sha256)


@pytest.mark.parametrize(
    "changes",
    [
        {"pdf": "invoices/2026/01/x.pdf"},  # a file without its hash
        {"pdf_sha256": "a" * 64},  # a hash without a file
        {"pdf": "invoices/2026/01/x.pdf", "pdf_sha256": "abc"},  # not a SHA-256
    ],
)
def test_a_stored_pdf_always_has_its_sha256(changes):
    invoice = make_open_invoice()
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).update(pdf_rendered_at="2026-01-15T09:00:00Z", **changes)
    assert Invoice.objects.get(pk=invoice.pk).pdf_sha256 == ""
