from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse

from apps.accounts.models import BillingContact
from apps.accounts.tests.factories import CustomerFactory
from apps.catalog.tests.factories import PlanFactory
from apps.invoices.constants import InvoiceEventType
from apps.invoices.models import Invoice, InvoiceEvent, TaxRate
from apps.invoices.services import invoice_render_pdf, invoice_void
from apps.invoices.tests.factories import make_draft_invoice, make_open_invoice
from apps.payments.models import Payment
from apps.subscriptions.periods import utc
from apps.subscriptions.tests.factories import make_subscription

pytestmark = pytest.mark.django_db

LIST_URL = reverse("api:invoice-list")


def detail_url(invoice_id: int) -> str:
    return reverse("api:invoice-detail", args=[invoice_id])


def action_url(name: str, invoice_id: int) -> str:
    return reverse(f"api:invoice-{name}", args=[invoice_id])


def test_retrieve_invoice_with_lines_and_totals(api_client, superuser):
    subscription = make_subscription(quantity=3, started_at=utc(2026, 1, 15, 9))
    invoice = make_open_invoice(subscription=subscription)
    api_client.force_authenticate(superuser)

    response = api_client.get(detail_url(invoice.pk))

    assert response.status_code == 200
    body = response.json()
    line = invoice.lines.get()
    assert body["id"] == invoice.pk
    assert body["number"] == "INV-2026-000001"
    assert body["status"] == "open"
    assert body["customer"] == subscription.customer_id
    assert body["subscription"] == subscription.pk
    assert body["currency"] == "USD"
    assert body["subtotal"] == {"amount": "147.00", "currency": "USD"}
    assert body["tax_total"] == {"amount": "0.00", "currency": "USD"}
    assert body["total"] == {"amount": "147.00", "currency": "USD"}
    assert body["period_start_at"] == "2026-01-15T09:00:00Z"
    assert body["period_end_at"] == "2026-02-15T09:00:00Z"
    assert body["issued_at"] == "2026-01-15T09:00:00Z"
    assert body["due_on"] == "2026-01-29"
    assert body["has_pdf"] is False
    assert body["lines"] == [
        {
            "id": line.pk,
            "position": 1,
            "subscription": None,
            "kind": "recurring",
            "description": line.description,
            "period_start_at": "2026-01-15T09:00:00Z",
            "period_end_at": "2026-02-15T09:00:00Z",
            "quantity": "3",
            "unit_amount": {"amount": "49.00", "currency": "USD"},
            "amount": {"amount": "147.00", "currency": "USD"},
            "explanation": [],
            "product": None,
            "tax_rate": None,
        }
    ]
    assert body["customer_details"]["name"] == subscription.customer.name
    assert body["seller_details"]["name"] == "Acme Cloud Ltd."


def test_list_invoices_filters_and_search(api_client, superuser):
    draft = make_draft_invoice(subscription=make_subscription(started_at=utc(2026, 1, 15, 9)))
    january = make_open_invoice(subscription=make_subscription(started_at=utc(2026, 1, 20)))
    march = make_open_invoice(subscription=make_subscription(started_at=utc(2026, 3, 5)))
    api_client.force_authenticate(superuser)

    def ids(params):
        response = api_client.get(LIST_URL, params)
        assert response.status_code == 200, response.data
        return sorted(row["id"] for row in response.json()["results"])

    assert ids({}) == sorted([draft.pk, january.pk, march.pk])
    assert ids({"status": "draft"}) == [draft.pk]
    assert ids({"customer": march.customer_id}) == [march.pk]
    assert ids({"subscription": january.subscription_id}) == [january.pk]
    assert ids({"issued_at_after": "2026-03-01T00:00:00Z"}) == [march.pk]
    assert ids({"issued_at_before": "2026-03-01T00:00:00Z"}) == [january.pk]
    assert ids({"search": march.number}) == [march.pk]
    bad = api_client.get(LIST_URL, {"issued_at_after": "soon"})
    assert bad.status_code == 400
    assert list(bad.json()["fields"]) == ["issued_at_after"]


def test_list_invoices_runs_a_bounded_number_of_queries(api_client, superuser, django_assert_max_num_queries):
    plan = PlanFactory()
    for _ in range(20):
        make_draft_invoice(subscription=make_subscription(plan=plan, started_at=utc(2026, 1, 15, 9)))
    api_client.force_authenticate(superuser)

    with django_assert_max_num_queries(4):
        response = api_client.get(LIST_URL)

    results = response.json()["results"]
    assert len(results) == 20
    assert {row["total"]["amount"] for row in results} == {"49.00"}


def test_there_is_no_update_or_delete_and_create_is_for_one_off_invoices(api_client, superuser):
    invoice = make_draft_invoice()
    api_client.force_authenticate(superuser)

    # Invoices are made by billing; staff make only one-off invoices (a body of lines, see
    # test_invoice_items.py): an empty body is a field error.
    response = api_client.post(LIST_URL, {}, format="json")
    assert (response.status_code, sorted(response.json()["fields"])) == (400, ["customer", "lines"])
    assert api_client.patch(detail_url(invoice.pk), {"memo": "x"}).status_code == 405
    assert api_client.delete(detail_url(invoice.pk)).status_code == 405


# --- lifecycle actions ---------------------------------------------------------------------------


def test_finalize_a_draft(api_client, superuser):
    draft = make_draft_invoice()
    api_client.force_authenticate(superuser)

    response = api_client.post(action_url("finalize", draft.pk))

    assert response.status_code == 200, response.data
    assert response.json()["status"] == "open"
    assert response.json()["number"].startswith("INV-")
    draft.refresh_from_db()
    assert draft.status == "open"
    assert InvoiceEvent.objects.get(invoice=draft, type=InvoiceEventType.FINALIZED).actor == superuser


def test_void_mark_uncollectible_and_mark_paid(api_client, superuser):
    first = make_open_invoice()
    second = make_open_invoice()
    api_client.force_authenticate(superuser)

    voided = api_client.post(action_url("void", first.pk), {"reason": "duplicate"})
    uncollectible = api_client.post(action_url("mark-uncollectible", second.pk), {"reason": "bankrupt"})
    paid = api_client.post(action_url("mark-paid", second.pk), {"reference": "WIRE-7"})

    assert (voided.status_code, voided.json()["status"]) == (200, "void")
    assert (uncollectible.status_code, uncollectible.json()["status"]) == (200, "uncollectible")
    assert (paid.status_code, paid.json()["status"]) == (200, "paid")
    assert InvoiceEvent.objects.get(invoice=first, type=InvoiceEventType.VOIDED).data == {"reason": "duplicate"}
    payment = Payment.objects.get()  # mark paid records a manual payment of what is due
    assert (payment.reference, payment.amount, payment.method) == ("WIRE-7", second.total, "bank_transfer")
    assert InvoiceEvent.objects.get(invoice=second, type=InvoiceEventType.PAID).data == {
        "payment": payment.pk,
        "reference": "WIRE-7",
        "method": "bank_transfer",
    }


@pytest.mark.parametrize(
    ("setup", "action"),
    [
        ("open", "finalize"),
        ("paid", "void"),
        ("paid", "mark-uncollectible"),
        ("draft", "mark-paid"),
        ("draft", "mark-uncollectible"),
        ("void", "mark-paid"),
    ],
)
def test_invalid_transitions_are_409_and_change_nothing(api_client, superuser, setup, action):
    invoice = make_draft_invoice() if setup == "draft" else make_open_invoice()
    if setup in ("paid", "void"):
        Invoice.objects.filter(pk=invoice.pk).update(status=setup)
    events_before = InvoiceEvent.objects.count()
    api_client.force_authenticate(superuser)

    response = api_client.post(action_url(action, invoice.pk))

    assert response.status_code == 409, response.data
    assert response.json()["code"] == "invalid_transition"
    assert set(response.json()) == {"code", "message", "fields"}
    invoice.refresh_from_db()
    assert invoice.status == setup
    assert InvoiceEvent.objects.count() == events_before


def test_action_on_unknown_invoice_is_404(api_client, superuser):
    api_client.force_authenticate(superuser)

    response = api_client.post(action_url("void", 999999))

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


# --- PDF -----------------------------------------------------------------------------------------


def test_pdf_is_streamed_once_rendered(api_client, superuser):
    invoice = make_open_invoice()
    invoice_render_pdf(invoice_id=invoice.pk)
    api_client.force_authenticate(superuser)

    response = api_client.get(action_url("pdf", invoice.pk), HTTP_ACCEPT="application/pdf")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert f'filename="{invoice.number}.pdf"' in response["Content-Disposition"]
    content = b"".join(response.streaming_content)
    assert content.startswith(b"%PDF")
    assert api_client.get(detail_url(invoice.pk)).json()["has_pdf"] is True


@pytest.mark.parametrize("accept", ["application/pdf", "application/json"])
def test_pdf_not_rendered_yet_is_404_with_the_error_shape(api_client, superuser, accept):
    invoice = make_open_invoice()
    api_client.force_authenticate(superuser)

    response = api_client.get(action_url("pdf", invoice.pk), HTTP_ACCEPT=accept)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "code": "pdf_not_rendered",
        "message": "The PDF bill of this invoice has not been rendered yet.",
        "fields": {},
    }


# --- Email ---------------------------------------------------------------------------------------


def test_send_emails_the_bill_again_and_says_to_whom(api_client, superuser):
    invoice = invoice_render_pdf(invoice_id=make_open_invoice().pk)
    BillingContact.objects.create(customer=invoice.customer, email="ap@customer.example")
    api_client.force_authenticate(superuser)

    response = api_client.post(action_url("send", invoice.pk))

    assert response.status_code == 200
    event = invoice.events.get(type=InvoiceEventType.EMAILED)
    assert response.json() == {
        "invoice": invoice.pk,
        "number": invoice.number,
        "sent_at": event.occurred_at.isoformat().replace("+00:00", "Z"),
        "recipients": [invoice.customer.email, "ap@customer.example"],
        "pdf_sha256": invoice.pdf_sha256,
    }
    assert (event.actor, event.data["resend"]) == (superuser, True)
    [message] = mail.outbox
    assert message.to == [invoice.customer.email, "ap@customer.example"]
    assert message.attachments[0][0] == f"{invoice.number}.pdf"


def test_send_is_idempotent_with_a_key(api_client, superuser):
    invoice = invoice_render_pdf(invoice_id=make_open_invoice().pk)
    api_client.force_authenticate(superuser)

    first = api_client.post(action_url("send", invoice.pk), HTTP_IDEMPOTENCY_KEY="send-once")
    second = api_client.post(action_url("send", invoice.pk), HTTP_IDEMPOTENCY_KEY="send-once")

    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert len(mail.outbox) == 1


@pytest.mark.parametrize(
    ("setup", "code"),
    [("draft", "not_editable"), ("unrendered", "pdf_not_rendered"), ("void", "invalid_transition")],
)
def test_send_refusals_have_the_error_shape_and_send_nothing(api_client, superuser, setup, code):
    if setup == "draft":
        invoice = make_draft_invoice()
    elif setup == "unrendered":
        invoice = make_open_invoice()
    else:
        invoice = invoice_render_pdf(invoice_id=make_open_invoice().pk)
        invoice_void(invoice_id=invoice.pk)
    api_client.force_authenticate(superuser)

    response = api_client.post(action_url("send", invoice.pk))

    assert response.status_code == 409
    assert response.json()["code"] == code
    assert set(response.json()) == {"code", "message", "fields"}
    assert mail.outbox == []
    assert not InvoiceEvent.objects.filter(type=InvoiceEventType.EMAILED).exists()


def test_detail_shows_the_pdf_hash(api_client, superuser):
    invoice = invoice_render_pdf(invoice_id=make_open_invoice().pk)
    api_client.force_authenticate(superuser)

    body = api_client.get(detail_url(invoice.pk)).json()

    assert body["pdf_sha256"] == invoice.pdf_sha256 and len(body["pdf_sha256"]) == 64


# --- permissions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_kind", "perms", "expected"),
    [
        ("list", None, 401),
        ("list", [], 403),
        ("list", ["invoices.view_invoice"], 200),
        ("retrieve", ["accounts.view_customer"], 403),
        ("retrieve", ["invoices.view_invoice"], 200),
        ("pdf", [], 403),
        ("pdf", ["invoices.view_invoice"], 404),  # allowed; not rendered yet
        ("void", None, 401),
        ("void", ["invoices.view_invoice"], 403),
        ("void", ["invoices.add_invoice"], 403),
        ("void", ["invoices.change_invoice"], 200),
        ("finalize", ["invoices.view_invoice"], 403),
        ("finalize", ["invoices.change_invoice"], 409),  # allowed; already open
        ("mark-paid", ["invoices.view_invoice"], 403),
        ("mark-paid", ["invoices.change_invoice"], 200),
        ("mark-uncollectible", ["invoices.view_invoice"], 403),
        ("mark-uncollectible", ["invoices.change_invoice"], 200),
        ("send", None, 401),
        ("send", ["invoices.view_invoice"], 403),
        ("send", ["invoices.change_invoice"], 409),  # allowed; no PDF rendered yet
    ],
)
def test_invoice_permission_matrix(api_client, make_staff, request_kind, perms, expected):
    invoice = make_open_invoice()
    if perms is not None:
        api_client.force_authenticate(make_staff(*perms))

    if request_kind == "list":
        response = api_client.get(LIST_URL)
    elif request_kind == "retrieve":
        response = api_client.get(detail_url(invoice.pk))
    elif request_kind == "pdf":
        response = api_client.get(action_url("pdf", invoice.pk))
    else:
        response = api_client.post(action_url(request_kind, invoice.pk))

    assert response.status_code == expected


def test_customers_of_other_currencies_list_their_own_amounts(api_client, superuser):
    customer = CustomerFactory(currency="EUR")
    invoice = make_open_invoice(subscription=make_subscription(customer=customer, started_at=utc(2026, 1, 15, 9)))
    api_client.force_authenticate(superuser)

    row = api_client.get(LIST_URL).json()["results"][0]

    assert row["id"] == invoice.pk
    assert row["total"] == {"amount": "45.00", "currency": "EUR"}


def test_invoice_detail_lists_taxes_per_rate(api_client, superuser):
    TaxRate.objects.create(name="VAT", percentage=Decimal("20"), country="GB", inclusive=True)
    invoice = make_open_invoice()  # a GB customer
    api_client.force_authenticate(superuser)

    body = api_client.get(detail_url(invoice.pk)).json()

    (tax,) = invoice.taxes.all()
    assert body["taxes"] == [
        {
            "name": "VAT",
            "percentage": "20",
            "inclusive": True,
            "taxable_amount": {"amount": "40.83", "currency": "USD"},  # 49.00 less the 20 % it contains
            "tax_amount": {"amount": "8.17", "currency": "USD"},  # 49.00 × 20/120 = 8.1666…
        }
    ]
    assert body["reverse_charge"] is False
    assert tax.taxable_amount + tax.tax_amount == invoice.subtotal
