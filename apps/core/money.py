"""Money helpers. The only place in the code base where amounts are rounded.

Rule (docs/money.md): intermediate values are exact Decimals; each invoice line is rounded once to
the currency's minor unit with ROUND_HALF_UP; totals are sums of rounded lines.
"""

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from django.conf import settings
from django.utils.translation import get_language
from djmoney.money import Money
from moneyed import get_currency
from moneyed.classes import CurrencyDoesNotExist


def currency_decimal_places(currency: str) -> int:
    """Number of decimals of the currency's minor unit: 2 for USD, 0 for JPY, 3 for KWD."""
    try:
        sub_unit = get_currency(currency).sub_unit
    except CurrencyDoesNotExist as exc:
        raise ValueError(f"unknown currency {currency!r}") from exc
    return len(str(sub_unit)) - 1


def is_supported_currency(currency: str) -> bool:
    return currency in settings.CURRENCIES


def quantize_amount(amount: Decimal, currency: str, rounding: str = ROUND_HALF_UP) -> Decimal:
    """Round an exact amount to the currency's minor unit (once, at the end of a computation)."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"amounts are Decimal, not {type(amount).__name__}")
    exponent = Decimal(1).scaleb(-currency_decimal_places(currency))
    return amount.quantize(exponent, rounding=rounding)


def quantize_fraction(value: Fraction, currency: str) -> Decimal:
    """Round an exact rational amount (e.g. a prorated fee) once to the currency's minor unit,
    halves away from zero (ROUND_HALF_UP), without passing through a finite-precision Decimal."""
    scale = 10 ** currency_decimal_places(currency)
    scaled = abs(value) * scale
    whole = scaled.numerator // scaled.denominator
    if scaled - whole >= Fraction(1, 2):
        whole += 1
    rounded = Decimal(whole if value >= 0 else -whole).scaleb(-currency_decimal_places(currency))
    return quantize_amount(rounded, currency)


def quantize_ratio(amount: Decimal, numerator: int, denominator: int, currency: str) -> Decimal:
    """`amount × numerator / denominator` rounded once, half away from zero (ROUND_HALF_UP), to the
    currency's minor unit — exactly what `quantize_fraction(Fraction(amount) * numerator / denominator)`
    gives, in integer arithmetic (fast enough for a million invoice lines)."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"amounts are Decimal, not {type(amount).__name__}")
    if denominator <= 0:
        raise ValueError("the denominator must be positive")
    places = currency_decimal_places(currency)
    minor = amount.scaleb(places)
    if minor != minor.to_integral_value():
        return quantize_fraction(Fraction(amount) * numerator / denominator, currency)
    scaled = int(minor) * numerator
    whole, rest = divmod(abs(scaled), denominator)
    if 2 * rest >= denominator:
        whole += 1
    return quantize_amount(Decimal(whole if scaled >= 0 else -whole).scaleb(-places), currency)


def round_money(money: Money, rounding: str = ROUND_HALF_UP) -> Money:
    currency = str(money.currency)
    return Money(quantize_amount(money.amount, currency, rounding), currency)


def zero(currency: str) -> Money:
    return Money(quantize_amount(Decimal(0), currency), currency)


def sum_money(amounts: list[Money], currency: str) -> Money:
    """Sum Money values of one currency; refuses to mix currencies."""
    total = Decimal(0)
    for amount in amounts:
        if str(amount.currency) != currency:
            raise ValueError(f"cannot add {amount.currency} to a {currency} total")
        total += amount.amount
    return Money(quantize_amount(total, currency), currency)


def has_more_decimals_than_currency(amount: Decimal, currency: str) -> bool:
    return amount != quantize_amount(amount, currency)


def currency_choices() -> list[tuple[str, str]]:
    """Choices for currency fields: the seller's CURRENCIES setting (callable, so that changing the
    setting needs no migration), named in the active language (Chinese names for Chinese staff)."""
    if (get_language() or "").lower().startswith("zh"):
        return [(code, f"{code} — {get_currency(code).get_name('zh_Hans_CN')}") for code in settings.CURRENCIES]
    return [(code, f"{code} — {get_currency(code).name}") for code in settings.CURRENCIES]


def round_quantity(value: Fraction, places: int) -> Decimal:
    """Round an exact rational quantity (a time-weighted usage, say) once to `places` decimals, halves
    away from zero (ROUND_HALF_UP), without passing through a finite-precision Decimal."""
    scaled = abs(value) * 10**places
    whole = scaled.numerator // scaled.denominator
    if scaled - whole >= Fraction(1, 2):
        whole += 1
    rounded = Decimal(whole if value >= 0 else -whole).scaleb(-places)
    return rounded.quantize(Decimal(1).scaleb(-places))
