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


@pytest.fixture
def key_generations_dropped_after():
    """Rotations here commit: afterwards, the view back to the one current table, generations dropped
    (the flush empties only the model's tables)."""
    yield
    from apps.usage.keys import KEYS_TABLE, KEYS_VIEW, generations, view_definition

    with connection.cursor() as cursor:
        cursor.execute(f"CREATE OR REPLACE VIEW {KEYS_VIEW} AS {view_definition([KEYS_TABLE])}")
        for generation in generations():
            cursor.execute(f"DROP TABLE {generation.table}")


def test_batches_sent_while_the_key_table_rotates_store_each_event_once(key_generations_dropped_after):
    from apps.usage.keys import KEYS_TABLE, generations, keys_rotate

    CustomerFactory(external_id="acme")
    billable_metric_create(code="storage", name="Storage", aggregation="sum", field_name="gb")
    start = NOW.replace(hour=0)
    batch = [event(f"t{i}", start.replace(hour=i % 12, minute=i % 60), metric="storage", gb="1") for i in range(300)]

    def ingest_or_rotate(index: int):
        if index == 0:
            return keys_rotate(now=NOW)
        # Overlapping slices in different orders: some ids claimed before the rotation, some after.
        return usage_events_ingest(events=batch[index * 50 :] + batch[: index * 50], now=NOW)

    results = run_in_threads(ingest_or_rotate, count=5)

    rotated = results[0].rotated
    assert [g.table for g in generations()] == [rotated]
    assert sum(result.accepted for result in results[1:]) == 300
    assert sum(result.duplicates for result in results[1:]) == 3 * 300
    assert UsageEvent.objects.count() == 300
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), count(DISTINCT transaction_id) FROM {KEYS_TABLE}_all")  # noqa: S608
        assert cursor.fetchone() == (300, 300)  # every id taken once, in one generation or the other
    assert usage_events_ingest(events=batch, now=NOW).duplicates == 300
    assert UsageEvent.objects.count() == 300
