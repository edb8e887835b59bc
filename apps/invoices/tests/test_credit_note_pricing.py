"""The credit note math: however a credit is split, the credit notes add up exactly to the invoice."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from apps.invoices.pricing import (
    InvoiceTaxSpec,
    TaxRateSpec,
    credit_note_taxes,
    credit_share,
    line_credit_by_quantity,
    tax_breakdown,
)

cents = st.integers(min_value=1, max_value=10_000_000).map(lambda n: Decimal(n).scaleb(-2))
percentages = st.sampled_from([Decimal("0"), Decimal("5.5"), Decimal("7.25"), Decimal("19"), Decimal("20")])


def _splits(total: int, draw_parts: list[int]) -> list[int]:
    """Split `total` into positive parts following `draw_parts` (the last part takes the rest)."""
    parts, left = [], total
    for part in draw_parts:
        if left <= 1:
            break
        take = 1 + part % (left - 1)
        parts.append(take)
        left -= take
    return [*parts, left]


@given(amount=cents, quantity=st.integers(1, 500), cuts=st.lists(st.integers(0, 10**6), max_size=8))
def test_crediting_a_line_unit_by_unit_adds_up_to_the_line(amount, quantity, cuts):
    credited, units = Decimal(0), Decimal(0)
    for part in _splits(quantity, cuts):
        step = line_credit_by_quantity(
            line_amount=amount, line_quantity=Decimal(quantity), quantity_before=units, amount_before=credited,
            quantity=Decimal(part), currency="EUR",
        )  # fmt: skip
        assert step >= 0
        credited += step
        units += part
    assert credited == amount


@given(
    base=cents,
    percentage=percentages,
    inclusive=st.booleans(),
    cuts=st.lists(st.integers(0, 10**9), max_size=6),
)
def test_the_tax_of_credit_notes_adds_up_to_the_invoice_tax(base, percentage, inclusive, cuts):
    [invoice_tax] = tax_breakdown(lines=[(base, TaxRateSpec(1, "VAT", percentage, inclusive))], currency="EUR")
    spec = InvoiceTaxSpec(
        invoice_tax_id=1, name="VAT", percentage=percentage, inclusive=inclusive, base=base,
        tax_amount=invoice_tax.tax_amount,
    )  # fmt: skip
    credited, tax_before, taxable = Decimal(0), Decimal(0), Decimal(0)
    for part in _splits(int(base * 100), cuts):
        amount = Decimal(part).scaleb(-2)
        taxes = credit_note_taxes(
            taxes=[spec], invoice_base=base, credited_before=credited, credited_now=amount,
            tax_before={1: tax_before}, currency="EUR",
        )  # fmt: skip
        for tax in taxes:
            assert tax.tax_amount >= 0
            tax_before += tax.tax_amount
            taxable += tax.taxable_amount
        credited += amount
    assert tax_before == invoice_tax.tax_amount
    assert taxable == invoice_tax.taxable_amount


@given(whole=cents, share=cents, credited=cents)
def test_a_share_is_never_more_than_the_whole_share(whole, share, credited):
    amount = credit_share(credited=min(credited, whole), whole=whole, share=share, currency="EUR")
    assert Decimal(0) <= amount <= share
    assert credit_share(credited=whole, whole=whole, share=share, currency="EUR") == share
