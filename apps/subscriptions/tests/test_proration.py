from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.core.money import quantize_amount, quantize_fraction
from apps.subscriptions.periods import Period, utc
from apps.subscriptions.proration import change_proration, prorated_amount, remaining_fraction

MARCH = Period(utc(2026, 3, 1), utc(2026, 4, 1))  # 31 days


def test_stripe_documented_upgrade_halfway_through_the_period():
    """Stripe, "Prorations" (docs.stripe.com/billing/subscriptions/prorations): upgrading from a
    10 USD monthly plan to a 20 USD one halfway through the period gives a -5 USD credit for unused
    time and a +10 USD charge for the remaining time: 5 USD more in all."""
    period = Period(utc(2026, 4, 1), utc(2026, 5, 1))  # 30 days: halfway is 16 Apr 00:00
    credit, charge = change_proration(
        period=period, changed_at=utc(2026, 4, 16), currency="USD",
        old_unit_amount=Decimal("10"), old_quantity=1, new_unit_amount=Decimal("20"), new_quantity=1,
    )  # fmt: skip
    assert (credit.amount, charge.amount, credit.amount + charge.amount) == (
        Decimal("-5.00"),
        Decimal("10.00"),
        Decimal("5.00"),
    )
    assert credit.period == charge.period == Period(utc(2026, 4, 16), utc(2026, 5, 1))
    assert credit.description == "Unused time on previous price"


def test_upgrade_on_day_10_of_a_30_day_period_is_exact_to_the_second():
    period = Period(utc(2026, 4, 1), utc(2026, 5, 1))
    # Day 10 starts on 10 Apr 00:00: 9 days used, 21 of 30 remain → 7/10.
    credit, charge = change_proration(
        period=period, changed_at=utc(2026, 4, 10), currency="USD",
        old_unit_amount=Decimal("29.00"), old_quantity=1, new_unit_amount=Decimal("99.00"), new_quantity=1,
    )  # fmt: skip
    assert credit.fraction == Fraction(7, 10)
    assert (credit.amount, charge.amount) == (Decimal("-20.30"), Decimal("69.30"))
    # One second later: 1,814,399 of 2,592,000 seconds remain.
    credit, charge = change_proration(
        period=period, changed_at=utc(2026, 4, 10, 0, 0, 1), currency="USD",
        old_unit_amount=Decimal("29.00"), old_quantity=1, new_unit_amount=Decimal("99.00"), new_quantity=1,
    )  # fmt: skip
    assert credit.fraction == Fraction(1_814_399, 2_592_000)
    assert (credit.amount, charge.amount) == (Decimal("-20.30"), Decimal("69.30"))  # 20.2999888… and 69.2999618…


def test_quantity_change_and_31_day_month():
    # 3 → 5 seats at 12.00 on 11 Mar 12:00 in a 31-day March: 20.5 days remain → 41/62.
    credit, charge = change_proration(
        period=MARCH, changed_at=utc(2026, 3, 11, 12), currency="USD",
        old_unit_amount=Decimal("12.00"), old_quantity=3, new_unit_amount=Decimal("12.00"), new_quantity=5,
    )  # fmt: skip
    assert credit.fraction == Fraction(41, 62)
    assert credit.amount == Decimal("-23.81")  # 36 × 41/62 = 23.8064…
    assert charge.amount == Decimal("39.68")  # 60 × 41/62 = 39.6774…


def test_each_line_is_rounded_once_half_up_from_the_exact_fraction():
    # 0.01 × 1/2 = 0.005 exactly → 0.01 (a float or early rounding could give 0.00).
    assert prorated_amount(unit_amount=Decimal("0.01"), quantity=1, fraction=Fraction(1, 2), currency="USD") == Decimal(
        "0.01"
    )
    assert prorated_amount(unit_amount=Decimal("1000"), quantity=1, fraction=Fraction(1, 3), currency="JPY") == Decimal(
        "333"
    )
    assert prorated_amount(unit_amount=Decimal("10"), quantity=1, fraction=Fraction(2, 3), currency="KWD") == Decimal(
        "6.667"
    )


def test_leap_year_february_has_29_days_of_seconds():
    february = Period(utc(2028, 2, 1), utc(2028, 3, 1))
    assert remaining_fraction(february, utc(2028, 2, 15)) == Fraction(15, 29)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="outside the period"):
        remaining_fraction(MARCH, utc(2026, 4, 2))
    with pytest.raises(ValueError, match="nothing to prorate"):
        change_proration(
            period=MARCH, changed_at=MARCH.end, currency="USD",
            old_unit_amount=Decimal(1), old_quantity=1, new_unit_amount=Decimal(2), new_quantity=1,
        )  # fmt: skip
    with pytest.raises(TypeError):
        prorated_amount(unit_amount=10.0, quantity=1, fraction=Fraction(1, 2), currency="USD")  # type: ignore[arg-type]


@given(
    seconds=st.integers(min_value=0, max_value=31 * 86400 - 1),
    old=st.decimals(min_value=0, max_value=10_000, places=4),
    new=st.decimals(min_value=0, max_value=10_000, places=4),
    quantity=st.integers(min_value=1, max_value=1000),
)
def test_proration_properties(seconds, old, new, quantity):
    changed_at = MARCH.start + timedelta(seconds=seconds)
    credit, charge = change_proration(
        period=MARCH, changed_at=changed_at, currency="USD",
        old_unit_amount=old, old_quantity=quantity, new_unit_amount=new, new_quantity=quantity,
    )  # fmt: skip
    exact = Fraction(int((MARCH.end - changed_at).total_seconds()), int((MARCH.end - MARCH.start).total_seconds()))
    assert credit.fraction == exact
    assert credit.amount == -quantize_fraction(Fraction(old) * quantity * exact, "USD")
    assert charge.amount == quantize_fraction(Fraction(new) * quantity * exact, "USD")
    # Never more than a whole period at that price (rounding is monotonic and the fraction is <= 1).
    assert -credit.amount <= quantize_amount(old * quantity, "USD")
    assert charge.amount <= quantize_amount(new * quantity, "USD")
    if old == new:
        assert credit.amount + charge.amount == 0


@given(st.fractions(min_value=-10_000, max_value=10_000))
def test_quantize_fraction_is_half_up_and_within_half_a_cent(value):
    rounded = quantize_fraction(value, "USD")
    assert abs(Fraction(rounded) - value) <= Fraction(1, 200)
    assert quantize_fraction(-value, "USD") == -rounded  # symmetric: halves away from zero
