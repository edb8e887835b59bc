"""Formatting for bills: amounts in the currency's own decimals, unit prices to their significant
decimals, quantities without trailing zeros and service periods as "15 Jan 2026 – 15 Feb 2026".

Formatting only: nothing here rounds money that is then stored or summed (see apps.core.money).
"""

from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django import template
from django.utils import timezone
from django.utils.translation import get_language
from djmoney.money import Money

from apps.core.money import ZH_CURRENCY_SYMBOLS, currency_decimal_places

register = template.Library()

DATE_FORMAT = "%-d %b %Y"

# Simplified Chinese conventions (CLDR): the currency symbol before the amount ("US$1,234.50"),
# dates as "2026年1月15日". English keeps "1,234.50 USD" and "15 Jan 2026".


def _chinese() -> bool:
    return (get_language() or "").lower().startswith("zh")


def _with_currency(number: str, code: str) -> str:
    if _chinese():
        symbol = ZH_CURRENCY_SYMBOLS.get(code)
        if symbol is None:
            return f"{code} {number}"
        return f"-{symbol}{number[1:]}" if number.startswith("-") else f"{symbol}{number}"
    return f"{number} {code}"


def _format_day(day: date) -> str:
    if _chinese():
        return f"{day.year}年{day.month}月{day.day}日"
    return day.strftime(DATE_FORMAT)


def _split(value, currency: str | None) -> tuple[Decimal, str] | None:
    if isinstance(value, Money):
        return value.amount, str(value.currency)
    if value in (None, ""):
        return None
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        return None
    if not currency:
        raise ValueError("a bare amount needs a currency: {{ amount|money:currency }}")
    return amount, str(currency)


def _group(amount: Decimal, places: int) -> str:
    """1234.5 with 2 places → "1,234.50". Display only: the quantize here is string formatting."""
    return f"{amount:,.{places}f}"


@register.filter
def money(value, currency: str | None = None) -> str:
    """A Money (or an amount plus `currency`) with thousands separators and exactly the currency's
    decimals: "1,234.50 USD", "12,000 JPY", "1.250 KWD"."""
    parts = _split(value, currency)
    if parts is None:
        return ""
    amount, code = parts
    return _with_currency(_group(amount, currency_decimal_places(code)), code)


def _significant_places(amount: Decimal) -> int:
    exponent = amount.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


@register.filter
def unit_price(value, currency: str | None = None) -> str:
    """A unit price with at least the currency's decimals and as many more as it really carries:
    49 USD → "49.00 USD", 0.00012 USD → "0.00012 USD", 1500 JPY → "1,500 JPY"."""
    parts = _split(value, currency)
    if parts is None:
        return ""
    amount, code = parts
    places = max(currency_decimal_places(code), _significant_places(amount))
    return _with_currency(_group(amount, places), code)


@register.filter
def quantity(value) -> str:
    """A quantity without trailing zeros, grouped: 1.000000 → "1", 12500.5 → "12,500.5"."""
    if value in (None, ""):
        return ""
    amount = value if isinstance(value, Decimal) else Decimal(str(value))
    return _group(amount, _significant_places(amount))


def _as_date(value) -> date | None:
    if isinstance(value, datetime):
        return timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    if isinstance(value, date):
        return value
    return None


@register.filter
def bill_date(value) -> str:
    """ "15 Jan 2026" (the bill's one date style)."""
    day = _as_date(value)
    return _format_day(day) if day else ""


@register.simple_tag
def service_period(start, end) -> str:
    """ "15 Jan 2026 – 15 Feb 2026" for a half-open period [start, end); "" when unknown."""
    start_day, end_day = _as_date(start), _as_date(end)
    if start_day is None or end_day is None:
        return ""
    return f"{_format_day(start_day)} – {_format_day(end_day)}"
