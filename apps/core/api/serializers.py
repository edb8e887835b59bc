"""Serializers shared by every API: money, decimals and the error body."""

from decimal import Decimal

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

    amount = serializers.DecimalField(
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
        raise serializers.ValidationError(f"{value!r} is not one of the currencies this seller bills in.")
    return value


class ErrorOutputSerializer(serializers.Serializer):
    """The one error shape of the API."""

    code = serializers.CharField(help_text='Machine-readable, e.g. "invalid", "not_found", "invalid_transition".')
    message = serializers.CharField(help_text="Human-readable summary.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text='Messages per input field; nested fields are dotted ("prices.0.amount").',
    )
