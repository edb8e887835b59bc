"""Weighted sums (GB-hours, GB-months of a gauge) and percentiles (95th percentile of 5-minute
samples): worked examples computed by hand, from the rollups and from the raw events alike."""

from datetime import timedelta
from decimal import Decimal

import pytest

from apps.subscriptions.periods import utc
from apps.usage.corrections import usage_event_void
from apps.usage.models import UsageIntervalRollup, UsageRollup
from apps.usage.selectors import usage_aggregate
from apps.usage.services import usage_events_ingest

from .conftest import event

pytestmark = pytest.mark.django_db

SOURCES = ["raw", "rollup"]
MARCH, APRIL = utc(2026, 3, 1), utc(2026, 4, 1)


def _ingest(now, *events) -> None:
    result = usage_events_ingest(events=list(events), now=now)
    assert result.rejected == []
    assert result.accepted == len(events)


@pytest.fixture
def storage(make_metric):
    return make_metric("storage_gb", "weighted_sum", field_name="gb", time_unit="hour")


@pytest.fixture
def stored_gb(storage):
    """A gauge of GB stored: 100 GB since 20 Feb (carried into March), then new levels in March."""
    _ingest(utc(2026, 3, 1), event("s0", utc(2026, 2, 20, 10), metric="storage_gb", gb=100))
    _ingest(
        utc(2026, 4, 1),
        event("s1", utc(2026, 3, 10), metric="storage_gb", gb=250),
        event("s2", utc(2026, 3, 20, 12, 30), metric="storage_gb", gb=50),
        event("s3", utc(2026, 3, 25, 8, 15), metric="storage_gb", gb=80),
        event("s4", utc(2026, 3, 25, 8, 45), metric="storage_gb", gb="50"),
    )
    return storage


@pytest.mark.parametrize("source", SOURCES)
def test_gb_hours_over_a_month_carry_the_level_over_from_the_previous_period(customer, stored_gb, source):
    # 1–10 Mar 00:00: 100 GB carried over from February, 216 h        = 21,600
    # 10 Mar 00:00–20 Mar 12:30: 250 GB, 252.5 h                       = 63,125
    # 20 Mar 12:30–25 Mar 08:15: 50 GB, 115.75 h                       =  5,787.5
    # 25 Mar 08:15–08:45: 80 GB, 0.5 h (two events in one hour)        =     40
    # 25 Mar 08:45–1 Apr 00:00: 50 GB, 159.25 h                        =  7,962.5
    # 744 h in all (216 + 252.5 + 115.75 + 0.5 + 159.25)               = 98,515 GB-hours
    totals = usage_aggregate(customer=customer, metric=stored_gb, start=MARCH, end=APRIL, source=source)

    assert totals == {"": Decimal("98515.000000")}


@pytest.mark.parametrize("source", SOURCES)
def test_a_window_off_the_hour_weighs_the_partial_hours_from_the_events(customer, stored_gb, source):
    # 10 Mar 00:00–20 Mar 12:30 at 250 GB (252.5 h) and 12:30–12:45 at 50 GB (0.25 h)
    totals = usage_aggregate(
        customer=customer, metric=stored_gb, start=utc(2026, 3, 10), end=utc(2026, 3, 20, 12, 45), source=source
    )
    # Before the first event of the month: February's level (100 GB) for 2 h 30 min.
    carried = usage_aggregate(
        customer=customer, metric=stored_gb, start=utc(2026, 3, 2, 7, 30), end=utc(2026, 3, 2, 10), source=source
    )

    assert totals == {"": Decimal("63137.5")}
    assert carried == {"": Decimal(250)}


@pytest.mark.parametrize("source", SOURCES)
def test_lagos_weighted_sum_example_sent_as_levels_gives_lagos_gb_months(customer, make_metric, source):
    # Lago's published example: +10 on 16 Jan 2027, +20 on 17 Jan, billing period 1 Jan–1 Feb (31 days):
    # (10 × 1 day + 30 × 15 days) / 31 days = 14.838709… Our events are levels, so the second is 30.
    metric = make_metric("tracked", "weighted_sum", field_name="pageviews", time_unit="month")
    _ingest(
        utc(2027, 1, 20),
        event("l1", utc(2027, 1, 16), metric="tracked", pageviews=10),
        event("l2", utc(2027, 1, 17), metric="tracked", pageviews=30),
    )

    totals = usage_aggregate(
        customer=customer, metric=metric, start=utc(2027, 1, 1), end=utc(2027, 2, 1), source=source
    )

    assert totals == {"": Decimal("14.838710")}


@pytest.mark.parametrize("source", SOURCES)
def test_gb_months_count_each_second_in_its_calendar_month(customer, make_metric, source):
    # 31 GB from 16 Feb 00:00: February (28 days) holds it 13 days = 13/28 month; March all 31 days = 1.
    metric = make_metric("bucket", "weighted_sum", field_name="gb", time_unit="month", group_by="region")
    _ingest(utc(2026, 2, 16), event("b1", utc(2026, 2, 16), metric="bucket", gb=28, region="eu"))

    totals = usage_aggregate(customer=customer, metric=metric, start=utc(2026, 2, 1), end=APRIL, source=source)

    assert totals == {"eu": Decimal("41.000000")}  # 28 × 13/28 + 28 × 1


@pytest.mark.parametrize("source", SOURCES)
def test_vm_hours_by_instance_type_from_start_and_stop_levels(customer, make_metric, source):
    metric = make_metric("vms", "weighted_sum", field_name="running", time_unit="hour", group_by="instance_type")
    _ingest(
        utc(2026, 3, 5),
        event("v1", utc(2026, 3, 2, 9), metric="vms", running=2, instance_type="m5.large"),
        event("v2", utc(2026, 3, 2, 9, 20), metric="vms", running=1, instance_type="c5.xlarge"),
        event("v3", utc(2026, 3, 2, 17, 30), metric="vms", running=0, instance_type="m5.large"),
        event("v4", utc(2026, 3, 3, 1, 20), metric="vms", running=0, instance_type="c5.xlarge"),
    )

    totals = usage_aggregate(customer=customer, metric=metric, start=MARCH, end=utc(2026, 3, 5), source=source)

    # m5.large: 2 VMs × 8.5 h = 17; c5.xlarge: 1 VM × 16 h = 16
    assert totals == {"m5.large": Decimal(17), "c5.xlarge": Decimal(16)}


def test_a_voided_gauge_event_rebuilds_the_hour(customer, stored_gb):
    usage_event_void(transaction_id="s3", now=utc(2026, 4, 1))

    rollup = usage_aggregate(customer=customer, metric=stored_gb, start=MARCH, end=APRIL)
    raw = usage_aggregate(customer=customer, metric=stored_gb, start=MARCH, end=APRIL, source="raw")

    # The 0.5 h at 80 GB is now at 50 GB: 98,515 − 40 + 25
    assert rollup == raw == {"": Decimal("98500.000000")}
    hour = UsageRollup.objects.get(metric=stored_gb, hour=utc(2026, 3, 25, 8))
    assert (hour.first_at, hour.level_seconds) == (utc(2026, 3, 25, 8, 45), Decimal(50 * 15 * 60))


# --- percentile --------------------------------------------------------------------------------------

DAY = utc(2026, 3, 2)


@pytest.fixture
def bandwidth(make_metric):
    return make_metric("egress_mbps", "percentile", field_name="mbps", percentile=Decimal(95), interval_minutes=5)


def _samples(values_by_interval: dict[int, list[int]]) -> list[dict]:
    """Events in the 5-minute intervals of 2 Mar from 00:00 (interval i starts at i × 5 min)."""
    return [
        event(f"b{index}-{n}", DAY + timedelta(minutes=5 * index, seconds=17 + 60 * n), metric="egress_mbps", mbps=v)
        for index, values in values_by_interval.items()
        for n, v in enumerate(values)
    ]


@pytest.fixture
def thirty_samples(bandwidth):
    """30 five-minute intervals (00:00–02:30): 20 with traffic, sums 10, 20, …, 200 (some from two events
    in the interval), in a scrambled order; intervals 20 to 29 have no events."""
    order = [7, 0, 19, 3, 12, 5, 16, 1, 9, 14, 2, 18, 6, 11, 4, 17, 8, 13, 10, 15]
    values = {interval: [10 * (rank + 1)] for interval, rank in enumerate(order)}
    values[2] = [150, 50]  # 200 in two events
    values[4] = [60, 70]  # 130
    _ingest(utc(2026, 3, 3), *_samples(values))
    return bandwidth


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(
    ("percentile", "billed"),
    [
        # n = 30 samples, 10 of them 0. Drop k = floor(30 × (100 − N) / 100) highest, bill the next.
        ("95", "190"),  # k = floor(1.5) = 1: 200 dropped, 190 billed (nearest rank ceil(28.5) = 29 of 30)
        ("100", "200"),  # k = 0: the highest
        ("90", "170"),  # k = 3: 200, 190 and 180 dropped
        ("50", "50"),  # k = 15: the 16th highest; without the 10 empty intervals it would be 100
        ("10", "0"),  # k = 27: the 28th highest is one of the empty intervals
        ("0.01", "0"),  # k = 29: the lowest
    ],
)
def test_the_nth_percentile_of_thirty_five_minute_samples_counts_empty_intervals_as_zero(
    customer, thirty_samples, make_metric, source, percentile, billed
):
    thirty_samples.percentile = Decimal(percentile)

    totals = usage_aggregate(
        customer=customer, metric=thirty_samples, start=DAY, end=DAY + timedelta(minutes=150), source=source
    )

    assert totals == {"": Decimal(billed)}


@pytest.mark.parametrize("source", SOURCES)
def test_the_95th_percentile_of_a_day_has_288_samples(customer, thirty_samples, source):
    # 288 samples, 20 with traffic: k = floor(288 × 5 / 100) = 14 dropped (200 … 70), 60 billed.
    totals = usage_aggregate(
        customer=customer, metric=thirty_samples, start=DAY, end=DAY + timedelta(days=1), source=source
    )

    assert totals == {"": Decimal(60)}


def test_a_window_off_the_interval_grid_has_partial_samples_at_its_ends(customer, thirty_samples):
    # 00:02–02:28: 30 intervals overlap it; the first one holds only its events from 00:02 (none: its
    # event of 80 is at 00:00:17), so the samples are 200 … 10 but 80 (19) and 11 zeros: k = 1, 190.
    start, end = DAY + timedelta(minutes=2), DAY + timedelta(minutes=148)

    rollup = usage_aggregate(customer=customer, metric=thirty_samples, start=start, end=end)
    raw = usage_aggregate(customer=customer, metric=thirty_samples, start=start, end=end, source="raw")

    assert rollup == raw == {"": Decimal(190)}


def test_interval_rollups_hold_each_interval_sum_and_a_void_rebuilds_them(customer, thirty_samples):
    assert UsageIntervalRollup.objects.count() == 20
    assert UsageIntervalRollup.objects.get(interval_start=DAY + timedelta(minutes=10)).value_sum == 200

    usage_event_void(transaction_id="b2-0", now=utc(2026, 3, 3))  # 150 of interval 2's 200

    assert UsageIntervalRollup.objects.get(interval_start=DAY + timedelta(minutes=10)).value_sum == 50
    totals = usage_aggregate(customer=customer, metric=thirty_samples, start=DAY, end=DAY + timedelta(minutes=150))
    assert totals == {"": Decimal(180)}  # 190 is now the highest, dropped; 180 billed


@pytest.mark.parametrize("aggregation", ["weighted_sum", "percentile"])
@pytest.mark.parametrize("value", ["fast", True, None, {"gb": 1}])
def test_events_without_a_number_are_refused_with_a_reason(make_metric, customer, aggregation, value):
    settings = {"time_unit": "hour"} if aggregation == "weighted_sum" else {"percentile": 95, "interval_minutes": 5}
    make_metric("gauge", aggregation, field_name="gb", **settings)

    result = usage_events_ingest(events=[event("x1", DAY, metric="gauge", gb=value)], now=utc(2026, 3, 3))

    assert result.accepted == 0
    label = {
        "weighted_sum": "time-weighted sum of a gauge property",
        "percentile": "percentile of per-interval sums of a property",
    }
    shown = "; it is missing." if value is None else f", not {value!r}."
    assert [(r.code, r.reason) for r in result.rejected] == [
        ("invalid_value", f"The metric 'gauge' ({label[aggregation]}) needs a number in property 'gb'{shown}")
    ]
    assert not UsageRollup.objects.exists()
