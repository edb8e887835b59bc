from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.subscriptions.periods import Period, add_months, boundary, period_containing, utc


def test_month_end_anchor_clamps_without_drifting():
    anchor = utc(2024, 1, 31, 10)
    ends = [boundary(anchor, "month", 1, i) for i in range(1, 6)]
    assert ends == [
        utc(2024, 2, 29, 10),
        utc(2024, 3, 31, 10),
        utc(2024, 4, 30, 10),
        utc(2024, 5, 31, 10),
        utc(2024, 6, 30, 10),
    ]


def test_month_end_anchor_in_a_common_year_ends_february_on_the_28th():
    assert boundary(utc(2025, 1, 31), "month", 1, 1) == utc(2025, 2, 28)
    assert boundary(utc(2025, 1, 31), "month", 1, 2) == utc(2025, 3, 31)


def test_leap_day_yearly_anchor():
    anchor = utc(2024, 2, 29)
    assert [boundary(anchor, "year", 1, i) for i in range(1, 5)] == [
        utc(2025, 2, 28), utc(2026, 2, 28), utc(2027, 2, 28), utc(2028, 2, 29),
    ]  # fmt: skip


def test_quarterly_and_weekly_and_daily_intervals():
    assert boundary(utc(2026, 11, 30), "month", 3, 1) == utc(2027, 2, 28)
    assert boundary(utc(2026, 1, 1), "week", 2, 1) == utc(2026, 1, 15)
    assert boundary(utc(2026, 1, 1), "day", 1, 45) == utc(2026, 2, 15)


def test_period_is_half_open():
    anchor = utc(2024, 1, 31, 10)
    first = period_containing(anchor, "month", 1, anchor)
    assert first == Period(utc(2024, 1, 31, 10), utc(2024, 2, 29, 10))
    # The end belongs to the next period, one microsecond before it to this one.
    assert period_containing(anchor, "month", 1, first.end).start == first.end
    assert period_containing(anchor, "month", 1, first.end - timedelta(microseconds=1)) == first


def test_period_before_anchor_is_computed_backwards():
    assert period_containing(utc(2026, 3, 15), "month", 1, utc(2026, 2, 20)) == Period(
        utc(2026, 2, 15), utc(2026, 3, 15)
    )


def test_non_utc_datetimes_are_refused():
    paris = timezone(timedelta(hours=1))
    with pytest.raises(ValueError, match="UTC"):
        period_containing(datetime(2026, 1, 1, tzinfo=paris), "month", 1, utc(2026, 1, 2))


def test_unknown_interval_and_empty_period_are_refused():
    with pytest.raises(ValueError, match="unknown billing interval"):
        boundary(utc(2026, 1, 1), "fortnight", 1, 1)
    with pytest.raises(ValueError, match="interval_count"):
        boundary(utc(2026, 1, 1), "month", 0, 1)
    with pytest.raises(ValueError, match="empty period"):
        Period(utc(2026, 1, 2), utc(2026, 1, 1))


anchors = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC)
)
intervals = st.sampled_from(["day", "week", "month", "year"])


@given(anchor=anchors, interval=intervals, count=st.integers(1, 12), offset_days=st.integers(-4000, 4000))
def test_period_containing_always_contains_the_moment_and_tiles_time(anchor, interval, count, offset_days):
    moment = anchor + timedelta(days=offset_days, seconds=offset_days * 37 % 86400)
    period = period_containing(anchor, interval, count, moment)
    assert period.start <= moment < period.end
    # Periods tile time: the next period starts exactly where this one ends.
    assert period_containing(anchor, interval, count, period.end).start == period.end


@given(anchor=anchors, months=st.integers(0, 600))
def test_add_months_keeps_the_anchor_day_unless_the_month_is_shorter(anchor, months):
    moved = add_months(anchor, months)
    assert (moved.year * 12 + moved.month) - (anchor.year * 12 + anchor.month) == months
    assert moved.day == anchor.day or (moved.day < anchor.day and (moved + timedelta(days=1)).day == 1)
    assert moved.time() == anchor.time()
