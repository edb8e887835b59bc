from decimal import Decimal

import pytest
from django.urls import reverse

from apps.accounts.tests.factories import CustomerFactory
from apps.invoices.models import CreditNote, InvoiceEvent, TaxRate
from apps.invoices.services import credit_note_issue, credit_note_render_pdf
from apps.invoices.tests.factories import make_manual_invoice
from apps.payments.services import invoice_mark_paid
from apps.subscriptions.periods import utc

pytestmark = pytest.mark.django_db

LIST_URL = reverse("api:credit-note-list")
NOW = utc(2026, 2, 1, 12)


def issue_url(invoice_id: int) -> str:
    return reverse("api:invoice-credit-notes", args=[invoice_id])


def preview_url(invoice_id: int) -> str:
    return reverse("api:invoice-credit-notes-preview", args=[invoice_id])


def detail_url(credit_note_id: int, action: str = "detail") -> str:
    return reverse(f"api:credit-note-{action}", args=[credit_note_id])


def _eur(amount: str) -> dict:
    return {"amount": amount, "currency": "EUR"}


def _german_invoice():
    TaxRate.objects.create(name="VAT", percentage=Decimal("19"), country="DE")
    customer = CustomerFactory(country="DE", currency="EUR")
    return make_manual_invoice(customer=customer, lines=[("Seats", "4", "200.00"), ("Setup", "1", "50.00")])


def test_issue_a_credit_note_by_line(api_client, superuser):
    invoice = _german_invoice()
    seats = invoice.lines.get(description="Seats")
    api_client.force_authenticate(superuser)

    response = api_client.post(
        issue_url(invoice.pk),
        {"reason": "order_change", "memo": "Two seats fewer", "lines": [{"invoice_line": seats.pk, "quantity": "2"}]},
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    note = CreditNote.objects.get()
    assert body["id"] == note.pk
    assert body["number"] == "CN-2026-000001"
    assert body["status"] == "issued"
    assert body["reason"] == "order_change"
    assert body["invoice"] == invoice.pk
    assert body["invoice_number"] == "INV-2026-000001"
    assert body["customer"] == invoice.customer_id
    assert (body["subtotal"], body["tax_total"], body["total"]) == (_eur("100.00"), _eur("19.00"), _eur("119.00"))
    assert body["amount_due_reduction"] == _eur("119.00")  # the invoice is open
    assert body["credit_to_balance"] == _eur("0.00")
    assert body["refund_amount"] == _eur("0.00")
    assert body["memo"] == "Two seats fewer"
    assert body["lines"] == [
        {
            "id": note.lines.get().pk,
            "position": 1,
            "kind": "invoice_line",
            "invoice_line": seats.pk,
            "description": "Seats",
            "quantity": "2",
            "amount": _eur("100.00"),
            "explanation": ["2 of 4 unit(s) of 200.00 EUR"],
        }
    ]
    assert body["taxes"] == [
        {"name": "VAT", "percentage": "19", "inclusive": False, "taxable_amount": _eur("100.00"),
         "tax_amount": _eur("19.00")}
    ]  # fmt: skip
    assert body["has_pdf"] is False
    invoice_body = api_client.get(reverse("api:invoice-detail", args=[invoice.pk])).json()
    assert invoice_body["amount_due"] == _eur("178.50")  # 297.50 - 119.00
    assert invoice_body["credit_notes"] == [
        {"id": note.pk, "number": "CN-2026-000001", "status": "issued", "total": _eur("119.00"),
         "issued_at": body["issued_at"]}
    ]  # fmt: skip


def test_issuing_is_idempotent(api_client, superuser):
    invoice = _german_invoice()
    api_client.force_authenticate(superuser)
    payload = {"reason": "duplicate", "full": True}

    first = api_client.post(issue_url(invoice.pk), payload, HTTP_IDEMPOTENCY_KEY="cn-1")
    again = api_client.post(issue_url(invoice.pk), payload, HTTP_IDEMPOTENCY_KEY="cn-1")

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert CreditNote.objects.count() == 1


def test_preview_shows_the_credit_note_and_writes_nothing(api_client, superuser):
    invoice = invoice_mark_paid(invoice_id=_german_invoice().pk, now=NOW)
    api_client.force_authenticate(superuser)
    events = InvoiceEvent.objects.count()

    response = api_client.post(
        preview_url(invoice.pk), {"reason": "other", "amount": _eur("10.00"), "refund_amount": _eur("11.90")}
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["lines"] == [
        {"kind": "adjustment", "description": "Credit", "invoice_line": None, "quantity": None,
         "amount": _eur("10.00"), "explanation": []}
    ]  # fmt: skip
    assert (body["subtotal"], body["tax_total"], body["total"]) == (_eur("10.00"), _eur("1.90"), _eur("11.90"))
    assert (body["refund_amount"], body["credit_to_balance"], body["amount_due_reduction"]) == (
        _eur("11.90"), _eur("0.00"), _eur("0.00")
    )  # fmt: skip
    assert (body["creditable_before"], body["creditable_after"]) == (_eur("297.50"), _eur("285.60"))
    assert body["settles_invoice"] is False
    assert not CreditNote.objects.exists()
    assert InvoiceEvent.objects.count() == events


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"reason": "other", "amount": _eur("1000.00")}, ["amount"]),
        ({"reason": "other", "amount": {"amount": "10.00", "currency": "USD"}}, ["amount.currency"]),
        ({"reason": "nonsense", "full": True}, ["reason"]),
        ({"reason": "other", "lines": [{"invoice_line": 0, "quantity": "1"}]}, ["lines.0.invoice_line"]),
        ({"reason": "other", "lines": [{"invoice_line": "LINE", "quantity": "5"}]}, ["lines.0.quantity"]),
        ({"reason": "other", "full": True, "refund_amount": _eur("1.00")}, ["refund_amount"]),
        ({"reason": "other"}, ["lines"]),
    ],
)
def test_bad_requests_are_400_with_field_errors_and_write_nothing(api_client, superuser, payload, fields):
    invoice = _german_invoice()
    seats = invoice.lines.get(description="Seats")
    for line in payload.get("lines", []):
        if line["invoice_line"] == "LINE":
            line["invoice_line"] = seats.pk
    api_client.force_authenticate(superuser)

    response = api_client.post(issue_url(invoice.pk), payload, HTTP_IDEMPOTENCY_KEY="bad")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert list(body["fields"]) == fields
    assert not CreditNote.objects.exists()


def test_a_draft_cannot_be_credited_409(api_client, superuser):
    draft = make_manual_invoice(finalize=False)
    api_client.force_authenticate(superuser)

    response = api_client.post(issue_url(draft.pk), {"reason": "other", "full": True})

    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"


def _issued(**kwargs) -> CreditNote:
    invoice = make_manual_invoice(customer=CustomerFactory(currency="EUR", name=kwargs.pop("name", "Acme")))
    return credit_note_issue(
        invoice_id=invoice.pk, reason=kwargs.pop("reason", "other"), amount=Decimal("10.00"), **kwargs
    )


def test_list_credit_notes_with_filters_search_and_bounded_queries(
    api_client, superuser, django_assert_max_num_queries
):
    january = _issued(reason="duplicate", now=utc(2026, 1, 20), name="Globex")
    march = _issued(reason="other", now=utc(2026, 3, 5))
    for _ in range(10):
        _issued(now=utc(2026, 3, 6))
    api_client.force_authenticate(superuser)

    def ids(params):
        response = api_client.get(LIST_URL, params)
        assert response.status_code == 200, response.json()
        return sorted(row["id"] for row in response.json()["results"])

    with django_assert_max_num_queries(4):
        assert len(api_client.get(LIST_URL).json()["results"]) == 12
    assert ids({"reason": "duplicate"}) == [january.pk]
    assert ids({"invoice": march.invoice_id}) == [march.pk]
    assert ids({"customer": january.customer_id}) == [january.pk]
    assert ids({"issued_at_before": "2026-02-01T00:00:00Z"}) == [january.pk]
    assert ids({"search": march.number}) == [march.pk]
    assert ids({"search": january.invoice.number}) == [january.pk]
    assert ids({"search": "Globex"}) == [january.pk]
    assert ids({"status": "void"}) == []
    assert api_client.get(LIST_URL, {"issued_at_after": "soon"}).status_code == 400


def test_pdf_download(api_client, superuser):
    note = _issued()
    api_client.force_authenticate(superuser)

    missing = api_client.get(detail_url(note.pk, "pdf"))
    credit_note_render_pdf(credit_note_id=note.pk)
    response = api_client.get(detail_url(note.pk, "pdf"))

    assert missing.status_code == 404
    assert missing.json()["code"] == "pdf_not_rendered"
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content).startswith(b"%PDF")


def test_void_a_credit_note(api_client, superuser):
    note = _issued()
    api_client.force_authenticate(superuser)

    response = api_client.post(detail_url(note.pk, "void"), {"reason": "issued by mistake"})

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "void"
    again = api_client.post(detail_url(note.pk, "void"), {})
    assert again.status_code == 409


def test_customer_credit_balance(api_client, superuser):
    invoice = invoice_mark_paid(invoice_id=_german_invoice().pk, now=NOW)
    credit_note_issue(invoice_id=invoice.pk, reason="other", amount=Decimal("10.00"), now=NOW)
    api_client.force_authenticate(superuser)

    response = api_client.get(reverse("api:customer-balance", args=[invoice.customer_id]))

    assert response.status_code == 200
    assert response.json() == {"customer": invoice.customer_id, "credit_balance": _eur("11.90")}


# --- permissions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_kind", "perms", "expected"),
    [
        ("list", None, 401),
        ("list", [], 403),
        ("list", ["invoices.view_invoice"], 403),
        ("list", ["invoices.view_creditnote"], 200),
        ("retrieve", ["invoices.view_creditnote"], 200),
        ("pdf", [], 403),
        ("pdf", ["invoices.view_creditnote"], 404),  # allowed; not rendered yet
        ("void", ["invoices.view_creditnote"], 403),
        ("void", ["invoices.change_creditnote"], 200),
        ("issue", None, 401),
        ("issue", ["invoices.view_invoice"], 403),
        ("issue", ["invoices.change_invoice"], 403),
        ("issue", ["invoices.add_creditnote"], 201),
        ("preview", ["invoices.view_invoice"], 403),
        ("preview", ["invoices.add_creditnote"], 200),
        ("balance", ["invoices.view_creditnote"], 403),
        ("balance", ["accounts.view_customer"], 200),
    ],
)
def test_credit_note_permission_matrix(api_client, make_staff, request_kind, perms, expected):
    note = _issued(now=NOW)
    other = make_manual_invoice(customer=note.customer)
    if perms is not None:
        api_client.force_authenticate(make_staff(*perms))

    if request_kind == "list":
        response = api_client.get(LIST_URL)
    elif request_kind == "retrieve":
        response = api_client.get(detail_url(note.pk))
    elif request_kind == "pdf":
        response = api_client.get(detail_url(note.pk, "pdf"))
    elif request_kind == "void":
        response = api_client.post(detail_url(note.pk, "void"))
    elif request_kind == "balance":
        response = api_client.get(reverse("api:customer-balance", args=[note.customer_id]))
    else:
        url = issue_url(other.pk) if request_kind == "issue" else preview_url(other.pk)
        response = api_client.post(url, {"reason": "other", "amount": _eur("1.00")})

    assert response.status_code == expected
