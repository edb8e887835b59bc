"""Pure invoice-line math: no ORM, no settings, no I/O."""

from decimal import Decimal

from apps.core.money import quantize_amount


def invoice_totals(*, line_amounts: list[Decimal], tax_total: Decimal, currency: str) -> tuple[Decimal, Decimal]:
    """(subtotal, total): the sum of the already-rounded line amounts, plus tax."""
    subtotal = quantize_amount(sum(line_amounts, Decimal(0)), currency)
    return subtotal, subtotal + quantize_amount(tax_total, currency)
