"""Tax math: per rate on the sum of its lines, rounded once."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from apps.invoices.pricing import TaxAmount, TaxRateSpec, tax_added, tax_breakdown

VAT_DE = TaxRateSpec(rate_id=1, name="VAT", percentage=Decimal("19"), inclusive=False)
VAT_GB_INCLUDED = TaxRateSpec(rate_id=2, name="VAT", percentage=Decimal("20"), inclusive=True)

cents = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000"), places=2)
percentages = st.decimals(min_value=Decimal("0"), max_value=Decimal("100"), places=4)


def test_an_exclusive_rate_is_added_on_the_sum_of_its_lines():
    breakdown = tax_breakdown(lines=[(Decimal("190.00"), VAT_DE)], currency="EUR")

    assert breakdown == [TaxAmount(1, "VAT", Decimal("19"), False, Decimal("190.00"), Decimal("36.10"))]
    assert tax_added(breakdown) == Decimal("36.10")


def test_an_inclusive_rate_is_taken_out_of_the_lines_and_not_added():
    breakdown = tax_breakdown(lines=[(Decimal("120.00"), VAT_GB_INCLUDED)], currency="GBP")

    assert breakdown == [TaxAmount(2, "VAT", Decimal("20"), True, Decimal("100.00"), Decimal("20.00"))]
    assert tax_added(breakdown) == Decimal(0)


def test_tax_is_rounded_once_on_the_sum_not_per_line():
    # Per line: 3 × round(0.05 × 19 %) = 3 × 0.01 = 0.03; on the sum: round(0.15 × 19 %) = 0.03 (0.0285).
    # 0.02 × 3 lines: per line 3 × round(0.0038) = 0.00; on the sum round(0.0114) = 0.01.
    breakdown = tax_breakdown(lines=[(Decimal("0.02"), VAT_DE)] * 3, currency="EUR")

    assert breakdown[0].tax_amount == Decimal("0.01")


def test_untaxed_lines_and_negative_lines_count_as_they_should():
    lines = [(Decimal("100.00"), VAT_DE), (Decimal("-10.00"), VAT_DE), (Decimal("50.00"), None)]

    (tax,) = tax_breakdown(lines=lines, currency="EUR")

    assert (tax.taxable_amount, tax.tax_amount) == (Decimal("90.00"), Decimal("17.10"))


def test_no_rate_no_tax():
    assert tax_breakdown(lines=[(Decimal("10.00"), None)], currency="EUR") == []


@given(amounts=st.lists(cents, min_size=1, max_size=8), percentage=percentages, inclusive=st.booleans())
def test_tax_is_never_negative_rounded_once_and_inclusive_net_plus_tax_is_gross(amounts, percentage, inclusive):
    rate = TaxRateSpec(rate_id=None, name="Tax", percentage=percentage, inclusive=inclusive)

    (tax,) = tax_breakdown(lines=[(amount, rate) for amount in amounts], currency="EUR")

    gross = sum(amounts, Decimal(0))
    assert tax.tax_amount >= 0
    assert tax.tax_amount == tax.tax_amount.quantize(Decimal("0.01"))
    exact = gross * percentage / (100 + percentage if inclusive else 100)
    assert abs(tax.tax_amount - exact) <= Decimal("0.005")
    if inclusive:
        assert tax.taxable_amount + tax.tax_amount == gross
    else:
        assert tax.taxable_amount == gross


def test_a_half_cent_of_tax_rounds_away_from_zero_on_credits_as_on_charges():
    # 0.05 × 10 % = 0.005 → 0.01; −0.05 × 10 % = −0.005 → −0.01; 0.55 × 1/11 (10 % included) = 0.05
    rate = TaxRateSpec(rate_id=3, name="GST", percentage=Decimal("10"), inclusive=False)
    included = TaxRateSpec(rate_id=4, name="GST", percentage=Decimal("10"), inclusive=True)

    assert tax_breakdown(lines=[(Decimal("0.05"), rate)], currency="AUD")[0].tax_amount == Decimal("0.01")
    assert tax_breakdown(lines=[(Decimal("-0.05"), rate)], currency="AUD")[0].tax_amount == Decimal("-0.01")
    assert tax_breakdown(lines=[(Decimal("0.55"), included)], currency="AUD")[0].tax_amount == Decimal("0.05")


@given(
    base=st.decimals(min_value=Decimal("-100000"), max_value=Decimal("100000"), places=4),
    percentage=percentages,
    inclusive=st.booleans(),
    currency=st.sampled_from(["USD", "JPY", "KWD"]),
)
def test_the_tax_is_the_exact_share_of_the_base_rounded_once_half_away_from_zero(base, percentage, inclusive, currency):
    from fractions import Fraction

    from apps.core.money import quantize_fraction

    rate = TaxRateSpec(rate_id=5, name="Tax", percentage=percentage, inclusive=inclusive)
    share = Fraction(percentage) / (100 + Fraction(percentage)) if inclusive else Fraction(percentage) / 100

    [tax] = tax_breakdown(lines=[(base, rate)], currency=currency)

    assert tax.tax_amount == quantize_fraction(Fraction(base) * share, currency)
