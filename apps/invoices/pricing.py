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


# --- Credit notes ------------------------------------------------------------------------------------
#
# A credit note credits part of an issued invoice; several may follow one another. Each amount that is
# a share of something on the invoice (a line's amount by quantity, the discounts going with the lines
# credited, the tax) is computed on the *cumulative* amount credited so far, rounded once, less what
# the earlier credit notes took: the credit notes of an invoice then add up exactly to the invoice
# once everything is credited, however the credit was split.


def credit_share(*, credited: Decimal, whole: Decimal, share: Decimal, currency: str) -> Decimal:
    """The part of `share` that goes with `credited` of `whole` (e.g. of the invoice's discounts
    with the lines credited so far): share × credited / whole, rounded once; all of it once
    everything is credited."""
    if whole <= 0:
        return Decimal(0)
    if credited >= whole:
        return share
    return quantize_fraction(Fraction(share) * Fraction(credited) / Fraction(whole), currency)


def line_credit_by_quantity(
    *,
    line_amount: Decimal,
    line_quantity: Decimal,
    quantity_before: Decimal,
    amount_before: Decimal,
    quantity: Decimal,
    currency: str,
) -> Decimal:
    """The amount that crediting `quantity` more units of an invoice line credits: the line amount ×
    the share of its quantity, on the cumulative quantity when the earlier credits of the line were
    by quantity too (so that crediting every unit credits the whole line), never more than is left."""
    left = line_amount - amount_before
    cumulative = quantity_before + quantity
    by_quantity_so_far = (
        credit_share(credited=quantity_before, whole=line_quantity, share=line_amount, currency=currency)
        == amount_before
    )
    if by_quantity_so_far:
        amount = credit_share(credited=cumulative, whole=line_quantity, share=line_amount, currency=currency)
        amount -= amount_before
    else:
        amount = credit_share(credited=quantity, whole=line_quantity, share=line_amount, currency=currency)
    return min(amount, left)


@dataclass(frozen=True)
class InvoiceTaxSpec:
    """What the credit note math needs of one of the invoice's per-rate taxes."""

    invoice_tax_id: int
    name: str
    percentage: Decimal
    inclusive: bool
    base: Decimal  # the lines' sum the tax was computed on (for an inclusive rate: with the tax inside)
    tax_amount: Decimal


@dataclass(frozen=True)
class CreditedTax:
    invoice_tax_id: int
    name: str
    percentage: Decimal
    inclusive: bool
    taxable_amount: Decimal
    tax_amount: Decimal


def _rate_tax(base: Fraction, percentage: Decimal, inclusive: bool, currency: str) -> Decimal:
    rate = Fraction(percentage)
    return quantize_fraction(base * rate / ((100 + rate) if inclusive else 100), currency)


def credit_note_taxes(
    *,
    taxes: list[InvoiceTaxSpec],
    invoice_base: Decimal,
    credited_before: Decimal,
    credited_now: Decimal,
    tax_before: dict[int, Decimal],
    currency: str,
) -> list[CreditedTax]:
    """The tax a credit note credits, per rate of the invoice, at the invoice's (snapshotted) rate.

    `invoice_base` is the sum of the invoice's taxed lines; `credited_before` and `credited_now` what
    the earlier credit notes and this one credit of it. A rate's share of the credit is its base ×
    credited / invoice_base; its tax is computed on the cumulative share, rounded once, less the tax
    the earlier credit notes took (`tax_before`, per invoice tax id). Crediting the whole invoice
    credits exactly the invoice's tax."""
    if invoice_base <= 0:
        return []
    credited = []
    cumulative = credited_before + credited_now
    for tax in taxes:
        if cumulative >= invoice_base:
            base_now = Fraction(tax.base)
            tax_now = tax.tax_amount
        else:
            base_now = Fraction(tax.base) * Fraction(cumulative) / Fraction(invoice_base)
            tax_now = _rate_tax(base_now, tax.percentage, tax.inclusive, currency)
        base_then = Fraction(tax.base) * Fraction(min(credited_before, invoice_base)) / Fraction(invoice_base)
        base = quantize_fraction(base_now, currency) - quantize_fraction(base_then, currency)
        amount = tax_now - tax_before.get(tax.invoice_tax_id, Decimal(0))
        if base == 0 and amount == 0:
            continue
        credited.append(
            CreditedTax(
                invoice_tax_id=tax.invoice_tax_id,
                name=tax.name,
                percentage=tax.percentage,
                inclusive=tax.inclusive,
                taxable_amount=base - amount if tax.inclusive else base,
                tax_amount=amount,
            )
        )
    return credited
