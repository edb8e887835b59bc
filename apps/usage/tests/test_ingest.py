from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import SimulatedClock
from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import bill_due_subscriptions
from apps.catalog.models import BillableMetric
from apps.catalog.tests.factories import PlanFactory, add_charge
from apps.subscriptions.periods import utc
from apps.subscriptions.tests.factories import make_subscription
from apps.usage.models import UsageDistinctValue, UsageEvent, UsageRollup
from apps.usage.services import IngestResult, RejectedEvent, usage_events_ingest

from .conftest import NOW, event

pytestmark = pytest.mark.django_db


def _rejections(result: IngestResult) -> list[tuple[int, str, str]]:
    return [(r.index, r.transaction_id, r.code) for r in result.rejected]


def test_good_events_are_stored_with_their_extracted_values(customer, make_metric):
    make_metric("storage_gb", "sum", field_name="gb", group_by="region")

    result = usage_events_ingest(
        events=[event("t1", "2026-03-15T10:30:00+02:00", metric="storage_gb", gb="1.5", region="eu")], now=NOW
    )

    assert result == IngestResult(accepted=1, duplicates=0, rejected=[])
    stored = UsageEvent.objects.get()
    assert (stored.transaction_id, stored.customer, stored.metric.code) == ("t1", customer, "storage_gb")
    assert stored.occurred_at == utc(2026, 3, 15, 8, 30)
    assert (stored.value, stored.group_key, stored.distinct_value) == (Decimal("1.5"), "eu", "")
    assert stored.properties == {"gb": "1.5", "region": "eu"}
    assert stored.received_at == NOW


def test_a_replayed_transaction_id_is_acknowledged_and_counted_once(customer, make_metric):
    make_metric()
    first = usage_events_ingest(events=[event("t1", utc(2026, 3, 15, 9))], now=NOW)

    replay = usage_events_ingest(events=[event("t1", utc(2026, 3, 15, 9)), event("t2", utc(2026, 3, 15, 9))], now=NOW)

    assert first == IngestResult(accepted=1, duplicates=0)
    assert replay == IngestResult(accepted=1, duplicates=1)
    assert UsageEvent.objects.count() == 2
    assert UsageRollup.objects.get().event_count == 2


def test_a_transaction_id_twice_in_one_batch_counts_once(customer, make_metric):
    make_metric()

    result = usage_events_ingest(events=[event("t1", utc(2026, 3, 15, 9)), event("t1", utc(2026, 3, 15, 10))], now=NOW)

    assert result == IngestResult(accepted=1, duplicates=1)
    assert UsageEvent.objects.get().occurred_at == utc(2026, 3, 15, 9)
    assert UsageRollup.objects.get().event_count == 1


def test_a_replay_of_a_refused_event_is_refused_again_not_acknowledged(customer, make_metric):
    make_metric()
    events = [event("t1", utc(2026, 3, 15, 9), customer="nobody"), event("t1", utc(2026, 3, 15, 9), customer="nobody")]

    result = usage_events_ingest(events=events, now=NOW)

    assert _rejections(result) == [(0, "t1", "unknown_customer"), (1, "t1", "unknown_customer")]
    assert result.duplicates == 0


def test_a_batch_with_bad_events_stores_the_good_ones_and_explains_each_refusal(customer, make_metric):
    make_metric()
    make_metric("storage_gb", "sum", field_name="gb")
    BillableMetric.objects.create(code="old", name="Old", is_archived=True)
    events = [
        event("ok-1", utc(2026, 3, 15, 9)),
        event("bad-customer", utc(2026, 3, 15, 9), customer="ghost"),
        event("bad-metric", utc(2026, 3, 15, 9), metric="nope"),
        event("too-old", NOW - timedelta(days=35, seconds=1)),
        event("too-new", NOW + timedelta(minutes=60, seconds=1)),
        event("not-a-number", utc(2026, 3, 15, 9), metric="storage_gb", gb="lots"),
        event("ok-2", NOW - timedelta(days=35)),
        event("naive", "2026-03-15T09:00:00"),
        event("garbled", "yesterday"),
        "not an object",
        {"external_customer_id": "acme", "metric_code": "api_calls", "timestamp": "2026-03-15T09:00:00Z"},
        event("archived", utc(2026, 3, 15, 9), metric="old"),
        event("no-value", utc(2026, 3, 15, 9), metric="storage_gb"),
        event("ok-3", NOW + timedelta(minutes=60), metric="storage_gb", gb=2),
    ]

    result = usage_events_ingest(events=events, now=NOW)

    assert result.accepted == 3
    assert result.duplicates == 0
    assert _rejections(result) == [
        (1, "bad-customer", "unknown_customer"),
        (2, "bad-metric", "unknown_metric"),
        (3, "too-old", "timestamp_out_of_window"),
        (4, "too-new", "timestamp_out_of_window"),
        (5, "not-a-number", "invalid_value"),
        (7, "naive", "invalid_timestamp"),
        (8, "garbled", "invalid_timestamp"),
        (9, "", "invalid"),
        (10, "", "invalid"),
        (11, "archived", "unknown_metric"),
        (12, "no-value", "invalid_value"),
    ]
    reasons = {r.transaction_id: r.reason for r in result.rejected}
    assert reasons["bad-customer"] == "No customer has the external ID 'ghost'."
    assert reasons["bad-metric"] == "No billable metric has the code 'nope'."
    assert reasons["too-old"] == (
        "Timestamp 2026-02-08T11:59:59Z is more than 35 days in the past (the oldest accepted is 2026-02-08T12:00:00Z)."
    )
    assert reasons["too-new"] == (
        "Timestamp 2026-03-15T13:00:01Z is more than 60 minutes in the future "
        "(the latest accepted is 2026-03-15T13:00:00Z)."
    )
    assert (
        reasons["not-a-number"]
        == "The metric 'storage_gb' (sum of a property) needs a number in property 'gb', not 'lots'."
    )
    assert (
        reasons["no-value"]
        == "The metric 'storage_gb' (sum of a property) needs a number in property 'gb'; it is missing."
    )
    assert reasons["archived"] == "The billable metric 'old' is archived and takes no new events."
    assert reasons["naive"].startswith("Timestamp '2026-03-15T09:00:00' has no UTC offset")
    assert result.rejected[8] == RejectedEvent(
        index=10, transaction_id="", code="invalid", reason="transaction_id is required (a non-empty string)."
    )
    assert sorted(UsageEvent.objects.values_list("transaction_id", flat=True)) == ["ok-1", "ok-2", "ok-3"]


def test_a_batch_of_only_bad_events_stores_nothing(customer, make_metric):
    result = usage_events_ingest(events=[event("t1", utc(2026, 3, 15, 9))], now=NOW)

    assert _rejections(result) == [(0, "t1", "unknown_metric")]
    assert not UsageEvent.objects.exists()
    assert not UsageRollup.objects.exists()


@pytest.mark.parametrize(
    ("raw", "stored"),
    [(3, "3"), (2.5, "2.5"), ("0.000001", "0.000001"), ("1.50000000", "1.5"), ("-4", "-4")],
)
def test_numeric_values_are_read_exactly(customer, make_metric, raw, stored):
    make_metric("storage_gb", "max", field_name="gb")

    result = usage_events_ingest(events=[event("t1", utc(2026, 3, 15, 9), metric="storage_gb", gb=raw)], now=NOW)

    assert result.accepted == 1
    assert UsageEvent.objects.get().value == Decimal(stored)


@pytest.mark.parametrize("raw", [True, None, "NaN", "Infinity", "1e40", "0.0000001", [1], {"v": 1}, ""])
def test_values_that_are_not_usable_numbers_are_refused(customer, make_metric, raw):
    make_metric("storage_gb", "latest", field_name="gb")

    result = usage_events_ingest(events=[event("t1", utc(2026, 3, 15, 9), metric="storage_gb", gb=raw)], now=NOW)

    assert _rejections(result) == [(0, "t1", "invalid_value")]


def test_events_outside_the_filters_are_refused_with_the_allowed_values(customer, make_metric):
    make_metric("eu_calls", filters={"region": ["eu", "uk"]})

    result = usage_events_ingest(
        events=[
            event("t1", utc(2026, 3, 15, 9), metric="eu_calls", region="eu"),
            event("t2", utc(2026, 3, 15, 9), metric="eu_calls", region="us"),
            event("t3", utc(2026, 3, 15, 9), metric="eu_calls"),
            event("t4", utc(2026, 3, 15, 9), metric="eu_calls", region="uk"),
        ],
        now=NOW,
    )

    assert result.accepted == 2
    assert [(r.index, r.code, r.reason) for r in result.rejected] == [
        (1, "filtered_out", "Property 'region' is 'us'; the metric 'eu_calls' counts only region in eu, uk."),
        (2, "filtered_out", "Property 'region' is missing; the metric 'eu_calls' counts only region in eu, uk."),
    ]


def test_grouped_metrics_need_the_group_property(customer, make_metric):
    make_metric(group_by="region")

    result = usage_events_ingest(
        events=[event("t1", utc(2026, 3, 15, 9), region="eu"), event("t2", utc(2026, 3, 15, 9), region=7),
                event("t3", utc(2026, 3, 15, 9))],
        now=NOW,
    )  # fmt: skip

    assert _rejections(result) == [(2, "t3", "missing_group")]
    assert sorted(UsageEvent.objects.values_list("group_key", flat=True)) == ["7", "eu"]


def test_unique_count_metrics_need_the_counted_property(customer, make_metric):
    make_metric("users", "unique_count", field_name="user_id")

    result = usage_events_ingest(
        events=[event("t1", utc(2026, 3, 15, 9), metric="users", user_id=42),
                event("t2", utc(2026, 3, 15, 9), metric="users", user_id={"id": 1})],
        now=NOW,
    )  # fmt: skip

    assert _rejections(result) == [(1, "t2", "invalid_value")]
    assert UsageEvent.objects.get().distinct_value == "42"
    assert UsageDistinctValue.objects.get().value == "42"


def test_events_for_an_invoiced_period_past_its_lateness_window_are_refused(make_metric):
    make_metric()
    plan = PlanFactory()
    add_charge(
        plan.versions.get(), name="API calls", price_model="per_unit", kind="usage", metric_code="api_calls",
        amount=Decimal("0.01"),
    )  # fmt: skip
    customer = CustomerFactory(external_id="acme")
    subscription = make_subscription(customer=customer, plan=plan, started_at=utc(2026, 2, 10))
    bill_due_subscriptions(now=utc(2026, 3, 10, 1))  # invoices the period from 10 Mar: February's usage is billed
    subscription.refresh_from_db()
    assert subscription.current_period_start_at == utc(2026, 3, 10)

    result = usage_events_ingest(
        events=[
            event("before-invoiced", utc(2026, 3, 9, 23, 59, 59)),
            event("current-period", utc(2026, 3, 10)),
            event("before-subscription", utc(2026, 2, 9, 23)),
        ],
        now=NOW,
    )

    assert result.accepted == 2
    assert [(r.index, r.code, r.reason) for r in result.rejected] == [
        (
            0,
            "late_beyond_window",
            "Usage of 'api_calls' dated 2026-03-09T23:59:59Z belongs to a period already invoiced (ending "
            "2026-03-10T00:00:00Z); the metric accepts late events for 3 days after a period ends, until "
            "2026-03-13T00:00:00Z.",
        )
    ]


def test_the_invoiced_rule_only_concerns_subscriptions_billing_the_metric(customer, make_metric):
    make_metric()
    subscription = make_subscription(customer=customer, started_at=utc(2026, 2, 10))  # recurring fee only
    bill_due_subscriptions(now=utc(2026, 3, 10, 1))
    subscription.refresh_from_db()
    assert subscription.current_period_start_at == utc(2026, 3, 10)

    result = usage_events_ingest(events=[event("t1", utc(2026, 3, 1))], now=NOW)

    assert result.accepted == 1


def test_test_customers_are_windowed_around_their_test_clock(make_metric):
    make_metric()
    clock = SimulatedClock.objects.create(name="Q1", frozen_at=utc(2026, 1, 1))
    CustomerFactory(external_id="tester", test_clock=clock)

    result = usage_events_ingest(
        events=[event("t1", utc(2025, 12, 31), customer="tester"), event("t2", utc(2026, 3, 15), customer="tester")],
        now=NOW,
    )

    assert _rejections(result) == [(1, "t2", "timestamp_out_of_window")]


def test_unix_timestamps_are_accepted(customer, make_metric):
    make_metric()

    result = usage_events_ingest(events=[event("t1", str(int(utc(2026, 3, 15, 9).timestamp())))], now=NOW)
    result_int = usage_events_ingest(
        events=[{**event("t2", ""), "timestamp": int(utc(2026, 3, 15, 9).timestamp())}], now=NOW
    )

    assert _rejections(result) == [(0, "t1", "invalid_timestamp")]  # digits in a string are not a date
    assert result_int.accepted == 1
    assert UsageEvent.objects.get().occurred_at == utc(2026, 3, 15, 9)


def test_a_batch_takes_the_same_number_of_queries_whatever_its_size(make_metric):
    make_metric()
    make_metric("storage", "sum", field_name="gb", group_by="region")
    make_metric("users", "unique_count", field_name="user")
    for name in ("a", "b", "c"):
        CustomerFactory(external_id=name)

    def batch(prefix: str, size: int) -> list[dict]:
        return [
            event(f"{prefix}{i}", utc(2026, 3, 15, i % 12), customer="abc"[i % 3],
                  metric=("api_calls", "storage", "users")[i % 3], gb=i, region="eu", user=f"u{i % 7}")
            for i in range(size)
        ]  # fmt: skip

    with CaptureQueriesContext(connection) as small:
        usage_events_ingest(events=batch("s", 6), now=NOW)
    with CaptureQueriesContext(connection) as large:
        result = usage_events_ingest(events=batch("l", 450), now=NOW)

    assert result.accepted == 450
    assert len(large) == len(small)
