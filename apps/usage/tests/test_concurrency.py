"""Duplicates sent at the same time are counted once (PostgreSQL: a real unique index under load)."""

from decimal import Decimal

import pytest
from django.db import connection

from apps.accounts.tests.factories import CustomerFactory
from apps.catalog.services import billable_metric_create
from apps.core.tests.concurrency import run_in_threads
from apps.usage.models import UsageEvent, UsageRollup
from apps.usage.selectors import usage_aggregate
from apps.usage.services import usage_events_ingest

from .conftest import NOW, event

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent inserts need a real database server"),
]


def test_the_same_batch_sent_concurrently_is_counted_once():
    customer = CustomerFactory(external_id="acme")
    metric = billable_metric_create(code="storage", name="Storage", aggregation="sum", field_name="gb")
    start = NOW.replace(hour=0)
    batch = [event(f"t{i}", start.replace(hour=i % 12, minute=i % 60), metric="storage", gb="1.5") for i in range(200)]

    # Each thread sends the batch in its own order, so their inserts and upserts interleave.
    results = run_in_threads(
        lambda index: usage_events_ingest(events=batch[index * 37 :] + batch[: index * 37], now=NOW), count=6
    )

    assert sum(result.accepted for result in results) == 200
    assert sum(result.duplicates for result in results) == 5 * 200
    assert all(result.rejected == [] for result in results)
    assert UsageEvent.objects.count() == 200
    assert sum(UsageRollup.objects.values_list("event_count", flat=True)) == 200
    window = {"customer": customer, "metric": metric, "start": start, "end": NOW}
    assert usage_aggregate(**window, source="rollup") == usage_aggregate(**window, source="raw") == {"": Decimal(300)}
