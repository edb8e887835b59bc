"""Formatting of report figures: amounts with the currency's decimals and thousands separators."""

from datetime import UTC, date, datetime
from decimal import Decimal

from django import template
from django.utils import timezone
from django.utils.translation import get_language

from apps.core.money import quantize_amount
from apps.invoices.templatetags.invoice_format import money as bill_money

register = template.Library()


@register.filter
def money(amount: Decimal | None, currency: str) -> str:
    """1234567.5 USD → "1,234,567.50 USD" ("US$1,234,567.50" in Chinese, as on the bills); nothing to show →
    an en dash."""
    if amount is None:
        return "–"
    return bill_money(quantize_amount(Decimal(amount), currency), currency)


@register.filter
def percent(value: Decimal | None) -> str:
    return "–" if value is None else f"{value:.1f} %"


@register.filter
def amount(value: Decimal | None, currency: str) -> str:
    """The amount alone, with the currency's decimals and thousands separators (the unit shown apart)."""
    if value is None:
        return "–"
    return f"{quantize_amount(Decimal(value), currency):,}"


def _chinese() -> bool:
    return (get_language() or "").lower().startswith("zh")


@register.filter
def report_day(value: date | datetime | None) -> str:
    """ "7 Dec 2026" ("2026年12月7日" in Chinese); with the time (UTC) for a moment: "7 Dec 2026, 14:05"."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if timezone.is_aware(value) else value
        day = f"{moment.year}年{moment.month}月{moment.day}日" if _chinese() else f"{moment.day} {moment:%b %Y}"
        return f"{day} {moment:%H:%M}" if _chinese() else f"{day}, {moment:%H:%M}"
    return f"{value.year}年{value.month}月{value.day}日" if _chinese() else f"{value.day} {value:%b %Y}"


@register.filter
def report_month(value: date | None, style: str = "short") -> str:
    """A month: "Dec 2026" (short) or "December 2026" (long); "2026年12月" in Chinese."""
    if value is None:
        return ""
    if _chinese():
        return f"{value.year}年{value.month}月"
    return value.strftime("%B %Y" if style == "long" else "%b %Y")
