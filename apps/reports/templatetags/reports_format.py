"""Formatting of report figures: amounts with the currency's decimals and thousands separators."""

from decimal import Decimal

from django import template

from apps.core.money import quantize_amount

register = template.Library()


@register.filter
def money(amount: Decimal | None, currency: str) -> str:
    """1234567.5 USD → "1,234,567.50 USD"; nothing to show → an en dash."""
    if amount is None:
        return "–"
    rounded = quantize_amount(Decimal(amount), currency)
    return f"{rounded:,} {currency}"


@register.filter
def percent(value: Decimal | None) -> str:
    return "–" if value is None else f"{value:.1f} %"


@register.filter
def amount(value: Decimal | None, currency: str) -> str:
    """The amount alone, with the currency's decimals and thousands separators (the unit shown apart)."""
    if value is None:
        return "–"
    return f"{quantize_amount(Decimal(value), currency):,}"
