"""How an amount of money reads, everywhere it is shown (the admin, the portal, bills, emails): one
format, in the reader's language (docs/money.md, "Showing amounts").

English: the amount with thousands separators and the currency's decimals, then the ISO code,
"1,234.50 USD", "1,500 JPY", "1.250 KWD"; Simplified Chinese (CLDR): the currency's symbol first,
"US$1,234.50", "€75.00" (the ISO code first for a currency without a symbol here). An amount that
carries more decimals than its currency (a unit price, 0.00012 USD) shows them all.

Display only: nothing here rounds money that is stored or summed (see `apps.core.money`). Every
`Money` is shown through `money_text` (its `str()`, set in `CoreConfig.ready`), and so is the `money`
template filter of `apps.invoices.templatetags.invoice_format`.
"""

from decimal import Decimal

from django.utils.translation import get_language

from .money import currency_decimal_places

ZH_CURRENCY_SYMBOLS = {
    "USD": "US$", "EUR": "€", "GBP": "£", "JPY": "JP¥", "CNY": "¥", "CAD": "CA$", "AUD": "A$", "HKD": "HK$",
}  # fmt: skip


def reader_is_chinese() -> bool:
    return (get_language() or "").lower().startswith("zh")


def with_currency(number: str, code: str) -> str:
    """ "1,234.50" and "USD" → "1,234.50 USD" (English) or "US$1,234.50" (Chinese)."""
    if reader_is_chinese():
        symbol = ZH_CURRENCY_SYMBOLS.get(code)
        if symbol is None:
            return f"{code} {number}"
        return f"-{symbol}{number[1:]}" if number.startswith("-") else f"{symbol}{number}"
    return f"{number} {code}"


def grouped(amount: Decimal, places: int) -> str:
    """1234.5 with 2 places → "1,234.50". Display only: the quantize here is string formatting."""
    return f"{amount:,.{places}f}"


def significant_places(amount: Decimal) -> int:
    exponent = amount.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def money_text(amount: Decimal, currency: str, *, extra_decimals: bool = True) -> str:
    """The one way an amount reads: the currency's decimals (more when the amount carries them, unless
    `extra_decimals` is off), thousands separators, the currency as the reader's language writes it."""
    places = currency_decimal_places(currency)
    if extra_decimals:
        places = max(places, significant_places(amount))
    return with_currency(grouped(amount, places), currency)
