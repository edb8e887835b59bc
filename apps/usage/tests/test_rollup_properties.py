"""Rollups answer exactly what the raw events answer, for any event stream and any window; so does
`usage_aggregate_many` (the billing run's read of many windows at once) for the same windows."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.accounts.tests.factories import CustomerFactory
from apps.catalog.services import billable_metric_create
from apps.subscriptions.periods import utc
from apps.usage.selectors import UsageWindow, usage_aggregate, usage_aggregate_many
from apps.usage.services import usage_events_ingest

pytestmark = pytest.mark.django_db

BASE = utc(2026, 3, 10)
SPAN_HOURS = 30
NOW = BASE + timedelta(hours=SPAN_HOURS)
AGGREGATIONS = ["count", "sum", "max", "unique_count", "latest", "weighted_sum", "percentile"]
SETTINGS = {"weighted_sum": {"time_unit": "hour"}, "percentile": {"percentile": 95, "interval_minutes": 5}}

# Moments on an hour boundary, on a second, or anywhere to the microsecond.
offsets = st.one_of(
    st.integers(0, SPAN_HOURS).map(lambda hours: timedelta(hours=hours)),
    st.integers(0, SPAN_HOURS * 3600).map(lambda seconds: timedelta(seconds=seconds)),
    st.integers(0, SPAN_HOURS * 3600 * 10**6).map(lambda micro: timedelta(microseconds=micro)),
)
events = st.lists(
    st.fixed_dictionaries(
        {
            "metric": st.sampled_from(AGGREGATIONS),
            "offset": offsets,
            "value": st.decimals(min_value=-1000, max_value=1000, places=3, allow_nan=False, allow_infinity=False),
            "user": st.sampled_from(["ann", "bob", "cy", "dee"]),
            "group": st.sampled_from(["eu", "us"]),
            "replay_of": st.none() | st.integers(0, 50),
        }
    ),
    max_size=40,
)
windows = st.lists(st.tuples(offsets, offsets).map(sorted), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=events, batch_size=st.integers(1, 15), windows=windows)
def test_rollups_equal_raw_aggregation_for_random_streams_and_windows(stream, batch_size, windows):
    with transaction.atomic():
        customer = CustomerFactory(external_id="acme")
        metrics = {
            code: billable_metric_create(
                code=code, name=code, aggregation=code, field_name={"count": "", "unique_count": "user"}.get(code, "v"),
                group_by="g", **SETTINGS.get(code, {}),
            )
            for code in AGGREGATIONS
        }  # fmt: skip
        posted = []
        for index, drawn in enumerate(stream):
            # Some events replay an earlier transaction id (maybe with other content): counted once.
            transaction_id = f"t{drawn['replay_of']}" if drawn["replay_of"] is not None else f"t{index}"
            posted.append(
                {
                    "transaction_id": transaction_id,
                    "external_customer_id": "acme",
                    "metric_code": drawn["metric"],
                    "timestamp": (BASE + drawn["offset"]).isoformat(),
                    "properties": {"v": str(drawn["value"]), "user": drawn["user"], "g": drawn["group"]},
                }
            )
        for start in range(0, len(posted), batch_size):
            result = usage_events_ingest(events=posted[start : start + batch_size], now=NOW)
            assert result.rejected == []

        many: list[UsageWindow] = []
        expected = []
        for start_offset, end_offset in [*windows, (timedelta(0), timedelta(hours=SPAN_HOURS, microseconds=1))]:
            for metric in metrics.values():
                window = {
                    "customer": customer,
                    "metric": metric,
                    "start": BASE + start_offset,
                    "end": BASE + end_offset,
                }
                raw = usage_aggregate(**window, source="raw")
                assert usage_aggregate(**window, source="rollup") == raw
                assert all(isinstance(amount, Decimal) for amount in raw.values())
                many.append(UsageWindow(customer_id=customer.pk, metric=metric, start=BASE + start_offset,
                                        end=BASE + end_offset))  # fmt: skip
                expected.append(raw)
        assert usage_aggregate_many(many) == expected
        transaction.set_rollback(True)
