"""The staff payments API: list/filter/detail, manual payments with allocations, reversal, refunds;
field errors for bad input with nothing stored; Idempotency-Key; permissions."""

from decimal import Decimal

import pytest
from django.urls import reverse

from apps.invoices.models import Invoice
from apps.invoices.services import credit_note_issue, invoice_void
from apps.invoices.tests.factories import make_manual_invoice
from apps.payments.constants import PaymentMethod, PaymentStatus
from apps.payments.models import Payment, PaymentAllocation, Refund
from apps.payments.services import credit_note_issue_and_refund, payment_record_manual
from apps.payments.tests.factories import RECEIVED_AT, make_customer, make_invoice

pytestmark = pytest.mark.django_db

LIST_URL = reverse("api:payment-list")
REFUNDS_URL = reverse("api:refund-list")
INVOICES_URL = reverse("api:invoice-list")


def detail_url(payment_id: int) -> str:
    return reverse("api:payment-detail", args=[payment_id])


def reverse_url(payment_id: int) -> str:
    return reverse("api:payment-reverse", args=[payment_id])


def _usd(amount: str) -> dict:
    return {"amount": amount, "currency": "USD"}


def _body(customer, amount="100.00", currency="USD", **extra) -> dict:
    return {
        "customer": customer.pk,
        "amount": {"amount": amount, "currency": currency},
        "method": "bank_transfer",
        "reference": "SEPA 2026-0042",
        "received_at": "2026-02-01T12:00:00Z",
        **extra,
    }


def _pay(customer, amount: str, invoice=None) -> Payment:
    return payment_record_manual(
        customer_id=customer.pk, amount=Decimal(amount), currency="USD", method=PaymentMethod.BANK_TRANSFER,
        reference="SEPA", received_at=RECEIVED_AT,
        allocations=None if invoice is None else [(invoice.pk, Decimal(amount))],
    )  # fmt: skip


def _invoice_row(invoice: Invoice) -> tuple:
    invoice.refresh_from_db()
    return invoice.status, invoice.amount_paid.amount


# --- recording ----------------------------------------------------------------------------------------


def test_record_a_manual_payment_with_allocations(api_client, superuser):
    customer = make_customer()
    first, second = make_invoice(customer, "100.00"), make_invoice(customer, "30.00")
    api_client.force_authenticate(superuser)

    response = api_client.post(
        LIST_URL,
        _body(customer, "150.00", allocations=[{"invoice": second.pk, "amount": "30.00"},
                                               {"invoice": first.pk, "amount": "100.00"}]),
        format="json",
    )  # fmt: skip

    assert response.status_code == 201, response.json()
    body = response.json()
    payment = Payment.objects.get()
    assert body["id"] == payment.pk
    assert (body["customer"], body["provider"], body["method"], body["status"]) == (
        customer.pk,
        "manual",
        "bank_transfer",
        "succeeded",
    )
    assert body["amount"] == _usd("150.00")
    assert body["amount_refunded"] == _usd("0.00")
    assert body["credited_to_balance"] == _usd("20.00")
    assert body["reference"] == "SEPA 2026-0042"
    assert body["received_at"] == "2026-02-01T12:00:00Z"
    assert body["allocations"] == [
        {"invoice": second.pk, "invoice_number": second.number, "amount": _usd("30.00")},
        {"invoice": first.pk, "invoice_number": first.number, "amount": _usd("100.00")},
    ]
    assert [event["type"] for event in body["events"]] == ["created", "succeeded", "allocated", "credited_to_balance"]
    assert _invoice_row(first) == ("paid", Decimal("100.00"))
    assert _invoice_row(second) == ("paid", Decimal("30.00"))


def test_without_allocations_the_oldest_due_invoice_is_paid_first(api_client, superuser):
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    api_client.force_authenticate(superuser)

    response = api_client.post(LIST_URL, _body(customer, "40.00"), format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["allocations"] == [
        {"invoice": invoice.pk, "invoice_number": invoice.number, "amount": _usd("40.00")}
    ]
    detail = api_client.get(reverse("api:invoice-detail", args=[invoice.pk])).json()
    assert (detail["status"], detail["amount_paid"], detail["amount_due"], detail["collection_method"]) == (
        "open",
        _usd("40.00"),
        _usd("60.00"),
        "send_invoice",
    )


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"amount": {"amount": "-5.00", "currency": "USD"}}, ["amount.amount"]),
        ({"amount": {"amount": "0", "currency": "USD"}}, ["amount"]),
        ({"amount": {"amount": "10.00", "currency": "EUR"}}, ["amount.currency"]),
        ({"method": "card"}, ["method"]),
        ({"received_at": "yesterday"}, ["received_at"]),
        ({"customer": 999999}, ["customer"]),
        ({"allocations": [{"invoice": "INVOICE", "amount": "10.00"}]}, ["allocations.0.invoice"]),
    ],
)
def test_bad_input_is_refused_field_by_field_and_stores_nothing(api_client, superuser, change, fields):
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    api_client.force_authenticate(superuser)

    response = api_client.post(LIST_URL, {**_body(customer, "10.00"), **change}, format="json")

    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "invalid"
    assert sorted(response.json()["fields"]) == fields
    assert Payment.objects.count() == 0
    assert _invoice_row(invoice) == ("open", Decimal("0.00"))


def test_allocations_the_invoices_cannot_take_are_refused_with_their_reason(api_client, superuser):
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    others = make_invoice(make_customer(), "10.00")
    draft = make_manual_invoice(customer=customer, finalize=False)
    void = invoice_void(invoice_id=make_invoice(customer, "10.00").pk)
    api_client.force_authenticate(superuser)

    response = api_client.post(
        LIST_URL,
        _body(customer, "500.00", allocations=[
            {"invoice": invoice.pk, "amount": "100.01"},
            {"invoice": 999999, "amount": "1.00"},
            {"invoice": others.pk, "amount": "1.00"},
            {"invoice": draft.pk, "amount": "1.00"},
            {"invoice": void.pk, "amount": "1.00"},
            {"invoice": invoice.pk, "amount": "-1.00"},
        ]),
        format="json",
    )  # fmt: skip

    assert response.status_code == 400
    assert response.json()["fields"] == {
        "allocations.0.amount": [f"At most 100.00 USD is due on invoice {invoice.number}."],
        "allocations.1.invoice": ["Invoice 999999 does not exist."],
        "allocations.2.invoice": [f"Not an invoice of customer {customer.name}."],
        "allocations.3.invoice": [f"Invoice {draft} is a draft: finalize it before it is paid."],
        "allocations.4.invoice": [f"Invoice {void.number} is void: nothing is due on it."],
        "allocations.5.invoice": ["This invoice is already listed."],
    }
    assert Payment.objects.count() == PaymentAllocation.objects.count() == 0
    assert _invoice_row(invoice) == ("open", Decimal("0.00"))


def test_the_same_idempotency_key_records_the_payment_once(api_client, superuser):
    customer = make_customer()
    make_invoice(customer, "100.00")
    api_client.force_authenticate(superuser)

    first = api_client.post(LIST_URL, _body(customer, "25.00"), format="json", HTTP_IDEMPOTENCY_KEY="pay-1")
    again = api_client.post(LIST_URL, _body(customer, "25.00"), format="json", HTTP_IDEMPOTENCY_KEY="pay-1")
    other = api_client.post(LIST_URL, _body(customer, "26.00"), format="json", HTTP_IDEMPOTENCY_KEY="pay-1")

    assert (first.status_code, again.status_code, other.status_code) == (201, 201, 409)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Payment.objects.count() == 1


# --- reading --------------------------------------------------------------------------------------


def test_list_and_filter_payments(api_client, superuser, django_assert_max_num_queries):
    customer, other = make_customer(), make_customer()
    invoice = make_invoice(customer, "100.00")
    paid = _pay(customer, "100.00", invoice)
    unallocated = _pay(other, "5.00")
    api_client.force_authenticate(superuser)

    with django_assert_max_num_queries(6):
        rows = api_client.get(LIST_URL).json()["results"]

    assert [row["id"] for row in rows] == [unallocated.pk, paid.pk]
    assert [r["id"] for r in api_client.get(LIST_URL, {"customer": other.pk}).json()["results"]] == [unallocated.pk]
    assert [r["id"] for r in api_client.get(LIST_URL, {"invoice": invoice.pk}).json()["results"]] == [paid.pk]
    assert api_client.get(LIST_URL, {"status": "reversed"}).json()["results"] == []
    assert [r["id"] for r in api_client.get(LIST_URL, {"search": "SEPA"}).json()["results"]] == [
        unallocated.pk,
        paid.pk,
    ]
    assert api_client.get(detail_url(paid.pk)).json()["allocations"] == [
        {"invoice": invoice.pk, "invoice_number": invoice.number, "amount": _usd("100.00")}
    ]


def test_invoice_list_shows_amounts_paid_and_due_without_a_query_per_invoice(
    api_client, superuser, django_assert_max_num_queries
):
    customer = make_customer()
    invoices = [make_invoice(customer, "100.00") for _ in range(6)]
    for invoice in invoices:
        credit_note_issue(invoice_id=invoice.pk, reason="other", amount=Decimal("10.00"))
    _pay(customer, "45.00", invoices[0])
    api_client.force_authenticate(superuser)

    with django_assert_max_num_queries(4):
        rows = api_client.get(INVOICES_URL).json()["results"]

    by_id = {row["id"]: row for row in rows}
    assert (by_id[invoices[0].pk]["amount_paid"], by_id[invoices[0].pk]["amount_due"]) == (_usd("45.00"), _usd("45.00"))
    assert (by_id[invoices[1].pk]["amount_paid"], by_id[invoices[1].pk]["amount_due"]) == (_usd("0.00"), _usd("90.00"))


# --- reversal and refunds -------------------------------------------------------------------------


def test_reverse_a_manual_payment(api_client, superuser):
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    payment = _pay(customer, "100.00", invoice)
    api_client.force_authenticate(superuser)

    missing_reason = api_client.post(reverse_url(payment.pk), {}, format="json")
    response = api_client.post(reverse_url(payment.pk), {"reason": "Booked twice"}, format="json")
    again = api_client.post(reverse_url(payment.pk), {"reason": "Booked twice"}, format="json")

    assert (missing_reason.status_code, list(missing_reason.json()["fields"])) == (400, ["reason"])
    assert response.status_code == 200, response.json()
    assert (response.json()["status"], response.json()["reversal_reason"]) == ("reversed", "Booked twice")
    assert again.status_code == 409
    assert _invoice_row(invoice) == ("open", Decimal("0.00"))


def test_refunds_are_listed(api_client, superuser):
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    payment = _pay(customer, "100.00", invoice)
    note = credit_note_issue_and_refund(
        invoice_id=invoice.pk, reason="duplicate", amount=Decimal("20.00"), refund_amount=Decimal("20.00")
    )
    api_client.force_authenticate(superuser)

    rows = api_client.get(REFUNDS_URL, {"payment": payment.pk}).json()["results"]

    refund = Refund.objects.get()
    assert rows == [
        {
            "id": refund.pk,
            "payment": payment.pk,
            "credit_note": note.pk,
            "credit_note_number": note.number,
            "amount": _usd("20.00"),
            "status": "succeeded",
            "reason": f"Credit note {note.number}",
            "reference": "",
            "provider_refund_id": "",
            "failure_code": "",
            "failure_message": "",
            "provider_failure_message": "",
            "succeeded_at": rows[0]["succeeded_at"],
            "failed_at": None,
            "created_at": rows[0]["created_at"],
        }
    ]
    assert rows[0]["succeeded_at"] is not None
    assert api_client.get(detail_url(payment.pk)).json()["amount_refunded"] == _usd("20.00")


def test_a_credit_note_through_the_invoice_api_refunds_the_payment(api_client, superuser):
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    payment = _pay(customer, "100.00", invoice)
    api_client.force_authenticate(superuser)

    response = api_client.post(
        reverse("api:invoice-credit-notes", args=[invoice.pk]),
        {"reason": "duplicate", "full": True, "refund_amount": _usd("100.00"), "refund_reference": "Back by SEPA"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    refund = Refund.objects.get()
    assert (refund.payment_id, refund.amount.amount, refund.reference, refund.status) == (
        payment.pk,
        Decimal("100.00"),
        "Back by SEPA",
        "succeeded",
    )


def test_a_refund_larger_than_the_credit_note_is_a_field_error_and_stores_nothing(api_client, superuser):
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    _pay(customer, "100.00", invoice)
    api_client.force_authenticate(superuser)

    response = api_client.post(
        reverse("api:invoice-credit-notes", args=[invoice.pk]),
        {"reason": "duplicate", "amount": _usd("10.00"), "refund_amount": _usd("100.00")},
        format="json",
    )

    assert response.status_code == 400, response.content[:300]
    assert response.json()["fields"] == {"refund_amount": ["At most the credit note's total, 10.00 USD, is refunded."]}
    assert Refund.objects.count() == 0
    assert not invoice.credit_notes.exists()
    assert _invoice_row(invoice) == ("paid", Decimal("100.00"))


# --- permissions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_kind", "perms", "expected"),
    [
        ("list", None, 401),
        ("list", [], 403),
        ("list", ["invoices.view_invoice"], 403),
        ("list", ["payments.view_payment"], 200),
        ("retrieve", ["payments.view_payment"], 200),
        ("create", None, 401),
        ("create", ["payments.view_payment"], 403),
        ("create", ["payments.change_payment"], 403),
        ("create", ["payments.add_payment"], 201),
        ("reverse", None, 401),
        ("reverse", ["payments.view_payment", "payments.add_payment"], 403),
        ("reverse", ["payments.change_payment"], 200),
        ("refunds", [], 403),
        ("refunds", ["payments.view_refund"], 200),
    ],
)
def test_payment_permission_matrix(api_client, make_staff, request_kind, perms, expected):
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    payment = _pay(customer, "10.00", invoice)
    if perms is not None:
        api_client.force_authenticate(make_staff(*perms))

    if request_kind == "list":
        response = api_client.get(LIST_URL)
    elif request_kind == "retrieve":
        response = api_client.get(detail_url(payment.pk))
    elif request_kind == "create":
        response = api_client.post(LIST_URL, _body(customer, "5.00"), format="json")
    elif request_kind == "reverse":
        response = api_client.post(reverse_url(payment.pk), {"reason": "wrong"}, format="json")
    else:
        response = api_client.get(REFUNDS_URL)

    assert response.status_code == expected
    if expected >= 400:
        assert Payment.objects.count() == 1
        payment.refresh_from_db()
        assert payment.status == PaymentStatus.SUCCEEDED
