"""Serializers shared by every API: money, decimals and the error body."""

import re
from decimal import Decimal

from django.utils.translation import gettext
from djmoney.money import Money
from rest_framework import serializers

from apps.core.money import currency_decimal_places, has_more_decimals_than_currency, is_supported_currency

# Batch size limits on list inputs: nested objects a request may hold (prices, tiers, charges,
# contacts, products) and lines (credit note lines). Usage event batches: USAGE_EVENTS_MAX_BATCH.
MAX_NESTED_ITEMS = 100
MAX_LIST_ITEMS = 1000


def format_decimal(value: Decimal) -> str:
    """A decimal as a plain string without trailing zeros ("1.000000" → "1", "0.000120" → "0.00012")."""
    return format(value.normalize(), "f")


def format_amount(amount: Decimal, currency: str) -> str:
    """An amount with the currency's decimals ("49.00", "500" for JPY), more only when it has them
    (unit prices such as "0.00012")."""
    if has_more_decimals_than_currency(amount, currency):
        return format_decimal(amount)
    places = currency_decimal_places(currency)
    return f"{amount:.{places}f}"


# A decimal as the schema documents it (`^-?\d{0,N}(?:\.\d{0,M})?$`, where `\d` is an ASCII digit):
# an optional minus, ASCII digits and one optional point. Python's `Decimal()` (which DRF's field
# calls) also reads other scripts' digits ("١٢", "１２"), underscores ("1_000"), exponents ("1e3"), a
# plus sign and surrounding spaces: none of them is what the integrator meant to send as an amount.
PLAIN_DECIMAL = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)


class DecimalField(serializers.DecimalField):
    """Every decimal input of the API (amounts, prices, quantities, percentages): a JSON string of
    ASCII digits with an optional minus and decimal point, as the schema's pattern says; anything else
    (a JSON number, another script's digits, `1_000`, `1e3`, `+5`, spaces) is a field error."""

    default_error_messages = {
        "not_a_string": 'Give the number as a string of digits, e.g. "49.00".',
        "not_plain": 'Use only the digits 0-9, an optional minus sign and a decimal point, e.g. "1000.50".',
    }

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        if len(data) > self.MAX_STRING_LENGTH:
            self.fail("max_string_length")
        if not PLAIN_DECIMAL.fullmatch(data):
            self.fail("not_plain")
        return super().to_internal_value(data)


class DecimalStringField(serializers.DecimalField):
    """A read-only decimal rendered as a string without padding zeros."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", None)
        kwargs.setdefault("decimal_places", None)
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value) -> str:
        return format_decimal(Decimal(value))


class MoneyOutputSerializer(serializers.Serializer):
    """Money in every response: `{"amount": "49.00", "currency": "USD"}`; the amount is a decimal string."""

    amount = serializers.CharField(help_text='Decimal string, e.g. "49.00"; never a float.')
    currency = serializers.CharField(help_text="ISO 4217 code.")

    def to_representation(self, instance: Money) -> dict:
        currency = str(instance.currency)
        return {"amount": format_amount(instance.amount, currency), "currency": currency}


class MoneyInputSerializer(serializers.Serializer):
    """Money in every request: `{"amount": "49.00", "currency": "USD"}`."""

    amount = DecimalField(
        max_digits=19, decimal_places=6, min_value=Decimal(0), help_text='Decimal string, e.g. "49.00".'
    )
    currency = serializers.CharField(max_length=3, help_text="ISO 4217 code the seller bills in.")

    def validate_currency(self, value: str) -> str:
        return validate_currency_code(value)

    def validate(self, attrs: dict) -> Money:
        return Money(attrs["amount"], attrs["currency"])


def validate_currency_code(value: str) -> str:
    value = value.upper()
    if not is_supported_currency(value):
        raise serializers.ValidationError(
            gettext("'%(currency)s' is not one of the currencies this seller bills in.") % {"currency": value}
        )
    return value


class ErrorOutputSerializer(serializers.Serializer):
    """The one error shape of the API."""

    code = serializers.CharField(help_text='Machine-readable, e.g. "invalid", "not_found", "invalid_transition".')
    message = serializers.CharField(help_text="Human-readable summary.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text='Messages per input field; nested fields are dotted ("prices.0.amount").',
    )
