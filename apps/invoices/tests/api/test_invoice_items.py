"""One-off charges through the API: pending invoice items (add, list and filter, change, delete) and
one-off invoices; idempotency keys; field errors that write nothing."""

from decimal import Decimal

import pytest
from django.urls import reverse
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import bill_due_subscriptions
from apps.catalog.tests.factories import PlanFactory
from apps.core.models import IdempotencyRecord
from apps.invoices.models import Invoice, InvoiceItem, InvoiceLine, TaxRate
from apps.subscriptions.periods import utc
from apps.subscriptions.tests.factories import make_subscription

pytestmark = pytest.mark.django_db

ITEMS_URL = reverse("api:invoice-item-list")
INVOICES_URL = reverse("api:invoice-list")


def item_url(item_id: int) -> str:
    return reverse("api:invoice-item-detail", args=[item_id])


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.INVOICE_DRAFT_GRACE_HOURS = 0
    settings.INVOICE_GROUPING = "per_subscription"


@pytest.fixture
def customer():
    return CustomerFactory(currency="USD", country="GB")


@pytest.fixture
def vat():
    return TaxRate.objects.create(name="VAT", percentage=Decimal("20"), country="GB")


def _state() -> tuple:
    return (
        list(InvoiceItem.objects.values_list("id", "quantity", "amount")),
        list(Invoice.objects.values_list("id", "status", "total")),
        InvoiceLine.objects.count(),
    )


def test_add_list_filter_change_and_delete_a_pending_item(api_client, superuser, customer, vat):
    api_client.force_authenticate(superuser)

    created = api_client.post(
        ITEMS_URL,
        {"customer": customer.pk, "currency": "USD", "description": "Setup fee", "quantity": "1",
         "unit_amount": "250.00", "tax_rate": vat.pk},
        format="json",
    )  # fmt: skip

    assert created.status_code == 201, created.json()
    body = created.json()
    assert {key: body[key] for key in ("customer", "status", "invoice", "kind", "description", "quantity")} == {
        "customer": customer.pk, "status": "pending", "invoice": None, "kind": "one_off",
        "description": "Setup fee", "quantity": "1",
    }  # fmt: skip
    assert (body["unit_amount"], body["amount"], body["tax_rate"]) == (
        {"amount": "250.00", "currency": "USD"}, {"amount": "250.00", "currency": "USD"}, vat.pk,
    )  # fmt: skip
    other = CustomerFactory(currency="USD")
    api_client.post(
        ITEMS_URL, {"customer": other.pk, "description": "Other", "quantity": "2", "unit_amount": "1"}, format="json"
    )
    listed = api_client.get(ITEMS_URL, {"customer": customer.pk, "status": "pending"}).json()
    assert [row["description"] for row in listed["results"]] == ["Setup fee"]
    assert listed["count"] == 1
    assert api_client.get(ITEMS_URL, {"status": "billed"}).json()["count"] == 0
    assert [row["description"] for row in api_client.get(ITEMS_URL, {"search": "Othe"}).json()["results"]] == ["Other"]

    changed = api_client.patch(item_url(body["id"]), {"quantity": "3", "unit_amount": "99.995"}, format="json")
    assert changed.status_code == 200, changed.json()
    # 3 × 99.995 = 299.985 → 299.99 (rounded once, half up).
    assert changed.json()["amount"] == {"amount": "299.99", "currency": "USD"}
    assert changed.json()["tax_rate"] == vat.pk  # unchanged fields stay
    assert api_client.delete(item_url(body["id"])).status_code == 204
    assert not InvoiceItem.objects.filter(pk=body["id"]).exists()


def test_a_billed_item_is_read_only_and_names_its_invoice(api_client, superuser, customer):
    api_client.force_authenticate(superuser)
    subscription = make_subscription(customer=customer, plan=PlanFactory(prices=[Money("10.00", "USD")]),
                                     started_at=utc(2026, 1, 1))  # fmt: skip
    bill_due_subscriptions(now=utc(2026, 1, 1))
    item_id = api_client.post(
        ITEMS_URL, {"customer": customer.pk, "description": "Hardware", "quantity": "2", "unit_amount": "40"},
        format="json",
    ).json()["id"]  # fmt: skip
    bill_due_subscriptions(now=utc(2026, 2, 1))
    invoice = Invoice.objects.get(subscription=subscription, period_start_at=utc(2026, 2, 1))

    body = api_client.get(item_url(item_id)).json()
    changed = api_client.patch(item_url(item_id), {"quantity": "3"}, format="json")
    deleted = api_client.delete(item_url(item_id))

    assert (body["status"], body["invoice"], body["invoice_number"]) == ("billed", invoice.pk, invoice.number)
    assert changed.status_code == deleted.status_code == 409
    assert changed.json()["code"] == "not_editable"
    assert changed.json()["fields"] == {"invoice": [f"Billed on invoice {invoice.number}."]}
    assert InvoiceItem.objects.get(pk=item_id).quantity == 2
    assert api_client.get(ITEMS_URL, {"invoice": invoice.pk}).json()["count"] == 1


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"currency": "EUR"}, ["currency"]),
        ({"quantity": "-1"}, ["quantity"]),
        ({"quantity": "0"}, ["quantity"]),
        ({"quantity": "two"}, ["quantity"]),
        ({"quantity": 2}, ["quantity"]),  # a JSON number, not a decimal string
        ({"unit_amount": "-10"}, ["unit_amount"]),
        ({"unit_amount": "1e3"}, ["unit_amount"]),
        ({"tax_rate": 999999}, ["tax_rate"]),
        ({"product": 999999}, ["product"]),
        ({"customer": 999999}, ["customer"]),
        ({"description": ""}, ["description"]),
        ({"period_start_at": "2026-02-01T00:00:00Z", "period_end_at": "2026-01-01T00:00:00Z"}, ["period_end_at"]),
    ],
)
def test_bad_input_is_a_field_error_and_writes_nothing(api_client, superuser, customer, payload, fields):
    api_client.force_authenticate(superuser)
    valid = {"customer": customer.pk, "description": "Setup", "quantity": "1", "unit_amount": "10"}
    before = _state()

    response = api_client.post(ITEMS_URL, {**valid, **payload}, format="json", HTTP_IDEMPOTENCY_KEY="bad-1")

    assert response.status_code == 400, response.json()
    assert (response.json()["code"], sorted(response.json()["fields"])) == ("invalid", fields)
    assert _state() == before
    assert not IdempotencyRecord.objects.exists()  # a failed request leaves its key free


def test_a_repeated_idempotency_key_returns_the_first_answer_and_creates_nothing(api_client, superuser, customer):
    api_client.force_authenticate(superuser)
    payload = {"customer": customer.pk, "description": "Setup fee", "quantity": "1", "unit_amount": "250"}

    first = api_client.post(ITEMS_URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="item-42")
    again = api_client.post(ITEMS_URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="item-42")
    reused = api_client.post(
        ITEMS_URL, {**payload, "unit_amount": "300"}, format="json", HTTP_IDEMPOTENCY_KEY="item-42"
    )

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert (reused.status_code, reused.json()["code"]) == (409, "idempotency_key_reused")
    assert InvoiceItem.objects.count() == 1


def test_one_off_invoice_issued_at_once_through_the_api_and_replayed_by_its_key(api_client, superuser, customer, vat):
    api_client.force_authenticate(superuser)
    payload = {
        "customer": customer.pk, "currency": "USD", "memo": "PO 4711", "finalize": True,
        "lines": [
            {"description": "Installation", "quantity": "1", "unit_amount": "1200.00"},
            {"description": "Gateway", "quantity": "4", "unit_amount": "19.995"},
        ],
    }  # fmt: skip

    first = api_client.post(INVOICES_URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="po-4711")
    again = api_client.post(INVOICES_URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="po-4711")

    assert first.status_code == 201, first.json()
    body = first.json()
    assert again.json() == body
    assert Invoice.objects.count() == 1
    # 1,200.00 + 4 × 19.995 = 79.98 → 1,279.98; VAT 20 %: 256.00 (255.996); total 1,535.98.
    assert (body["status"], body["number"][-7:], body["subscription"], body["memo"]) == (
        "open",
        "-000001",
        None,
        "PO 4711",
    )
    assert (body["subtotal"]["amount"], body["tax_total"]["amount"], body["total"]["amount"]) == (
        "1279.98", "256.00", "1535.98",
    )  # fmt: skip
    assert [(line["kind"], line["description"], line["amount"]["amount"]) for line in body["lines"]] == [
        ("one_off", "Installation", "1200.00"),
        ("one_off", "Gateway", "79.98"),
    ]


def test_one_off_invoice_with_a_bad_line_names_it_and_writes_nothing(api_client, superuser, customer):
    api_client.force_authenticate(superuser)
    before = _state()

    responses = [
        api_client.post(INVOICES_URL, body, format="json")
        for body in (
            {"customer": customer.pk, "lines": [{"description": "A", "quantity": "1", "unit_amount": "5"},
                                                {"description": "B", "quantity": "-1", "unit_amount": "5"}]},
            {"customer": customer.pk, "lines": [{"description": "A", "quantity": "1", "unit_amount": "5",
                                                 "tax_rate": 424242}]},
            {"customer": customer.pk, "currency": "EUR",
             "lines": [{"description": "A", "quantity": "1", "unit_amount": "5"}]},
            {"customer": customer.pk, "lines": []},
        )
    ]  # fmt: skip

    assert [(response.status_code, sorted(response.json()["fields"])) for response in responses] == [
        (400, ["lines.1.quantity"]),
        (400, ["lines.0.tax_rate"]),
        (400, ["currency"]),
        (400, ["lines"]),
    ]
    assert _state() == before


def test_a_bad_change_is_a_field_error_and_changes_nothing(api_client, superuser, customer):
    api_client.force_authenticate(superuser)
    item_id = api_client.post(
        ITEMS_URL, {"customer": customer.pk, "description": "Setup", "quantity": "1", "unit_amount": "10"},
        format="json",
    ).json()["id"]  # fmt: skip
    before = _state()

    responses = [
        api_client.patch(item_url(item_id), body, format="json")
        for body in ({"quantity": "-3"}, {"unit_amount": "abc"}, {"tax_rate": 31337}, {"currency": "GBP"})
    ]

    assert [(response.status_code, list(response.json()["fields"])) for response in responses] == [
        (400, ["quantity"]), (400, ["unit_amount"]), (400, ["tax_rate"]), (400, ["currency"]),
    ]  # fmt: skip
    assert _state() == before


def test_the_list_reads_a_page_in_a_fixed_number_of_queries(api_client, superuser, django_assert_max_num_queries):
    api_client.force_authenticate(superuser)
    for index in range(12):
        customer = CustomerFactory(currency="USD")
        api_client.post(
            ITEMS_URL, {"customer": customer.pk, "description": f"Item {index}", "quantity": "1", "unit_amount": "1"},
            format="json",
        )  # fmt: skip

    with django_assert_max_num_queries(6):
        response = api_client.get(ITEMS_URL)

    assert response.json()["count"] == 12


def test_a_refusal_is_in_english_unless_the_request_asks_for_chinese_and_its_code_and_fields_stay(
    api_client, superuser, customer
):
    """The API answers in the request's language (Accept-Language, as Django's LocaleMiddleware reads
    it), English by default; only the human-readable text changes, never the code or the field names."""
    api_client.force_authenticate(superuser)
    payload = {"customer": customer.pk, "currency": "EUR", "description": "Setup", "quantity": "1", "unit_amount": "10"}
    before = _state()

    english = api_client.post(ITEMS_URL, payload, format="json")
    chinese = api_client.post(ITEMS_URL, payload, format="json", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")

    assert english.status_code == chinese.status_code == 400
    assert english.json() == {
        "code": "invalid",
        "message": f"{customer.name} is billed in USD, not EUR.",
        "fields": {"currency": ["The customer is billed in USD: give prices in it."]},
    }
    assert chinese.json() == {
        "code": "invalid",
        "message": f"{customer.name} 以 USD 计费，而不是 EUR。",
        "fields": {"currency": ["该客户以 USD 计费：请用该币种填写价格。"]},
    }
    assert _state() == before
