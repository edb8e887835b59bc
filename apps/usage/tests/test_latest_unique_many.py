"""Latest values, unique counts and percentage prices' event values of many windows read at once (the
billing run's reads: `usage_aggregate_many`, `usage_values_many`) equal the window-by-window reads
(`usage_aggregate`, `lines.usage_values` per group): events before a window, on hour boundaries, at
its start and exactly at its end, windows inside one hour, several customers and groups, events sent
late (after later ones, in other batches) and replayed. The statements do not grow with the number
of windows (one on PostgreSQL, one per source on SQLite): the same count for 3 and for 30 customers."""

from datetime import datetime, timedelta
from decimal import Decimal as D

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.accounts.models import Customer
from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services.lines import usage_values
from apps.catalog.services import billable_metric_create
from apps.subscriptions.periods import utc
from apps.usage.selectors import UsageWindow, usage_aggregate, usage_aggregate_many, usage_values_many
from apps.usage.services import usage_events_ingest

pytestmark = pytest.mark.django_db

BASE = utc(2026, 3, 10)
NOW = utc(2026, 3, 12)


def _metrics() -> dict:
    return {
        code: billable_metric_create(code=code, name=code, aggregation=aggregation, field_name=field, group_by="region")
        for code, aggregation, field in (
            ("devices", "unique_count", "device"),
            ("seats", "latest", "seats"),
            ("payments", "sum", "amount"),
        )
    }


def _send(external_id: str, events: list[tuple[str, datetime, dict]], batch: str = "") -> None:
    posted = [
        {"transaction_id": f"{external_id}-{batch}{index}", "external_customer_id": external_id, "metric_code": code,
         "timestamp": moment.isoformat(), "properties": properties}
        for index, (code, moment, properties) in enumerate(events)
    ]  # fmt: skip
    result = usage_events_ingest(events=posted, now=NOW)
    assert (result.accepted, result.rejected) == (len(posted), []), result.rejected


def _percentage_values(windows: list[UsageWindow]) -> list[dict[str, list[D]]]:
    """`lines.usage_values` (the line function's read, one group at a time) of every group of each window."""
    groups = ("", "eu", "us")
    expected = []
    for window in windows:
        customer = Customer(pk=window.customer_id)
        per_group = {
            group: usage_values(customer=customer, metric=window.metric, start=window.start, end=window.end,
                                group_key=group)
            for group in groups
        }  # fmt: skip
        expected.append({group: values for group, values in per_group.items() if values})
    return expected


def test_latest_unique_and_values_of_many_windows_equal_window_by_window():
    metrics = _metrics()
    for name in ("acme", "beta", "idle"):
        CustomerFactory(external_id=name)
    _send(
        "acme",
        [
            ("devices", utc(2026, 3, 9, 23, 59), {"device": "old", "region": "eu"}),  # before the day
            ("devices", BASE, {"device": "a", "region": "eu"}),  # at its start
            ("devices", utc(2026, 3, 10, 0, 30), {"device": "b", "region": "eu"}),
            ("devices", utc(2026, 3, 10, 5), {"device": "a", "region": "eu"}),  # seen again, another hour
            ("devices", utc(2026, 3, 10, 5), {"device": "a", "region": "us"}),  # the same value in another group
            ("devices", utc(2026, 3, 11), {"device": "c", "region": "eu"}),  # at its end: the next day's
            ("seats", utc(2026, 3, 9, 20), {"seats": "50", "region": "eu"}),
            ("seats", utc(2026, 3, 10, 3), {"seats": "5", "region": "eu"}),
            ("seats", utc(2026, 3, 10, 23, 59, 59), {"seats": "7", "region": "eu"}),
            ("seats", utc(2026, 3, 10, 6, 15), {"seats": "2", "region": "us"}),
            ("seats", utc(2026, 3, 11), {"seats": "100", "region": "eu"}),
            ("payments", utc(2026, 3, 9, 23, 59, 59), {"amount": "999", "region": "eu"}),
            ("payments", utc(2026, 3, 10, 7), {"amount": "100", "region": "eu"}),
            ("payments", utc(2026, 3, 10, 7), {"amount": "40", "region": "eu"}),  # same moment: by id
            ("payments", utc(2026, 3, 10, 18, 30), {"amount": "250", "region": "us"}),
            ("payments", utc(2026, 3, 11), {"amount": "5", "region": "eu"}),
        ],
    )
    # Sent late, in a batch of its own: an earlier seat count and a device seen in the first hour.
    _send("acme", [("seats", utc(2026, 3, 10, 2), {"seats": "9", "region": "eu"}),
                   ("devices", utc(2026, 3, 10, 0, 10), {"device": "z", "region": "eu"})], batch="late-")  # fmt: skip
    _send("beta", [("seats", utc(2026, 3, 10, 12, 30), {"seats": "3", "region": "eu"}),
                   ("devices", utc(2026, 3, 10, 12, 40), {"device": "x", "region": "us"})])  # fmt: skip
    customers = list(Customer.objects.order_by("pk"))
    spans = [
        (BASE, utc(2026, 3, 11)),  # a day: whole hours only
        (utc(2026, 3, 10, 0, 20), utc(2026, 3, 10, 23, 59, 59)),  # partial hours at both ends
        (utc(2026, 3, 10, 0, 5), utc(2026, 3, 10, 0, 35)),  # inside one hour
        (utc(2026, 3, 10, 6, 15), utc(2026, 3, 10, 6, 15)),  # empty
    ]
    windows = [
        UsageWindow(customer_id=customer.pk, metric=metric, start=start, end=end)
        for customer in customers
        for metric in metrics.values()
        for start, end in spans
    ]
    expected = [
        usage_aggregate(customer=Customer(pk=w.customer_id), metric=w.metric, start=w.start, end=w.end) for w in windows
    ]
    assert usage_aggregate_many(windows) == expected
    assert usage_values_many(windows) == _percentage_values(windows)

    # By hand, acme. Devices in the day: eu a, b, z (old before it, c at its end): 3; us a: 1. From
    # 00:20 to 23:59:59: eu b, a: 2 (z at 00:10 is before); us a. From 00:05 to 00:35: eu z, b.
    assert [expected[index] for index in range(3)] == [{"eu": D(3), "us": D(1)}, {"eu": D(2), "us": D(1)},
                                                       {"eu": D(2)}]  # fmt: skip
    # Seats: the day eu 7 (23:59:59; 100 at its end is the next day's), us 2; up to 23:59:59 (not in
    # it) eu 5 (03:00, after 9 sent late for 02:00; not 50 from before the window); none in 00:05–00:35.
    assert [expected[index] for index in range(4, 8)] == [{"eu": D(7), "us": D(2)}, {"eu": D(5), "us": D(2)}, {}, {}]
    values = usage_values_many(windows[8:9])[0]
    assert values == {"eu": [D(100), D(40)], "us": [D(250)]}  # oldest first, the same moment by id
    assert expected[12] == {"us": D(1)} and expected[16] == {"eu": D(3)}  # beta


@pytest.mark.parametrize("aggregation", ["unique_count", "latest", "values"])
def test_reads_of_many_windows_take_as_many_statements_for_3_customers_as_for_30(aggregation):
    metrics = _metrics()
    code = {"unique_count": "devices", "latest": "seats", "values": "payments"}[aggregation]
    prop = {"devices": {"device": "d"}, "seats": {"seats": "4"}, "payments": {"amount": "10"}}[code]
    counts = []
    for size in (3, 30):
        windows = []
        for number in range(size):
            external_id = f"c{size}-{number}"
            customer = CustomerFactory(external_id=external_id)
            _send(external_id, [(code, BASE + timedelta(hours=number % 5, minutes=7), {**prop, "region": "eu"})])
            # Partial hours at both ends and whole hours between: every source of the read.
            windows.append(UsageWindow(customer_id=customer.pk, metric=metrics[code],
                                       start=BASE + timedelta(minutes=5), end=utc(2026, 3, 11, 0, 30)))  # fmt: skip
        read = usage_values_many if aggregation == "values" else usage_aggregate_many
        with CaptureQueriesContext(connection) as queries:
            results = read(windows)
        assert len(results) == size and all(results)
        counts.append(len(queries))
    # PostgreSQL: one statement; SQLite: one per source (events, hourly rows), the windows sorted in Python.
    assert counts == ([1, 1] if connection.vendor == "postgresql" else [counts[0]] * 2), counts


# --- any event stream ----------------------------------------------------------------------------------

SPAN_HOURS = 6
offsets = st.one_of(
    st.integers(0, SPAN_HOURS).map(lambda hours: timedelta(hours=hours)),
    st.integers(0, SPAN_HOURS * 4).map(lambda quarters: timedelta(minutes=15 * quarters)),
    st.integers(0, SPAN_HOURS * 3600 * 10**6).map(lambda micro: timedelta(microseconds=micro)),
)
streams = st.lists(
    st.fixed_dictionaries(
        {
            "customer": st.sampled_from(["acme", "beta"]),
            "metric": st.sampled_from(["devices", "seats", "payments"]),
            "offset": offsets,
            "value": st.sampled_from(["0", "1", "2.5", "-3", "7"]),
            "group": st.sampled_from(["eu", "us"]),
            "replay_of": st.none() | st.integers(0, 30),
        }
    ),
    max_size=30,
)
window_spans = st.lists(st.tuples(offsets, offsets).map(sorted), min_size=1, max_size=5)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=streams, batch_size=st.integers(1, 10), spans=window_spans)
def test_batched_reads_equal_window_by_window_for_any_stream(stream, batch_size, spans):
    with transaction.atomic():
        metrics = _metrics()
        customers = {name: CustomerFactory(external_id=name) for name in ("acme", "beta")}
        posted = [
            {
                "transaction_id": f"t{drawn['replay_of'] if drawn['replay_of'] is not None else index}",
                "external_customer_id": drawn["customer"], "metric_code": drawn["metric"],
                "timestamp": (BASE + drawn["offset"]).isoformat(),
                "properties": {"device": drawn["value"], "seats": drawn["value"], "amount": drawn["value"],
                               "region": drawn["group"]},
            }
            for index, drawn in enumerate(stream)
        ]  # fmt: skip
        for start in range(0, len(posted), batch_size):
            usage_events_ingest(events=posted[start : start + batch_size], now=NOW)
        windows = [
            UsageWindow(customer_id=customer.pk, metric=metric, start=BASE + start, end=BASE + end)
            for customer in customers.values()
            for metric in metrics.values()
            for start, end in [*spans, (timedelta(0), timedelta(hours=SPAN_HOURS, microseconds=1))]
        ]
        expected = [
            usage_aggregate(customer=Customer(pk=w.customer_id), metric=w.metric, start=w.start, end=w.end)
            for w in windows
        ]
        assert usage_aggregate_many(windows) == expected
        assert usage_values_many(windows) == _percentage_values(windows)
        transaction.set_rollback(True)
