"""Pure invoice-line math: no ORM, no settings, no I/O."""

from dataclasses import dataclass
from decimal import Decimal

from apps.core.money import quantize_amount


@dataclass(frozen=True)
class LineAmount:
    quantity: Decimal
    unit_amount: Decimal
    amount: Decimal  # rounded once to the currency's minor unit


def flat_fee_line(*, unit_amount: Decimal, quantity: int | Decimal, currency: str) -> LineAmount:
    """A recurring flat fee: unit price × quantity, exact, then rounded once (ROUND_HALF_UP)."""
    if not isinstance(unit_amount, Decimal):
        raise TypeError("unit_amount must be a Decimal")
    quantity = Decimal(quantity)
    return LineAmount(
        quantity=quantity,
        unit_amount=unit_amount,
        amount=quantize_amount(unit_amount * quantity, currency),
    )


def invoice_totals(*, line_amounts: list[Decimal], tax_total: Decimal, currency: str) -> tuple[Decimal, Decimal]:
    """(subtotal, total): the sum of the already-rounded line amounts, plus tax."""
    subtotal = quantize_amount(sum(line_amounts, Decimal(0)), currency)
    return subtotal, subtotal + quantize_amount(tax_total, currency)
