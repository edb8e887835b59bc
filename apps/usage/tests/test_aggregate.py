from datetime import timedelta
from decimal import Decimal

import pytest

from apps.accounts.tests.factories import CustomerFactory
from apps.subscriptions.periods import utc
from apps.usage.models import UsageEvent
from apps.usage.selectors import usage_aggregate, usage_for_customer_period
from apps.usage.services import usage_events_ingest

from .conftest import NOW, event

pytestmark = pytest.mark.django_db

START, END = utc(2026, 3, 1), utc(2026, 3, 10)
PREVIOUS, NEXT = (START - timedelta(days=9), START), (END, END + timedelta(days=9))
SOURCES = ["raw", "rollup"]


def _ingest(*events) -> None:
    result = usage_events_ingest(events=list(events), now=NOW)
    assert result.rejected == []


def _boundary_events(metric: str, values: list) -> list[dict]:
    """Four events: just before the period, at its start, just before its end, at its end."""
    moments = [START - timedelta(microseconds=1), START, END - timedelta(microseconds=1), END]
    return [
        event(f"{metric}-{index}", moment, metric=metric, v=value)
        for index, (moment, value) in enumerate(zip(moments, values, strict=True))
    ]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(
    ("aggregation", "values", "previous", "current", "following"),
    [
        ("count", [1, 1, 1, 1], "1", "2", "1"),
        ("sum", ["1.5", "2", "3.25", "100"], "1.5", "5.25", "100"),
        ("max", ["9", "2", "3", "100"], "9", "3", "100"),
        ("latest", ["9", "7", "4", "100"], "9", "4", "100"),
        ("unique_count", ["a", "b", "c", "a"], "1", "2", "1"),
    ],
)
def test_each_aggregation_puts_an_event_at_the_period_end_in_the_next_period(
    customer, make_metric, source, aggregation, values, previous, current, following
):
    metric = make_metric("m", aggregation, field_name="" if aggregation == "count" else "v")
    _ingest(*_boundary_events("m", values))

    def total(start, end):
        return usage_aggregate(customer=customer, metric=metric, start=start, end=end, source=source)

    assert total(*PREVIOUS) == {"": Decimal(previous)}
    assert total(START, END) == {"": Decimal(current)}
    assert total(*NEXT) == {"": Decimal(following)}


@pytest.mark.parametrize("source", SOURCES)
def test_a_window_without_events_is_empty(customer, make_metric, source):
    metric = make_metric("m", "sum", field_name="v")
    _ingest(event("t1", START, metric="m", v=1))

    assert usage_aggregate(customer=customer, metric=metric, start=END, end=NEXT[1], source=source) == {}
    assert usage_aggregate(customer=customer, metric=metric, start=END, end=END, source=source) == {}


@pytest.mark.parametrize("source", SOURCES)
def test_groups_are_aggregated_separately(customer, make_metric, source):
    metric = make_metric("storage", "sum", field_name="gb", group_by="region")
    _ingest(
        event("t1", START, metric="storage", gb=1, region="eu"),
        event("t2", START + timedelta(minutes=90), metric="storage", gb=2, region="us"),
        event("t3", START + timedelta(hours=5, minutes=1), metric="storage", gb="0.5", region="eu"),
    )

    totals = usage_aggregate(customer=customer, metric=metric, start=START, end=END, source=source)

    assert totals == {"eu": Decimal("1.5"), "us": Decimal(2)}


@pytest.mark.parametrize("source", SOURCES)
def test_only_events_inside_the_filters_count(customer, make_metric, source):
    metric = make_metric("eu_calls", filters={"region": ["eu"]})
    usage_events_ingest(
        events=[
            event("t1", START, metric="eu_calls", region="eu"),
            event("t2", START, metric="eu_calls", region="us"),
            event("t3", START + timedelta(hours=1), metric="eu_calls", region="eu"),
        ],
        now=NOW,
    )

    assert usage_aggregate(customer=customer, metric=metric, start=START, end=END, source=source) == {"": Decimal(2)}


@pytest.mark.parametrize("source", SOURCES)
def test_unique_count_counts_a_value_seen_in_several_hours_once(customer, make_metric, source):
    metric = make_metric("users", "unique_count", field_name="user")
    _ingest(
        *[event(f"t{hour}", START + timedelta(hours=hour, minutes=30), metric="users", user="ann") for hour in range(5)]
    )
    _ingest(event("t-bob", START + timedelta(hours=2), metric="users", user="bob"))

    assert usage_aggregate(customer=customer, metric=metric, start=START, end=END, source=source) == {"": Decimal(2)}
    assert usage_aggregate(
        customer=customer, metric=metric, start=START + timedelta(minutes=45), end=END, source=source
    ) == {"": Decimal(2)}


@pytest.mark.parametrize("source", SOURCES)
def test_latest_breaks_ties_by_the_last_event_received(customer, make_metric, source):
    metric = make_metric("seats", "latest", field_name="n")
    _ingest(event("t1", START + timedelta(hours=1), metric="seats", n=5))
    _ingest(event("t2", START + timedelta(hours=1), metric="seats", n=3))
    _ingest(event("t3", START + timedelta(minutes=59), metric="seats", n=8))  # earlier, received last

    assert usage_aggregate(customer=customer, metric=metric, start=START, end=END, source=source) == {"": Decimal(3)}


def test_other_customers_and_metrics_do_not_count(customer, make_metric):
    metric = make_metric()
    make_metric("other")
    other = CustomerFactory(external_id="other")
    _ingest(event("t1", START), event("t2", START, customer="other"), event("t3", START, metric="other"))

    assert usage_aggregate(customer=customer, metric=metric, start=START, end=END) == {"": Decimal(1)}
    assert usage_aggregate(customer=other, metric=metric, start=START, end=END) == {"": Decimal(1)}


def test_usage_for_a_customer_period_gives_every_metric(customer, make_metric):
    make_metric()
    make_metric("storage", "max", field_name="gb", group_by="region")
    make_metric("unused")
    _ingest(
        event("t1", START),
        event("t2", START + timedelta(minutes=10)),
        event("t3", START, metric="storage", gb=4, region="eu"),
    )

    assert usage_for_customer_period(customer=customer, start=START, end=END) == {
        "api_calls": {"": Decimal(2)},
        "storage": {"eu": Decimal(4)},
    }
    assert usage_for_customer_period(customer=customer, start=START + timedelta(minutes=5), end=END) == {
        "api_calls": {"": Decimal(1)}
    }
    assert usage_for_customer_period(customer=customer, start=END, end=NEXT[1]) == {}
    assert usage_for_customer_period(
        customer=customer, start=START, end=END, metric_codes=["unused", "api_calls"], source="raw"
    ) == {"api_calls": {"": Decimal(2)}, "unused": {}}


def test_hour_aligned_windows_read_rollups_only(customer, make_metric):
    metric = make_metric("storage", "sum", field_name="gb")
    _ingest(*[event(f"t{i}", START + timedelta(minutes=7 * i), metric="storage", gb=2) for i in range(100)])
    UsageEvent.objects.all().delete()  # raw events out of reach: only rollups can answer

    assert usage_aggregate(customer=customer, metric=metric, start=START, end=END) == {"": Decimal(200)}
    assert usage_aggregate(customer=customer, metric=metric, start=START, end=END, source="raw") == {}


def test_reading_rollups_takes_a_fixed_number_of_queries(customer, make_metric, django_assert_num_queries):
    metric = make_metric("storage", "latest", field_name="gb", group_by="region")
    _ingest(
        *[
            event(f"t{i}", START + timedelta(minutes=13 * i), metric="storage", gb=i, region=("eu", "us")[i % 2])
            for i in range(300)
        ]
    )

    with django_assert_num_queries(3):  # rollups of the whole hours, raw events of the two partial hours
        totals = usage_aggregate(
            customer=customer, metric=metric, start=START + timedelta(minutes=5), end=END - timedelta(minutes=5)
        )

    assert totals == {"eu": Decimal(298), "us": Decimal(299)}
