"""Pure invoice-line math: no ORM, no settings, no I/O."""

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from apps.core.money import quantize_amount, quantize_fraction


def invoice_totals(*, line_amounts: list[Decimal], tax_total: Decimal, currency: str) -> tuple[Decimal, Decimal]:
    """(subtotal, total): the sum of the already-rounded line amounts, plus tax."""
    subtotal = quantize_amount(sum(line_amounts, Decimal(0)), currency)
    return subtotal, subtotal + quantize_amount(tax_total, currency)


@dataclass(frozen=True)
class TaxRateSpec:
    """What the math needs of a tax rate."""

    rate_id: int | None
    name: str
    percentage: Decimal
    inclusive: bool


@dataclass(frozen=True)
class TaxAmount:
    rate_id: int | None
    name: str
    percentage: Decimal
    inclusive: bool
    taxable_amount: Decimal  # net: for an inclusive rate, the lines' sum less the tax they contain
    tax_amount: Decimal


def tax_breakdown(*, lines: list[tuple[Decimal, TaxRateSpec | None]], currency: str) -> list[TaxAmount]:
    """Tax per rate on the sum of its taxable (already rounded) lines, rounded once per rate.

    Exclusive: tax = sum × p/100, added on top. Inclusive: the lines contain the tax, so
    tax = sum × p/(100+p) and the net is sum − tax (net + tax is exactly the lines' sum). Lines
    without a rate are not taxed; discounts and credits are negative lines that lower the base."""
    sums: dict[TaxRateSpec, Decimal] = {}
    for amount, rate in lines:
        if rate is not None:
            sums[rate] = sums.get(rate, Decimal(0)) + amount
    breakdown = []
    for rate, base in sums.items():
        if rate.inclusive:
            tax = quantize_fraction(
                Fraction(base) * Fraction(rate.percentage) / (100 + Fraction(rate.percentage)), currency
            )
            taxable = base - tax
        else:
            tax = quantize_fraction(Fraction(base) * Fraction(rate.percentage) / 100, currency)
            taxable = base
        breakdown.append(
            TaxAmount(
                rate_id=rate.rate_id,
                name=rate.name,
                percentage=rate.percentage,
                inclusive=rate.inclusive,
                taxable_amount=quantize_amount(taxable, currency),
                tax_amount=tax,
            )
        )
    return breakdown


def tax_added(breakdown: list[TaxAmount]) -> Decimal:
    """The tax added on top of the lines (exclusive rates only: inclusive tax is inside the lines)."""
    return sum((tax.tax_amount for tax in breakdown if not tax.inclusive), Decimal(0))
