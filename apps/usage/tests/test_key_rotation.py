"""Rotation of the transaction ids' key table in generations (PostgreSQL; SQLite keeps one table and
the rotation does nothing there). See docs/scaling.md, "Rotating the transaction ids".

The rule under test: an id stays taken for a retention after the rotation that closed its generation;
the retention is at least what ingestion needs (USAGE_EVENT_MAX_AGE_DAYS = 35, plus a day for events
dated up to 60 minutes ahead: 36) and what corrections need (the longest period of a plan billing usage,
plus the longest lateness window of 31 days, plus that day: 31 + 31 + 1 = 63 with monthly plans).
Ingestion checks duplicates before the event's age, so a retry is a duplicate while its key is kept,
and refused as too late once it is not.
"""

import gzip
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from apps.catalog.tests.factories import PlanFactory, add_charge
from apps.core import clock
from apps.core.errors import Conflict
from apps.subscriptions.periods import utc
from apps.usage.constants import EventRejection
from apps.usage.corrections import usage_event_replace, usage_event_void
from apps.usage.keys import KEYS_TABLE, RetentionTooShort, generations, keys_rotate, retention_minimum
from apps.usage.models import UsageEvent
from apps.usage.partitions import Month, partitions
from apps.usage.services import IngestResult, usage_events_ingest
from apps.usage.tasks import usage_keys_rotate_task

from .conftest import NOW, event

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the key table has generations on PostgreSQL only; SQLite keeps one table and never rotates it",
)

RETENTION = timedelta(days=63)  # USAGE_EVENT_KEY_RETENTION_DAYS by default


def _keys_in(table: str) -> list[tuple[str, object]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT transaction_id, occurred_at FROM {table} ORDER BY transaction_id")  # noqa: S608
        return cursor.fetchall()


def _monthly_usage_plan(**plan) -> None:
    plan_object = PlanFactory(**plan)
    add_charge(
        plan_object.versions.get(), name="API calls", price_model="per_unit", kind="usage", metric_code="api_calls",
        amount=Decimal("0.01"),
    )  # fmt: skip


# --- the rule (every database) -------------------------------------------------------------------------


def test_the_minimum_retention_comes_from_the_age_limit_and_the_longest_usage_period(make_metric):
    # No plan bills usage: ingestion's 35 days + 1 (events up to 60 minutes ahead) against 0 + 31 + 1.
    assert retention_minimum().days == 36
    make_metric()
    _monthly_usage_plan()
    assert retention_minimum().days == 31 + 31 + 1  # a 31-day month, the longest lateness window, a day
    _monthly_usage_plan(code="quarterly", interval="month", interval_count=3)
    assert retention_minimum().days == 3 * 31 + 31 + 1
    _monthly_usage_plan(code="yearly", interval="year")
    assert retention_minimum().days == 366 + 31 + 1


def test_a_retention_shorter_than_the_minimum_is_refused_and_changes_nothing(make_metric, settings):
    make_metric()
    _monthly_usage_plan()
    settings.USAGE_EVENT_KEY_RETENTION_DAYS = 62

    with pytest.raises(RetentionTooShort) as refused:
        keys_rotate(now=NOW)
    assert refused.value.message.startswith(
        "USAGE_EVENT_KEY_RETENTION_DAYS = 62 is too short: transaction ids must stay taken at least 63 days"
    )
    assert "Nothing was rotated or dropped." in refused.value.message
    with pytest.raises(CommandError, match="USAGE_EVENT_KEY_RETENTION_DAYS = 62 is too short"):
        call_command("usage_keys_rotate")
    assert generations() == []


def test_the_rotation_is_scheduled_daily_and_does_nothing_on_one_table(capsys, settings):
    entry = settings.CELERY_BEAT_SCHEDULE["usage-keys-rotate-daily"]
    assert entry["task"] == usage_keys_rotate_task.name == "apps.usage.tasks.usage_keys_rotate_task"
    assert (entry["schedule"].minute, entry["schedule"].hour) == ({50}, {3})
    if connection.vendor != "postgresql":
        assert usage_keys_rotate_task().startswith("Rotated: no")
        call_command("usage_keys_rotate")
        assert "one table (usage_usageeventkey) on this database: nothing to rotate" in capsys.readouterr().out


# --- generations (PostgreSQL) --------------------------------------------------------------------------


@postgresql_only
def test_a_transaction_id_stays_a_duplicate_across_a_rotation(customer, make_metric):
    make_metric()
    assert usage_events_ingest(events=[event("t1", utc(2026, 3, 15, 9))], now=NOW).accepted == 1

    result = keys_rotate(now=NOW)

    assert (result.rotated, result.dropped) == (f"{KEYS_TABLE}_r20260315120000", [])
    assert _keys_in(result.rotated) == [("t1", utc(2026, 3, 15, 9))]
    assert _keys_in(KEYS_TABLE) == []
    again = usage_events_ingest(events=[event("t1", utc(2026, 3, 15, 9)), event("t2", utc(2026, 3, 15, 10))], now=NOW)
    assert again == IngestResult(accepted=1, duplicates=1)
    assert _keys_in(KEYS_TABLE) == [("t2", utc(2026, 3, 15, 10))]
    assert sorted(UsageEvent.objects.values_list("transaction_id", flat=True)) == ["t1", "t2"]


@postgresql_only
def test_a_retry_after_its_generation_is_dropped_is_refused_as_too_late(customer, make_metric):
    make_metric()
    _monthly_usage_plan()
    # Dated as far ahead as ingestion allows: the id that must stay taken longest after its claim.
    sent = event("t1", NOW + timedelta(minutes=60))
    assert usage_events_ingest(events=[sent], now=NOW).accepted == 1
    first = keys_rotate(now=NOW)

    # The last moment before the drop: still a duplicate (ingestion checks duplicates first).
    last_kept = NOW + RETENTION - timedelta(seconds=1)
    assert keys_rotate(now=last_kept).rotated is None
    assert usage_events_ingest(events=[sent], now=last_kept) == IngestResult(accepted=0, duplicates=1)

    second = keys_rotate(now=NOW + RETENTION)
    assert (second.rotated, second.dropped, second.kept) == (
        f"{KEYS_TABLE}_r20260517120000", [first.rotated], [f"{KEYS_TABLE}_r20260517120000"]
    )  # fmt: skip
    assert [g.table for g in generations()] == [second.rotated]
    # 63 days after the claim, the event (dated 60 minutes after it) is 62 days old: more than 35.
    retry = usage_events_ingest(events=[sent], now=NOW + RETENTION)
    assert (retry.accepted, retry.duplicates) == (0, 0)
    assert [rejection.code for rejection in retry.rejected] == [EventRejection.TIMESTAMP_OUT_OF_WINDOW]
    assert UsageEvent.objects.count() == 1


@postgresql_only
def test_corrections_find_keys_in_an_older_generation_and_a_replace_moves_its_key_to_the_current_one(
    customer, make_metric
):
    make_metric("storage_gb", "sum", field_name="gb")
    usage_events_ingest(
        events=[event("t1", utc(2026, 3, 15, 9), metric="storage_gb", gb="5"),
                event("t2", utc(2026, 3, 15, 10), metric="storage_gb", gb="6")],
        now=NOW,
    )  # fmt: skip
    first = keys_rotate(now=NOW).rotated
    later = NOW + timedelta(hours=1)

    usage_event_void(transaction_id="t1", now=later)
    usage_event_replace(transaction_id="t2", timestamp="2026-03-15T11:00:00Z", properties={"gb": "9"}, now=later)

    assert list(UsageEvent.objects.values_list("transaction_id", "occurred_at", "value")) == [
        ("t2", utc(2026, 3, 15, 11), Decimal("9"))
    ]
    assert _keys_in(first) == [("t1", utc(2026, 3, 15, 9))]  # a voided id stays taken
    assert _keys_in(KEYS_TABLE) == [("t2", utc(2026, 3, 15, 11))]  # kept a whole retention from the replace
    retry = [event("t1", utc(2026, 3, 15, 9), metric="storage_gb", gb="5"),
             event("t2", utc(2026, 3, 15, 11), metric="storage_gb", gb="9")]  # fmt: skip
    assert usage_events_ingest(events=retry, now=later) == IngestResult(accepted=0, duplicates=2)
    with pytest.raises(Conflict, match="already voided"):
        usage_event_void(transaction_id="t1", now=later)

    # The next rotation drops t1's generation; t2's key goes on in the generation it was moved to.
    second = keys_rotate(now=NOW + RETENTION)
    assert second.dropped == [first]
    assert _keys_in(second.rotated) == [("t2", utc(2026, 3, 15, 11))]
    usage_event_void(transaction_id="t2", now=NOW + RETENTION)
    assert not UsageEvent.objects.exists()


@postgresql_only
def test_the_rotation_is_idempotent_and_logs_what_it_did(customer, make_metric, capsys, caplog):
    make_metric()
    usage_events_ingest(events=[event("t1", utc(2026, 3, 15, 9))], now=NOW)
    with clock.frozen_at(NOW):
        call_command("usage_keys_rotate")
        call_command("usage_keys_rotate")
    with caplog.at_level("INFO", logger="apps.usage.keys"):
        again = keys_rotate(now=NOW + RETENTION - timedelta(days=1))

    output = capsys.readouterr().out.splitlines()
    assert output[0] == (
        f"Rotated: {KEYS_TABLE}_r20260315120000. Dropped: none. Kept: {KEYS_TABLE}, {KEYS_TABLE}_r20260315120000. "
        "Retention 63 days (at least 36)."
    )
    assert output[1].startswith("Rotated: no (the current generation is younger than the retention). Dropped: none.")
    assert (again.rotated, again.dropped, again.kept) == (None, [], [f"{KEYS_TABLE}_r20260315120000"])
    assert "usage key rotation at 2026-05-16T12:00:00+00:00: Rotated: no" in caplog.text
    assert [g.table for g in generations()] == [f"{KEYS_TABLE}_r20260315120000"]
    assert _keys_in(f"{KEYS_TABLE}_r20260315120000") == [("t1", utc(2026, 3, 15, 9))]
    assert usage_events_ingest(events=[event("t1", utc(2026, 3, 15, 9))], now=NOW) == IngestResult(0, 1)


@postgresql_only
def test_a_month_is_archived_by_the_command_after_rotations(customer, billed_january, tmp_path, capsys):
    rotated = keys_rotate(now=utc(2026, 2, 1, 2)).rotated  # January's keys are in this generation
    target = tmp_path / "usage-2026-01.csv.gz"

    with clock.frozen_at(utc(2026, 4, 1)):
        call_command("usage_partition_archive", "2026-01", "--to", str(target))

    assert f"2026-01: 3 events written to {target}" in capsys.readouterr().out
    assert Month(2026, 1) not in partitions()
    assert len(gzip.decompress(target.read_bytes()).decode().splitlines()) == 1 + 3
    # Archived and its generation kept: a retry is a duplicate; after the drop, too late.
    jan_0 = event("jan-0", utc(2026, 1, 10, 12))
    assert usage_events_ingest(events=[jan_0], now=utc(2026, 4, 1)) == IngestResult(accepted=0, duplicates=1)
    assert keys_rotate(now=utc(2026, 4, 5, 2)).dropped == [rotated]  # 1 Feb 02:00 + 63 days
    retry = usage_events_ingest(events=[jan_0], now=utc(2026, 4, 5, 2))
    assert [rejection.code for rejection in retry.rejected] == [EventRejection.TIMESTAMP_OUT_OF_WINDOW]
