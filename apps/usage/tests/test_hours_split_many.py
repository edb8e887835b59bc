"""Peak/off-peak splits of many windows read at once (`usage_aggregate_by_hours_many`, the billing
run's read) equal `usage_aggregate_by_hours` window by window: count, sum and max metrics, time zones
east and west of UTC, one with a half-hour offset (read from the raw events) and one across a change
of summer time, peak hours past midnight, partial hours at either end; on PostgreSQL in two statements
whatever the number of windows."""

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.tests.factories import CustomerFactory
from apps.catalog.services import billable_metric_create
from apps.subscriptions.periods import utc
from apps.usage.selectors import HoursWindow, usage_aggregate_by_hours, usage_aggregate_by_hours_many
from apps.usage.services import usage_events_ingest

pytestmark = pytest.mark.django_db

DAY = frozenset(range(8, 22))  # 08:00–22:00
NIGHT = frozenset([*range(22, 24), *range(0, 6)])  # 22:00–06:00, past midnight


def test_splits_of_many_windows_read_at_once_equal_window_by_window():
    metrics = [
        billable_metric_create(code="calls", name="Calls"),
        billable_metric_create(code="gb", name="Transfer", aggregation="sum", field_name="gb"),
        billable_metric_create(code="peak_gbps", name="Peak", aggregation="max", field_name="gb"),
    ]
    acme, beta = CustomerFactory(external_id="acme"), CustomerFactory(external_id="beta")
    start = utc(2026, 3, 7, 20)  # New York moves to summer time on 8 March 2026, 07:00 UTC
    moments = [start + timedelta(minutes=37 * n) for n in range(0, 80)]  # every hour of the day, some on the hour
    for external_id, factor in (("acme", 1), ("beta", 3)):
        result = usage_events_ingest(
            events=[
                {"transaction_id": f"{external_id}-{code}-{n}", "external_customer_id": external_id,
                 "metric_code": code, "timestamp": at.isoformat(), "properties": {"gb": str(factor * (n % 7) + 1)}}
                for n, at in enumerate(moments)
                for code in ("calls", "gb", "peak_gbps")
            ],
            now=utc(2026, 3, 10),
        )  # fmt: skip
        assert result.rejected == [], result.rejected
    spans = [
        (start, start + timedelta(days=2)),  # whole hours
        (start + timedelta(minutes=13), start + timedelta(hours=30, minutes=45)),  # partial hours at both ends
        (start + timedelta(minutes=5), start + timedelta(minutes=50)),  # inside an hour and a bit
        (start, start),  # empty
    ]
    cases = [
        (customer, metric, span_start, span_end, zone, hours)
        for customer in (acme, beta)
        for metric in metrics
        for span_start, span_end in spans
        for zone, hours in (("Asia/Shanghai", DAY), ("America/New_York", NIGHT), ("Asia/Kolkata", DAY), ("UTC", NIGHT))
    ]
    windows = [
        HoursWindow(customer_id=c.pk, metric=m, start=s, end=e, time_zone=zone, hours=hours)
        for c, m, s, e, zone, hours in cases
    ]
    expected = [
        usage_aggregate_by_hours(customer=c, metric=m, start=s, end=e, time_zone=zone, hours=hours)
        for c, m, s, e, zone, hours in cases
    ]

    with CaptureQueriesContext(connection) as queries:
        assert usage_aggregate_by_hours_many(windows) == expected
    if connection.vendor == "postgresql":
        assert len(queries) == 2  # raw events, hourly rollups: for all 96 windows

    # By hand, calls of acme in its first window in Asia/Shanghai: 78 events in the two days (every 37
    # minutes from 7 March 20:00 UTC; the 79th is at 9 March 20:06). Local 08:00–22:00 is 00:00–14:00
    # UTC: 46 of them fall in it (on 8 March 23, from 00:19 to 13:53; on 9 March 23, from 00:22 to
    # 13:56: 14 hours = 840 minutes hold 22 or 23 steps of 37), the other 32 outside.
    assert expected[0] == {"peak": D(46), "off_peak": D(32)}
