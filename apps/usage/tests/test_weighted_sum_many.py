"""Weighted sums of many windows read at once (`usage_aggregate_many`, the billing run's read) equal
`usage_aggregate` window by window: levels carried in from before a window (from an earlier hour's
rollup or from an event earlier in the window's first hour), partial hours at either end, a window
inside one hour, a month start inside a window for a GB-month metric, several customers and groups;
on PostgreSQL in three statements whatever the number of windows."""

from datetime import datetime
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.tests.factories import CustomerFactory
from apps.catalog.services import billable_metric_create
from apps.subscriptions.periods import utc
from apps.usage.selectors import UsageWindow, usage_aggregate, usage_aggregate_many
from apps.usage.services import usage_events_ingest

pytestmark = pytest.mark.django_db


def _send(external_id: str, *events: tuple[datetime, str, str]) -> None:
    result = usage_events_ingest(
        events=[
            {"transaction_id": f"{external_id}-{code}-{index}", "external_customer_id": external_id,
             "metric_code": code, "timestamp": at.isoformat(), "properties": {"gb": value, "region": region}}
            for index, (at, region, value) in enumerate(events)
            for code in ("gb_hours", "gb_months")
        ],
        now=utc(2026, 4, 2, 12),
    )  # fmt: skip
    assert result.rejected == [], result.rejected


def test_weighted_sums_of_many_windows_read_at_once_equal_window_by_window():
    hours, months = (
        billable_metric_create(
            code=code, name=code, aggregation="weighted_sum", field_name="gb", group_by="region", time_unit=unit
        )
        for code, unit in (("gb_hours", "hour"), ("gb_months", "month"))
    )
    acme, beta, idle = (CustomerFactory(external_id=name) for name in ("acme", "beta", "idle"))
    _send(
        "acme",
        (utc(2026, 3, 31, 20), "eu", "10"),
        (utc(2026, 3, 31, 22, 45), "eu", "20"),
        (utc(2026, 4, 1, 0, 30), "eu", "5"),
        (utc(2026, 3, 31, 23, 10), "us", "4"),
    )
    _send("beta", (utc(2026, 4, 1), "eu", "7"))
    spans = [
        (utc(2026, 3, 31, 22, 30), utc(2026, 4, 1, 1, 15)),  # partial hours at both ends, across 1 April
        (utc(2026, 4, 1, 0, 40), utc(2026, 4, 1, 0, 50)),  # inside one hour, after an event in it
        (utc(2026, 4, 1), utc(2026, 4, 2)),  # whole hours
        (utc(2026, 4, 1, 5), utc(2026, 4, 1, 6)),  # no event: carried levels only
        (utc(2026, 4, 1, 5), utc(2026, 4, 1, 5)),  # empty
    ]
    cases = [(customer, metric, start, end) for customer in (acme, beta, idle) for metric in (hours, months)
             for start, end in spans]  # fmt: skip
    windows = [UsageWindow(customer_id=c.pk, metric=m, start=start, end=end) for c, m, start, end in cases]
    expected = [usage_aggregate(customer=c, metric=m, start=start, end=end) for c, m, start, end in cases]

    with CaptureQueriesContext(connection) as queries:
        assert usage_aggregate_many(windows) == expected
    if connection.vendor == "postgresql":
        assert len(queries) == 3  # whole hours, partial hours, levels before: for all 30 windows

    # By hand, GB-hours. [31 Mar 22:30, 1 Apr 01:15): acme eu 10 (carried from 20:00) × 0.25 h + 20 ×
    # 1.75 h + 5 × 0.75 h = 2.5 + 35 + 3.75 = 41.25; us 4 × 2 h 05 min = 8.333333 (6 places); beta eu
    # 7 × 1.25 h = 8.75. [00:40, 00:50): acme eu 5 (since 00:30) × 1/6 h = 0.833333, us 4 × 1/6 h.
    # [05:00, 06:00): the levels carried in, an hour each.
    assert expected[0] == {"eu": D("41.25"), "us": D("8.333333")}
    assert expected[1] == {"eu": D("0.833333"), "us": D("0.666667")}
    assert expected[3] == {"eu": D(5), "us": D(4)}
    assert expected[10] == {"eu": D("8.75")}
    assert expected[13] == {"eu": D(7)}
    assert expected[20:] == [{}] * 10
