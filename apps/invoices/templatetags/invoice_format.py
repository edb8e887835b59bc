"""Formatting for bills: amounts in the currency's own decimals, unit prices to their significant
decimals, quantities without trailing zeros and service periods as "15 Jan 2026 – 15 Feb 2026".

Formatting only: nothing here rounds money that is then stored or summed (see apps.core.money).
"""

from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django import template
from django.utils import timezone
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
from djmoney.money import Money

from apps.core.money_format import grouped, money_text, reader_is_chinese, significant_places

register = template.Library()

DATE_FORMAT = "%-d %b %Y"

# Amounts read as everywhere else (apps.core.money_format): "1,234.50 USD" in English, "US$1,234.50" in
# Chinese; dates as "15 Jan 2026" and "2026年1月15日".


def _format_day(day: date) -> str:
    if reader_is_chinese():
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


@register.filter
def money(value, currency: str | None = None) -> str:
    """A Money (or an amount plus `currency`) with thousands separators and exactly the currency's
    decimals: "1,234.50 USD", "12,000 JPY", "1.250 KWD"."""
    parts = _split(value, currency)
    if parts is None:
        return ""
    amount, code = parts
    return money_text(amount, code, extra_decimals=False)


@register.filter
def unit_price(value, currency: str | None = None) -> str:
    """A unit price with at least the currency's decimals and as many more as it really carries:
    49 USD → "49.00 USD", 0.00012 USD → "0.00012 USD", 1500 JPY → "1,500 JPY"."""
    parts = _split(value, currency)
    if parts is None:
        return ""
    amount, code = parts
    return money_text(amount, code)


@register.filter
def quantity(value) -> str:
    """A quantity without trailing zeros, grouped: 1.000000 → "1", 12500.5 → "12,500.5"."""
    if value in (None, ""):
        return ""
    amount = value if isinstance(value, Decimal) else Decimal(str(value))
    return grouped(amount, significant_places(amount))


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


@register.filter
def address_text(lines) -> SafeString:
    """Address lines as one escaped text, a line break between lines, for an element styled
    `white-space: pre-line`; spaces and line breaks inside a line are collapsed to one space, as
    they were between <br> tags."""
    return mark_safe("\n".join(conditional_escape(" ".join(str(line).split())) for line in lines or ()))  # noqa: S308
