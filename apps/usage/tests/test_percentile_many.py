"""Percentiles of many windows read at once (`usage_aggregate_many`, the billing run's read) equal
`usage_aggregate` window by window, for several customers and groups, windows with partial intervals at
either end or inside one interval, and empty ones; on PostgreSQL in two statements whatever the number
of windows."""

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


def _at(minute: int, second: int = 0) -> datetime:
    return utc(2026, 3, 10, 10 + minute // 60, minute % 60, second)


def _send(external_id: str, *events: tuple[int, str, str]) -> None:
    result = usage_events_ingest(
        events=[
            {"transaction_id": f"{external_id}-{index}", "external_customer_id": external_id, "metric_code": "mbps",
             "timestamp": _at(minute).isoformat(), "properties": {"mbps": value, "region": region}}
            for index, (minute, region, value) in enumerate(events)
        ],
        now=utc(2026, 3, 10, 12),
    )  # fmt: skip
    assert result.rejected == [], result.rejected


def test_percentiles_of_many_windows_read_at_once_equal_window_by_window():
    # The 90th percentile of 5-minute sums: of n samples the floor(n × 10 / 100) highest are dropped.
    metric = billable_metric_create(
        code="mbps", name="Bandwidth", aggregation="percentile", field_name="mbps", group_by="region",
        percentile=D(90), interval_minutes=5,
    )  # fmt: skip
    acme, beta, idle = (CustomerFactory(external_id=name) for name in ("acme", "beta", "idle"))
    # acme, eu: 5 (10:00), 9 (10:07), 3 + 4 = 7 (10:10 interval), 2 (10:58); us: 1 (10:30).
    _send("acme", (0, "eu", "5"), (7, "eu", "9"), (12, "eu", "3"), (13, "eu", "4"), (58, "eu", "2"), (30, "us", "1"))
    # beta, eu: 100 (10:03), 50 (10:20), 80 (11:00, the next hour).
    _send("beta", (3, "eu", "100"), (20, "eu", "50"), (60, "eu", "80"))
    spans = [
        (_at(0), _at(60)),  # 12 whole intervals: 1 dropped
        (_at(2), _at(58)),  # partial at both ends: 12 samples, 1 dropped
        (_at(1), _at(4)),  # inside one interval: 1 sample, none dropped
        (_at(0), _at(120)),  # 24 samples: 2 dropped
        (_at(30), _at(30)),  # empty
    ]
    windows = [
        UsageWindow(customer_id=customer.pk, metric=metric, start=start, end=end)
        for customer in (acme, beta, idle)
        for start, end in spans
    ]
    expected = [
        usage_aggregate(customer=customer, metric=metric, start=start, end=end)
        for customer in (acme, beta, idle)
        for start, end in spans
    ]

    with CaptureQueriesContext(connection) as queries:
        assert usage_aggregate_many(windows) == expected
    if connection.vendor == "postgresql":
        assert len(queries) == 2  # partial intervals, highest whole intervals: for all 15 windows

    # By hand. acme [10:00, 11:00): eu 9, 7, 5, 2 and zeros, the highest dropped: 7; us 1 and zeros: 0.
    # [10:02, 10:58): eu 9, 7 (10:00 and 10:58 are outside): 7; us 0. [10:01, 10:04): no eu or us sample.
    # [10:00, 12:00): 2 dropped: eu 5; us 0.
    assert expected[:5] == [{"eu": D(7), "us": D(0)}, {"eu": D(7), "us": D(0)}, {}, {"eu": D(5), "us": D(0)}, {}]
    # beta: 100, 50: 50, 50; 100 (the only sample); with 80 at 11:00 in the two-hour window, 2 dropped: 50.
    assert expected[5:10] == [{"eu": D(50)}, {"eu": D(50)}, {"eu": D(100)}, {"eu": D(50)}, {}]
    assert expected[10:] == [{}] * 5
