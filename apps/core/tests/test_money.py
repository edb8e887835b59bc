from decimal import Decimal

import pytest
from djmoney.money import Money
from hypothesis import given
from hypothesis import strategies as st

from apps.core.money import currency_decimal_places, quantize_amount, round_money, sum_money, zero


@pytest.mark.parametrize(("currency", "places"), [("USD", 2), ("EUR", 2), ("JPY", 0), ("KWD", 3)])
def test_decimal_places_come_from_the_currency_definition(currency, places):
    assert currency_decimal_places(currency) == places


def test_rounding_is_half_up_to_the_minor_unit():
    assert quantize_amount(Decimal("0.005"), "USD") == Decimal("0.01")
    assert quantize_amount(Decimal("0.0049999"), "USD") == Decimal("0.00")
    assert quantize_amount(Decimal("-0.005"), "USD") == Decimal("-0.01")  # half away from zero
    assert quantize_amount(Decimal("100.5"), "JPY") == Decimal("101")
    assert quantize_amount(Decimal("1.2345"), "KWD") == Decimal("1.235")


def test_floats_and_unknown_currencies_are_refused():
    with pytest.raises(TypeError):
        quantize_amount(0.1, "USD")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown currency"):
        currency_decimal_places("XYZ")


def test_sum_money_refuses_mixed_currencies():
    assert sum_money([Money("1.10", "EUR"), Money("2.205", "EUR")], "EUR") == Money("3.31", "EUR")
    with pytest.raises(ValueError, match="cannot add USD"):
        sum_money([Money("1", "EUR"), Money("1", "USD")], "EUR")


def test_zero_and_round_money():
    assert zero("JPY").amount == Decimal("0")
    assert round_money(Money(Decimal("10.125"), "USD")) == Money(Decimal("10.13"), "USD")


@given(st.decimals(min_value=-(10**9), max_value=10**9, allow_nan=False, allow_infinity=False, places=8))
def test_rounding_is_idempotent_and_within_half_a_minor_unit(amount):
    rounded = quantize_amount(amount, "USD")
    assert quantize_amount(rounded, "USD") == rounded
    assert abs(rounded - amount) <= Decimal("0.005")
