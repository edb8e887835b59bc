"""Decimal inputs of the API (amounts, prices, quantities, percentages) take only what the schema's
pattern documents: a string of ASCII digits with an optional minus and decimal point. Python's
`Decimal()` alone would read "١٢" (Arabic-Indic), "１２" (full-width) and "1_000" as 12 and 1000."""

import importlib
import inspect
import pkgutil
from decimal import Decimal

import pytest
from rest_framework import serializers

import apps
from apps.core.api.serializers import DecimalField
from apps.invoices.models import TaxRate
from apps.payments.models import Payment
from apps.payments.tests.factories import make_customer, make_invoice

NOT_PLAIN = 'Use only the digits 0-9, an optional minus sign and a decimal point, e.g. "1000.50".'
NOT_A_STRING = 'Give the number as a string of digits, e.g. "49.00".'

REFUSED = [
    ("١٢", NOT_PLAIN),  # Arabic-Indic digits
    ("１２", NOT_PLAIN),  # full-width digits
    ("1_000", NOT_PLAIN),
    ("1e3", NOT_PLAIN),
    ("+12", NOT_PLAIN),
    (" 12", NOT_PLAIN),
    ("12\n", NOT_PLAIN),
    ("12,5", NOT_PLAIN),
    ("NaN", NOT_PLAIN),
    ("Infinity", NOT_PLAIN),
    ("", NOT_PLAIN),
    (".", NOT_PLAIN),
    ("-", NOT_PLAIN),
    (12, NOT_A_STRING),
    (12.5, NOT_A_STRING),
    (True, NOT_A_STRING),
]


def _payment(customer, amount, allocation_amount=None) -> dict:
    body = {
        "customer": customer.pk,
        "amount": {"amount": amount, "currency": "USD"},
        "method": "bank_transfer",
        "reference": "SEPA 2026-0042",
        "received_at": "2026-02-01T12:00:00Z",
    }
    if allocation_amount is not None:
        body["allocations"] = [{"invoice": make_invoice(customer, "100.00").pk, "amount": allocation_amount}]
    return body


@pytest.mark.django_db
@pytest.mark.parametrize(("amount", "message"), REFUSED)
def test_a_payment_amount_other_than_plain_ascii_digits_is_refused(api_client, superuser, amount, message):
    customer = make_customer()
    api_client.force_authenticate(superuser)

    response = api_client.post("/api/v1/payments", _payment(customer, amount), format="json")

    assert response.status_code == 400, response.json()
    assert response.json()["fields"] == {"amount.amount": [message]}
    assert Payment.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("amount", ["١٢", "１２", "1_000"])
def test_an_allocation_amount_other_than_plain_ascii_digits_is_refused(api_client, superuser, amount):
    customer = make_customer()
    api_client.force_authenticate(superuser)

    response = api_client.post("/api/v1/payments", _payment(customer, "12", allocation_amount=amount), format="json")

    assert response.status_code == 400, response.json()
    assert response.json()["fields"] == {"allocations.0.amount": [NOT_PLAIN]}
    assert Payment.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(("amount", "stored"), [("12", "12.00"), ("1000.5", "1000.50"), (".5", "0.50"), ("7.", "7.00")])
def test_plain_decimal_strings_are_accepted(api_client, superuser, amount, stored):
    customer = make_customer()
    api_client.force_authenticate(superuser)

    response = api_client.post("/api/v1/payments", _payment(customer, amount), format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["amount"] == {"amount": stored, "currency": "USD"}
    assert Payment.objects.get().amount.amount == Decimal(stored)


@pytest.mark.django_db
def test_other_endpoints_share_the_rule_a_tax_rate_percentage(api_client, superuser):
    api_client.force_authenticate(superuser)

    refused = api_client.post("/api/v1/tax-rates", {"name": "VAT", "percentage": "٢٠", "country": "DE"}, format="json")
    accepted = api_client.post("/api/v1/tax-rates", {"name": "VAT", "percentage": "20", "country": "DE"}, format="json")

    assert refused.status_code == 400, refused.json()
    assert refused.json()["fields"] == {"percentage": [NOT_PLAIN]}
    assert accepted.status_code == 201, accepted.json()
    assert list(TaxRate.objects.values_list("percentage", flat=True)) == [Decimal("20")]


def _api_serializer_classes() -> list[type[serializers.BaseSerializer]]:
    classes = []
    for module_info in pkgutil.walk_packages(apps.__path__, "apps."):
        if ".api" not in module_info.name or ".tests" in module_info.name:
            continue
        module = importlib.import_module(module_info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            is_output = cls.__name__.endswith("OutputSerializer")  # what the API answers, never parsed
            if issubclass(cls, serializers.BaseSerializer) and cls.__module__ == module.__name__ and not is_output:
                classes.append(cls)
    return classes


def _writable_decimal_fields(serializer: serializers.BaseSerializer, path: str) -> list[tuple[str, type]]:
    found = []
    for name, field in serializer.fields.items():
        for candidate in (field, getattr(field, "child", None)):
            if isinstance(candidate, serializers.DecimalField) and not candidate.read_only:
                found.append((f"{path}.{name}", type(candidate)))
            if isinstance(candidate, serializers.ListSerializer):
                candidate = candidate.child
            if isinstance(candidate, serializers.Serializer):
                found += _writable_decimal_fields(candidate, f"{path}.{name}")
    return found


@pytest.mark.django_db
def test_every_decimal_input_of_the_api_uses_the_strict_field():
    classes = _api_serializer_classes()
    fields = [field for cls in classes for field in _writable_decimal_fields(cls(), cls.__name__)]

    assert len(classes) > 30  # the walk found the API's serializers
    assert "PaymentManualCreateInputSerializer.amount.amount" in dict(fields)
    assert [(path, kind) for path, kind in fields if kind is not DecimalField] == []
