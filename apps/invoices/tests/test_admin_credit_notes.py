"""The admin's credit notes: issuing from the invoice page (form, preview, confirm), the list and the
read-only pages, the PDF and voiding."""

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from apps.accounts.tests.factories import CustomerFactory
from apps.invoices.constants import CreditNoteStatus
from apps.invoices.models import CreditNote, TaxRate
from apps.invoices.services import credit_note_issue, credit_note_render_pdf
from apps.invoices.tests.factories import make_manual_invoice
from apps.payments.services import invoice_mark_paid
from apps.subscriptions.periods import utc

pytestmark = pytest.mark.django_db

NOW = utc(2026, 2, 1, 12)


def issue_url(invoice) -> str:
    return reverse("admin:invoices_invoice_credit_note", args=[invoice.pk])


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def _german_invoice():
    TaxRate.objects.create(name="VAT", percentage=Decimal("19"), country="DE")
    customer = CustomerFactory(country="DE", currency="EUR")
    return make_manual_invoice(customer=customer, lines=[("Seats", "4", "200.00"), ("Setup", "1", "50.00")])


def test_the_invoice_page_offers_the_credit_note_and_lists_credit_notes(client, superuser):
    invoice = _german_invoice()
    note = credit_note_issue(invoice_id=invoice.pk, reason="other", amount=Decimal("10.00"), now=NOW)
    client.force_login(superuser)

    response = client.get(reverse("admin:invoices_invoice_change", args=[invoice.pk]))

    content = response.content.decode()
    assert response.status_code == 200
    assert f'href="{issue_url(invoice)}"' in content
    assert "Issue credit note" in content
    assert note.number in content
    assert "amount due reduced by 11.90 EUR" in content


def test_issue_by_lines_preview_then_confirm(client, superuser):
    invoice = _german_invoice()
    seats = invoice.lines.get(description="Seats")
    client.force_login(superuser)
    data = {"mode": "lines", "reason": "order_change", "memo": "", f"line_{seats.pk}_quantity": "1"}

    form = client.get(issue_url(invoice))
    preview = client.post(issue_url(invoice), data)

    assert form.status_code == 200
    assert preview.status_code == 200
    content = preview.content.decode()
    assert 'id="credit-note-preview"' in content
    assert "50.00 EUR" in content and "9.50 EUR" in content and "59.50 EUR" in content
    assert not CreditNote.objects.exists()  # the preview writes nothing

    confirmed = client.post(issue_url(invoice), {**data, "confirm": "1"})

    assert confirmed.status_code == 302
    assert confirmed.url == reverse("admin:invoices_invoice_change", args=[invoice.pk])
    note = CreditNote.objects.get()
    assert (note.total.amount, note.issued_by, note.reason) == (Decimal("59.50"), superuser, "order_change")
    assert messages_of(confirmed) == [f"Issued credit note {note.number} for 59.50 EUR on {invoice.number}."]


def test_issue_in_full_on_a_paid_invoice_with_a_refund(client, superuser):
    invoice = invoice_mark_paid(invoice_id=_german_invoice().pk, now=NOW)
    client.force_login(superuser)

    response = client.post(
        issue_url(invoice),
        {"mode": "full", "reason": "duplicate", "refund_amount": "97.50", "refund_reference": "SEPA-1", "confirm": "1"},
    )

    assert response.status_code == 302
    note = CreditNote.objects.get()
    assert (note.total.amount, note.refund_amount.amount, note.credit_to_balance.amount) == (
        Decimal("297.50"), Decimal("97.50"), Decimal("200.00")
    )  # fmt: skip
    assert note.refund_reference == "SEPA-1"


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"mode": "amount", "amount": "1000"}, "amount", "Only 297.50 EUR is left to credit on invoice"),
        ({"mode": "lines", "LINE_quantity": "5"}, "LINE_quantity", "At most 4 unit(s) are left to credit"),
        ({"mode": "amount"}, "amount", "Give the amount to credit."),
        ({"mode": "lines"}, None, "Give a quantity or an amount for at least one line."),
    ],
)
def test_bad_input_is_shown_on_the_form_and_nothing_is_issued(client, superuser, data, field, message):
    invoice = _german_invoice()
    seats = invoice.lines.get(description="Seats")
    data = {key.replace("LINE", f"line_{seats.pk}"): value for key, value in data.items()}
    client.force_login(superuser)

    response = client.post(issue_url(invoice), {"reason": "other", **data, "confirm": "1"})

    assert response.status_code == 200
    form = response.context["form"]
    errors = form.errors.get(field.replace("LINE", f"line_{seats.pk}") if field else "__all__")
    assert errors and any(message in error for error in errors), form.errors
    assert not CreditNote.objects.exists()


def test_a_draft_offers_no_credit_note_and_refuses_one(client, superuser):
    draft = make_manual_invoice(finalize=False)
    client.force_login(superuser)

    page = client.get(reverse("admin:invoices_invoice_change", args=[draft.pk]))
    response = client.post(issue_url(draft), {"mode": "full", "reason": "other", "confirm": "1"})

    assert "Issue credit note" not in page.content.decode()
    assert response.status_code == 200
    assert any("draft" in error for error in response.context["form"].non_field_errors())
    assert not CreditNote.objects.exists()


@pytest.mark.parametrize(("perms", "expected"), [([], 403), (["invoices.view_invoice"], 403)])
def test_issuing_needs_the_permission(client, make_staff, perms, expected):
    invoice = _german_invoice()
    client.force_login(make_staff(*perms))

    assert client.get(issue_url(invoice)).status_code == expected
    assert client.post(issue_url(invoice), {"mode": "full", "reason": "other", "confirm": "1"}).status_code == expected
    assert not CreditNote.objects.exists()


def test_staff_allowed_to_issue_credit_notes(client, make_staff):
    invoice = _german_invoice()
    client.force_login(make_staff("invoices.view_invoice", "invoices.add_creditnote"))

    response = client.post(issue_url(invoice), {"mode": "full", "reason": "other", "confirm": "1"})

    assert response.status_code == 302
    assert CreditNote.objects.count() == 1


def test_the_credit_note_list_filters_and_searches(client, superuser, django_assert_max_num_queries):
    invoice = _german_invoice()
    first = credit_note_issue(invoice_id=invoice.pk, reason="duplicate", amount=Decimal("1.00"), now=NOW)
    second = credit_note_issue(invoice_id=invoice.pk, reason="other", amount=Decimal("2.00"), now=NOW)
    client.force_login(superuser)
    url = reverse("admin:invoices_creditnote_changelist")

    with django_assert_max_num_queries(12):
        everything = client.get(url)
    by_reason = client.get(url, {"reason__exact": "duplicate"})
    by_search = client.get(url, {"q": invoice.customer.name})

    assert everything.status_code == 200
    assert [note.pk for note in everything.context["cl"].result_list] == [second.pk, first.pk]
    assert [note.pk for note in by_reason.context["cl"].result_list] == [first.pk]
    assert len(by_search.context["cl"].result_list) == 2


def test_the_credit_note_page_is_read_only_with_its_lines_pdf_and_void(client, superuser):
    invoice = _german_invoice()
    note = credit_note_issue(invoice_id=invoice.pk, reason="other", amount=Decimal("10.00"), now=NOW)
    credit_note_render_pdf(credit_note_id=note.pk)
    client.force_login(superuser)
    url = reverse("admin:invoices_creditnote_change", args=[note.pk])

    page = client.get(url)
    pdf = client.get(reverse("admin:invoices_creditnote_pdf", args=[note.pk]))
    changed = client.post(url, {"memo": "changed"})

    content = page.content.decode()
    assert page.status_code == 200
    assert note.number in content and invoice.number in content
    assert 'id="credit-note-void"' in content
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert changed.status_code == 403
    assert client.get(reverse("admin:invoices_creditnote_add")).status_code == 403

    voided = client.post(reverse("admin:invoices_creditnote_void", args=[note.pk]))

    assert voided.status_code == 302
    note.refresh_from_db()
    assert note.status == CreditNoteStatus.VOID
    assert messages_of(voided) == [f"Voided credit note {note.number}."]


def test_voiding_needs_the_permission(client, make_staff):
    note = credit_note_issue(invoice_id=_german_invoice().pk, reason="other", amount=Decimal("1.00"), now=NOW)
    client.force_login(make_staff("invoices.view_creditnote"))

    page = client.get(reverse("admin:invoices_creditnote_change", args=[note.pk]))
    response = client.post(reverse("admin:invoices_creditnote_void", args=[note.pk]))

    assert page.status_code == 200 and 'id="credit-note-void"' not in page.content.decode()
    assert response.status_code == 403
    note.refresh_from_db()
    assert note.status == CreditNoteStatus.ISSUED


def test_the_customer_page_shows_the_credit_balance(client, superuser):
    invoice = invoice_mark_paid(invoice_id=_german_invoice().pk, now=NOW)
    credit_note_issue(invoice_id=invoice.pk, reason="other", amount=Decimal("10.00"), now=NOW)
    client.force_login(superuser)

    response = client.get(reverse("admin:accounts_customer_change", args=[invoice.customer_id]))

    assert "credit balance 11.90 EUR" in response.content.decode()
