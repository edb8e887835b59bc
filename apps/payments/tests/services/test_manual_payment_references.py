"""A manual payment's reference (the bank transfer's reference, the cheque or receipt number) is
required and unique per customer, so the same money sent twice — an API call repeated without an
`Idempotency-Key`, a form submitted twice — is recorded once: the repeat is a 409 (a form error in the
admin) on `reference`, and nothing changes."""

from decimal import Decimal

import pytest
from django.db import connection
from django.urls import reverse

from apps.core.errors import Conflict, ValidationFailed
from apps.core.tests.concurrency import run_in_threads
from apps.invoices.models import Invoice
from apps.payments.constants import PaymentMethod, PaymentStatus
from apps.payments.models import Payment, PaymentAllocation
from apps.payments.services import invoice_mark_paid, payment_record_manual, payment_reverse
from apps.payments.tests.factories import RECEIVED_AT, make_customer, make_invoice

LIST_URL = "/api/v1/payments"


def _body(customer, reference="SEPA 2026-0042", amount="40.00") -> dict:
    return {
        "customer": customer.pk,
        "amount": {"amount": amount, "currency": "USD"},
        "method": "bank_transfer",
        "reference": reference,
        "received_at": "2026-02-01T12:00:00Z",
    }


def _state(invoice: Invoice) -> tuple[str, Decimal]:
    invoice.refresh_from_db()
    return invoice.status, invoice.amount_paid.amount


@pytest.mark.django_db
def test_a_manual_payment_sent_twice_without_an_idempotency_key_is_recorded_once(api_client, superuser):
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    api_client.force_authenticate(superuser)

    first = api_client.post(LIST_URL, _body(customer), format="json")
    again = api_client.post(LIST_URL, _body(customer), format="json")
    again_other_case = api_client.post(LIST_URL, _body(customer, reference="  sepa 2026-0042 "), format="json")

    assert first.status_code == 201, first.json()
    payment = Payment.objects.get()
    expected = {
        "code": "conflict",
        "message": f"A payment with the reference 'SEPA 2026-0042' is already recorded for {customer.name}: "
        "nothing was recorded.",
        "fields": {
            "reference": [
                f"Already recorded: payment #{payment.pk} of 40.00 USD, received 2026-02-01. "
                "Reverse it first if it was wrong."
            ]
        },
    }
    assert (again.status_code, again.json()) == (409, expected)
    assert again_other_case.status_code == 409
    assert again_other_case.json()["fields"] == expected["fields"]
    assert Payment.objects.count() == PaymentAllocation.objects.count() == 1
    assert _state(invoice) == ("open", Decimal("40.00"))


@pytest.mark.django_db
def test_the_reference_is_required(api_client, superuser):
    customer = make_customer()
    api_client.force_authenticate(superuser)
    body = _body(customer)
    del body["reference"]

    missing = api_client.post(LIST_URL, body, format="json")
    blank = api_client.post(LIST_URL, _body(customer, reference="   "), format="json")

    assert (missing.status_code, missing.json()["fields"]) == (400, {"reference": ["This field is required."]})
    assert (blank.status_code, blank.json()["fields"]) == (400, {"reference": ["This field may not be blank."]})
    assert not Payment.objects.exists()
    with pytest.raises(ValidationFailed) as refused:
        payment_record_manual(
            customer_id=customer.pk, amount=Decimal("5"), currency="USD", method=PaymentMethod.CASH, reference=" ",
            received_at=RECEIVED_AT,
        )  # fmt: skip
    assert refused.value.fields == {
        "reference": [
            "Give the reference of the money received (bank transfer reference, cheque or receipt number): it "
            "tells one payment from another."
        ]
    }


@pytest.mark.django_db
def test_the_same_reference_is_free_for_another_customer_and_once_the_payment_is_reversed(api_client, superuser):
    customer, other = make_customer(), make_customer()
    api_client.force_authenticate(superuser)
    first = api_client.post(LIST_URL, _body(customer), format="json").json()

    others = api_client.post(LIST_URL, _body(other), format="json")
    payment_reverse(payment_id=first["id"], reason="Wrong amount")
    corrected = api_client.post(LIST_URL, _body(customer, amount="45.00"), format="json")

    assert (others.status_code, corrected.status_code) == (201, 201)
    assert sorted(Payment.objects.values_list("customer_id", "status", "amount")) == sorted(
        [
            (customer.pk, PaymentStatus.REVERSED, Decimal("40.00")),
            (customer.pk, PaymentStatus.SUCCEEDED, Decimal("45.00")),
            (other.pk, PaymentStatus.SUCCEEDED, Decimal("40.00")),
        ]
    )


@pytest.mark.django_db
def test_mark_paid_with_a_reference_already_recorded_is_refused():
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    other_invoice = make_invoice(customer, "30.00")
    payment_record_manual(
        customer_id=customer.pk, amount=Decimal("30.00"), currency="USD", method=PaymentMethod.BANK_TRANSFER,
        reference="TRF-7", received_at=RECEIVED_AT, allocations=[(other_invoice.pk, Decimal("30.00"))],
    )  # fmt: skip

    with pytest.raises(Conflict) as refused:
        invoice_mark_paid(invoice_id=invoice.pk, reference="trf-7")

    assert list(refused.value.fields) == ["reference"]
    assert _state(invoice) == ("open", Decimal("0.00"))
    assert invoice_mark_paid(invoice_id=invoice.pk).status == "paid"  # without a reference: the invoice tells it


@pytest.mark.django_db
def test_the_admin_record_a_payment_form_refuses_the_same_reference_with_a_form_error(client, superuser):
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    client.force_login(superuser)
    url = reverse("admin:payments_payment_add")
    data = {
        "customer": customer.pk,
        "amount": "40.00",
        "method": "bank_transfer",
        "reference": "SEPA 2026-0042",
        "received_at_0": "2026-02-01",
        "received_at_1": "12:00:00",
    }

    first = client.post(url, data)
    again = client.post(url, data)
    without = client.post(url, {**data, "reference": ""})

    assert first.status_code == 302
    payment = Payment.objects.get()
    assert again.status_code == 200
    assert again.context["form"].errors["reference"] == [
        f"Already recorded: payment #{payment.pk} of 40.00 USD, received 2026-02-01. Reverse it first if it was wrong."
    ]
    assert without.context["form"].errors["reference"] == ["This field is required."]
    assert Payment.objects.count() == 1
    assert _state(invoice) == ("open", Decimal("40.00"))


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row-lock concurrency is a PostgreSQL property")
def test_the_same_payment_sent_at_once_by_several_clients_is_recorded_once():
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")

    def record(index):
        try:
            return payment_record_manual(
                customer_id=customer.pk, amount=Decimal("40.00"), currency="USD", method=PaymentMethod.BANK_TRANSFER,
                reference="SEPA 2026-0042", received_at=RECEIVED_AT,
            ).pk  # fmt: skip
        except Conflict as refused:
            return list(refused.fields)

    results = run_in_threads(record, count=4)

    assert sorted(results, key=str) == sorted(
        [Payment.objects.get().pk, ["reference"], ["reference"], ["reference"]], key=str
    )
    assert _state(invoice) == ("open", Decimal("40.00"))
