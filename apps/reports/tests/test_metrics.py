"""The pure arithmetic of the reports (no database)."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.core.money import quantize_fraction, quantize_ratio
from apps.reports import metrics
from apps.reports.history import BilledState, StateChange, Window, mrr_stretches

D = Decimal


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- MRR normalization and discounts -------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "interval", "count", "expected"),
    [
        ("2990.00", "year", 1, "249.17"),  # 2,990 / 12 = 249.1666… → half up
        ("1200.00", "year", 1, "100.00"),
        ("30.00", "month", 3, "10.00"),  # quarterly
        ("10.00", "week", 1, "43.33"),  # 10 × 52 / 12 = 43.333…
        ("1.00", "day", 1, "30.42"),  # 365 / 12 = 30.4166…
        ("1000", "year", 1, "83"),  # JPY has no minor unit: 83.33 → 83
    ],
)
def test_monthly_amount(amount, interval, count, expected):
    currency = "JPY" if "." not in amount else "USD"
    assert metrics.monthly_amount(D(amount), interval=interval, interval_count=count, currency=currency) == D(expected)


def test_monthly_amount_refuses_floats_and_unknown_intervals():
    with pytest.raises(TypeError):
        metrics.monthly_amount(10.0, interval="month", interval_count=1, currency="USD")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown billing interval"):
        metrics.monthly_amount(D(10), interval="fortnight", interval_count=1, currency="USD")


def test_discounts_apply_one_after_the_other_like_the_billing_run():
    percentage = metrics.DiscountTerms("percentage", percent_off=D(25))
    fixed = metrics.DiscountTerms("fixed_amount", amount_off=D("5.00"))
    other_product = metrics.DiscountTerms("percentage", percent_off=D(50), applies=False)
    # 60.00 − 25 % (15.00) = 45.00, − 5.00 = 40.00; the coupon of another product takes nothing
    assert metrics.discounted_period_amount(D("60.00"), [percentage, fixed, other_product], currency="USD") == D(
        "40.00"
    )
    # A fixed amount never takes the fee below zero
    assert metrics.discounted_period_amount(D("3.00"), [fixed], currency="USD") == D(0)
    # 33.33 % of 10.00 = 3.333 → 3.33
    third = metrics.DiscountTerms("percentage", percent_off=D("33.33"))
    assert metrics.discounted_period_amount(D("10.00"), [third], currency="USD") == D("6.67")


# --- Movements and rates ---------------------------------------------------------------------------


def test_movements_classify_each_customer():
    previous = {"grows": D(10), "shrinks": D(30), "leaves": D(20), "same": D(5)}
    current = {"grows": D(25), "shrinks": D(12), "same": D(5), "first": D(7), "back": D(9)}
    moved = metrics.mrr_movements(previous, current, seen_before=lambda customer: customer == "back")
    assert (moved.new, moved.expansion, moved.contraction, moved.churn, moved.reactivation) == (
        D(7), D(15), D(18), D(20), D(9)
    )  # fmt: skip
    assert (moved.start_mrr, moved.end_mrr, moved.net) == (D(65), D(58), D(-7))
    assert (moved.start_customers, moved.end_customers) == (4, 5)
    assert (moved.new_customers, moved.churned_customers, moved.reactivated_customers) == (1, 1, 1)
    assert moved.start_mrr + moved.net == moved.end_mrr


def test_rates_are_none_without_a_base():
    empty = metrics.Movements()
    assert metrics.logo_churn_rate(empty) is None
    assert metrics.revenue_churn_rate(empty) is None
    assert metrics.net_revenue_retention(empty) is None
    assert metrics.arpa(D(0), 0, currency="USD") is None
    # 1 / 3 = 33.333… % → 33.33
    assert metrics.percentage(1, 3) == D("33.33")


@given(
    before=st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=20),
    after=st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=20),
)
def test_movements_always_bridge_start_to_end(before, after):
    previous = {index: D(value) for index, value in enumerate(before)}
    current = {index: D(value) for index, value in enumerate(after)}
    moved = metrics.mrr_movements(previous, current, seen_before=lambda customer: customer % 2 == 0)
    assert moved.start_mrr + moved.net == moved.end_mrr
    assert min(moved.new, moved.expansion, moved.contraction, moved.churn, moved.reactivation) >= 0


# --- Months --------------------------------------------------------------------------------------


def test_in_force_at_month_end():
    january = date(2026, 1, 1)
    # Ends exactly when the month ends: still counted for January (churn shows in February)
    assert metrics.in_force_at_month_end(utc(2026, 1, 1), utc(2026, 2, 1), january)
    assert not metrics.in_force_at_month_end(utc(2026, 1, 1), utc(2026, 1, 31, 23), january)
    # Begins at the very end of the month: not yet
    assert not metrics.in_force_at_month_end(utc(2026, 2, 1), None, january)
    assert metrics.in_force_at_month_end(utc(2026, 1, 31, 23, 59), None, january)
    assert list(metrics.months_between(date(2025, 11, 1), date(2026, 2, 1))) == [
        date(2025, 11, 1), date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1)
    ]  # fmt: skip
    assert metrics.previous_month(date(2026, 1, 1)) == date(2025, 12, 1)


# --- Revenue recognition ---------------------------------------------------------------------------


def test_recognition_spreads_by_time_and_rounds_the_cumulative_amount():
    # 100.00 over 15 Jan 00:00 – 15 Feb 00:00 (31 days): January has 17 days → 54.838… → 54.84; February 45.16
    schedule = metrics.recognition_schedule(
        D("100.00"), currency="USD", start_at=utc(2026, 1, 15), end_at=utc(2026, 2, 15), issued_at=utc(2026, 1, 15)
    )
    assert schedule.recognized == {date(2026, 1, 1): D("54.84"), date(2026, 2, 1): D("45.16")}
    assert metrics.deferred_at_month_end(schedule, D("100.00"), month=date(2026, 1, 1)) == D("45.16")
    # Partial days count pro rata: 10.00 over 31 Jan 12:00 – 1 Feb 12:00 → 5.00 and 5.00
    half = metrics.recognition_schedule(
        D("10.00"), currency="USD", start_at=utc(2026, 1, 31, 12), end_at=utc(2026, 2, 1, 12), issued_at=utc(2026, 2, 1)
    )
    assert half.recognized == {date(2026, 1, 1): D("5.00"), date(2026, 2, 1): D("5.00")}
    # No service period: recognized when issued
    manual = metrics.recognition_schedule(
        D("-7.50"), currency="USD", start_at=None, end_at=None, issued_at=utc(2026, 3, 9)
    )
    assert manual.recognized == {date(2026, 3, 1): D("-7.50")}


@given(
    cents=st.integers(min_value=-10_000_000, max_value=10_000_000),
    start_minutes=st.integers(min_value=0, max_value=60 * 24 * 400),
    length_minutes=st.integers(min_value=1, max_value=60 * 24 * 800),
)
def test_recognition_never_loses_or_makes_a_cent(cents, start_minutes, length_minutes):
    amount = D(cents).scaleb(-2)
    start = utc(2025, 1, 1) + timedelta(minutes=start_minutes)
    schedule = metrics.recognition_schedule(
        amount, currency="USD", start_at=start, end_at=start + timedelta(minutes=length_minutes), issued_at=start
    )
    assert sum(schedule.recognized.values(), D(0)) == amount
    assert all(value == value.quantize(D("0.01")) for value in schedule.recognized.values())


@given(
    cents=st.integers(min_value=-(10**12), max_value=10**12),
    numerator=st.integers(min_value=0, max_value=10**13),
    denominator=st.integers(min_value=1, max_value=10**13),
    currency=st.sampled_from(["USD", "JPY", "KWD"]),
)
def test_quantize_ratio_is_quantize_fraction(cents, numerator, denominator, currency):
    amount = D(cents).scaleb(-2)
    assert quantize_ratio(amount, numerator, denominator, currency) == quantize_fraction(
        Fraction(amount) * numerator / denominator, currency
    )


# --- Receivables -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("due_on", "bucket"),
    [
        (None, "current"),
        (date(2026, 4, 25), "current"),
        (date(2026, 4, 20), "current"),  # due today
        (date(2026, 4, 19), "1_30"),
        (date(2026, 3, 21), "1_30"),  # 30 days
        (date(2026, 3, 20), "31_60"),  # 31 days
        (date(2026, 2, 19), "31_60"),  # 60 days
        (date(2026, 2, 18), "61_90"),  # 61 days
        (date(2026, 1, 20), "61_90"),  # 90 days
        (date(2026, 1, 19), "90_plus"),  # 91 days
    ],
)
def test_aging_buckets(due_on, bucket):
    assert metrics.aging_bucket(due_on, as_of=date(2026, 4, 20)) == bucket


# --- Stretches of constant MRR -----------------------------------------------------------------------


def test_stretches_cut_at_changes_pauses_and_discounts():
    basic, pro = BilledState(1, 10, 1), BilledState(2, 20, 1)
    stretches = mrr_stretches(
        begins_at=utc(2026, 1, 15),  # the trial ended
        ends_at=utc(2026, 6, 1),
        initial=basic,
        changes=[StateChange(utc(2026, 3, 1), pro)],
        pauses=[Window(utc(2026, 4, 1), utc(2026, 4, 20))],
        discounts=[Window(utc(2026, 2, 1), None, key="coupon")],
    )
    assert [(s.start, s.end, s.state, s.discount_keys) for s in stretches] == [
        (utc(2026, 1, 15), utc(2026, 2, 1), basic, ()),
        (utc(2026, 2, 1), utc(2026, 3, 1), basic, ("coupon",)),
        (utc(2026, 3, 1), utc(2026, 4, 1), pro, ("coupon",)),
        (utc(2026, 4, 20), utc(2026, 6, 1), pro, ("coupon",)),
    ]


def test_a_subscription_ended_before_its_trial_has_no_stretch():
    assert (
        mrr_stretches(begins_at=utc(2026, 2, 1), ends_at=utc(2026, 1, 20), initial=BilledState(1, 1, 1), changes=[])
        == []
    )
