"""Billing periods: pure date arithmetic, no ORM.

Periods are half-open `[start, end)` in UTC and are always computed from the billing anchor, never
from the previous period, so that month ends clamp without drifting: an anchor on 31 Jan gives period
ends on 28/29 Feb, 31 Mar, 30 Apr, 31 May …
"""

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"empty period [{self.start}, {self.end})")

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds())


def add_months(moment: datetime, months: int) -> datetime:
    """`moment` plus whole months, clamping the day to the target month's length."""
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def boundary(anchor: datetime, interval: str, interval_count: int, index: int) -> datetime:
    """The `index`-th period boundary after `anchor` (index 0 is the anchor itself)."""
    if interval_count < 1:
        raise ValueError("interval_count must be at least 1")
    steps = index * interval_count
    if interval == "day":
        return anchor + timedelta(days=steps)
    if interval == "week":
        return anchor + timedelta(weeks=steps)
    if interval == "month":
        return add_months(anchor, steps)
    if interval == "year":
        return add_months(anchor, 12 * steps)
    raise ValueError(f"unknown billing interval {interval!r}")


def period_index_at(anchor: datetime, interval: str, interval_count: int, moment: datetime) -> int:
    """The index of the period that contains `moment` (negative before the anchor)."""
    # Estimate from the average length, then correct: exact whatever the month lengths.
    average_days = {"day": 1, "week": 7, "month": 30.436875, "year": 365.2425}[interval] * interval_count
    index = int((moment - anchor).total_seconds() // (average_days * 86400))
    while boundary(anchor, interval, interval_count, index) > moment:
        index -= 1
    while boundary(anchor, interval, interval_count, index + 1) <= moment:
        index += 1
    return index


def period_containing(anchor: datetime, interval: str, interval_count: int, moment: datetime) -> Period:
    """The billing period `[start, end)` that contains `moment`."""
    _require_utc(anchor, moment)
    index = period_index_at(anchor, interval, interval_count, moment)
    return Period(
        boundary(anchor, interval, interval_count, index),
        boundary(anchor, interval, interval_count, index + 1),
    )


def _require_utc(*moments: datetime) -> None:
    for moment in moments:
        if moment.tzinfo is None or moment.utcoffset() != timedelta(0):
            raise ValueError(f"periods are computed in UTC; got {moment!r}")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """Shorthand for an aware UTC datetime (used by tests and demo data)."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
