"""Usage events in monthly partitions (PostgreSQL) and the transaction ids kept unique across them;
the retention step that archives a month. See docs/scaling.md, "Usage events: monthly partitions and
retention"."""

import gzip
import importlib
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from apps.billing.services import bill_due_subscriptions
from apps.catalog.tests.factories import PlanFactory, add_charge
from apps.core import clock
from apps.invoices.models import InvoiceLine
from apps.subscriptions.periods import utc
from apps.subscriptions.tests.factories import make_subscription
from apps.usage.corrections import usage_event_replace, usage_event_void
from apps.usage.models import UsageEvent, UsageEventKey, UsageRollup
from apps.usage.partitions import (
    DEFAULT_PARTITION,
    EVENTS_TABLE,
    Month,
    events_table_partition,
    events_table_unpartition,
    is_partitioned,
    partitions,
    partitions_ensure,
    window,
)
from apps.usage.retention import ArchiveRefused, usage_month_archive, usage_month_archive_refusals
from apps.usage.selectors import usage_aggregate
from apps.usage.services import IngestResult, usage_events_ingest
from apps.usage.tasks import usage_partitions_ensure_task

from .conftest import NOW, event

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="monthly partitions exist on PostgreSQL only; SQLite keeps usage events in one plain table",
)


def _partition_of(transaction_id: str) -> str:
    """The table that holds the event (the partition on PostgreSQL)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT tableoid::regclass::text FROM {EVENTS_TABLE} WHERE transaction_id = %s",  # noqa: S608
            [transaction_id],
        )
        return cursor.fetchone()[0]


# --- transaction ids unique across months (every database) ---------------------------------------------


def test_a_transaction_id_is_a_duplicate_in_another_month_too(customer, make_metric):
    make_metric()
    partitions_ensure(now=NOW)  # February and March have partitions of their own (PostgreSQL)
    first = usage_events_ingest(events=[event("t1", utc(2026, 2, 20, 9))], now=NOW)

    again = usage_events_ingest(events=[event("t1", utc(2026, 3, 15, 9)), event("t2", utc(2026, 3, 15, 9))], now=NOW)

    assert first == IngestResult(accepted=1, duplicates=0)
    assert again == IngestResult(accepted=1, duplicates=1)
    assert list(UsageEvent.objects.order_by("transaction_id").values_list("transaction_id", "occurred_at")) == [
        ("t1", utc(2026, 2, 20, 9)),
        ("t2", utc(2026, 3, 15, 9)),
    ]
    assert list(UsageEventKey.objects.order_by("pk").values_list("pk", "occurred_at")) == [
        ("t1", utc(2026, 2, 20, 9)),
        ("t2", utc(2026, 3, 15, 9)),
    ]
    assert sum(UsageRollup.objects.values_list("event_count", flat=True)) == 2


def test_a_replace_into_another_month_moves_the_event_and_its_key_and_it_can_still_be_voided(customer, make_metric):
    make_metric("storage_gb", "sum", field_name="gb")
    partitions_ensure(now=NOW)
    usage_events_ingest(events=[event("t1", utc(2026, 2, 28, 23, 30), metric="storage_gb", gb="5")], now=NOW)
    moved_from = _partition_of("t1") if connection.vendor == "postgresql" else ""

    usage_event_replace(transaction_id="t1", timestamp="2026-03-01T00:30:00Z", properties={"gb": "7"}, now=NOW)

    stored = UsageEvent.objects.get()
    assert (stored.occurred_at, stored.value) == (utc(2026, 3, 1, 0, 30), Decimal("7"))
    assert UsageEventKey.objects.get().occurred_at == utc(2026, 3, 1, 0, 30)
    if connection.vendor == "postgresql":
        assert (moved_from, _partition_of("t1")) == (f"{EVENTS_TABLE}_p2026_02", f"{EVENTS_TABLE}_p2026_03")
    usage_event_void(transaction_id="t1", now=NOW)
    assert not UsageEvent.objects.exists()
    assert usage_events_ingest(events=[event("t1", utc(2026, 3, 2), metric="storage_gb", gb="1")], now=NOW) == (
        IngestResult(accepted=0, duplicates=1)
    )


def test_the_partition_upkeep_is_scheduled_daily_and_does_nothing_without_partitions():
    entry = settings.CELERY_BEAT_SCHEDULE["usage-partitions-ensure-daily"]
    assert entry["task"] == usage_partitions_ensure_task.name == "apps.usage.tasks.usage_partitions_ensure_task"
    assert (entry["schedule"].minute, entry["schedule"].hour) == ({40}, {3})
    if connection.vendor != "postgresql":
        assert usage_partitions_ensure_task() == []
        with pytest.raises(CommandError, match="monthly partitions on PostgreSQL only"):
            call_command("usage_partition_archive", "2026-01", "--to", "/nonexistent/usage.csv.gz")


# --- the partitions (PostgreSQL) -----------------------------------------------------------------------


@postgresql_only
def test_after_migrate_the_events_table_is_partitioned_by_month_around_today():
    assert is_partitioned()
    assert set(window(clock.now())) <= set(partitions())
    with connection.cursor() as cursor:
        cursor.execute("SELECT partstrat, pg_get_partkeydef(%s::regclass) FROM pg_partitioned_table "
                       "WHERE partrelid = %s::regclass", [EVENTS_TABLE, EVENTS_TABLE])  # fmt: skip
        assert cursor.fetchone() == ("r", "RANGE (occurred_at)")
        cursor.execute(
            "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE oid = %s::regclass", [DEFAULT_PARTITION]
        )
        assert cursor.fetchone() == ("DEFAULT",)
        cursor.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('p', 'u')",
            [EVENTS_TABLE],
        )
        assert cursor.fetchall() == [("PRIMARY KEY (id, occurred_at)",)]
        cursor.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'",
            [UsageEventKey._meta.db_table],
        )
        assert cursor.fetchall() == [("PRIMARY KEY (transaction_id)",)]
        cursor.execute("SELECT count(*) FROM pg_index WHERE indrelid = %s::regclass", [UsageEventKey._meta.db_table])
        assert cursor.fetchone() == (1,)  # the primary key only: one B-tree write per ingested event


@postgresql_only
def test_events_are_routed_to_their_month_and_a_month_without_partition_is_kept_in_the_default_one(
    customer, make_metric
):
    make_metric()
    usage_events_ingest(events=[event("feb", utc(2026, 2, 28, 23, 59, 59)), event("mar", utc(2026, 3, 1))], now=NOW)
    # The migration made partitions around the real today; these months have none yet: nothing is lost.
    assert {_partition_of("feb"), _partition_of("mar")} == {DEFAULT_PARTITION}
    ids = dict(UsageEvent.objects.values_list("transaction_id", "id"))

    created = partitions_ensure(now=NOW)

    assert {Month(2026, 2), Month(2026, 3), Month(2026, 6)} <= set(created)
    assert (_partition_of("feb"), _partition_of("mar")) == (f"{EVENTS_TABLE}_p2026_02", f"{EVENTS_TABLE}_p2026_03")
    assert dict(UsageEvent.objects.values_list("transaction_id", "id")) == ids
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {DEFAULT_PARTITION}")  # noqa: S608
        assert cursor.fetchone() == (0,)
    assert partitions_ensure(now=NOW) == []  # idempotent
    usage_events_ingest(events=[event("mar-2", utc(2026, 3, 15, 10))], now=NOW)
    assert _partition_of("mar-2") == f"{EVENTS_TABLE}_p2026_03"
    assert usage_aggregate(customer=customer, metric=customer.usage_events.first().metric,
                           start=utc(2026, 2, 28, 12), end=utc(2026, 4, 1)) == {"": Decimal(3)}  # fmt: skip


@postgresql_only
def test_the_conversion_keeps_every_row_and_id_and_ids_go_on_from_there(customer, make_metric):
    make_metric()
    usage_events_ingest(events=[event(f"t{n}", utc(2026, 2 + n % 2, 10 + n)) for n in range(4)], now=NOW)
    before = list(UsageEvent.objects.order_by("id").values_list("id", "transaction_id", "occurred_at"))
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the ingested rows' foreign keys checked now
        events_table_unpartition(cursor, customer_index="usage_usageevent_customer_id_test")
        assert not is_partitioned()
        events_table_partition(cursor, now=NOW)

    assert is_partitioned()
    assert list(UsageEvent.objects.order_by("id").values_list("id", "transaction_id", "occurred_at")) == before
    assert {_partition_of("t0"), _partition_of("t1")} == {f"{EVENTS_TABLE}_p2026_02", f"{EVENTS_TABLE}_p2026_03"}
    usage_events_ingest(events=[event("t9", utc(2026, 3, 15))], now=NOW)
    assert UsageEvent.objects.get(transaction_id="t9").id > before[-1][0]


# --- retention: archive a month (PostgreSQL) -----------------------------------------------------------


@postgresql_only
def test_archive_refuses_a_month_whose_usage_is_still_accepted_or_open(customer, make_metric, tmp_path):
    make_metric()
    plan = PlanFactory()
    add_charge(
        plan.versions.get(), name="API calls", price_model="per_unit", kind="usage", metric_code="api_calls",
        amount=Decimal("0.01"),
    )  # fmt: skip
    make_subscription(customer=customer, plan=plan, started_at=utc(2026, 1, 1))
    partitions_ensure(now=utc(2026, 1, 10))
    usage_events_ingest(events=[event("jan-1", utc(2026, 1, 10))], now=utc(2026, 1, 20))
    target = tmp_path / "usage-2026-01.csv.gz"

    # Never billed (no billing run since): the period is open, months later too.
    with pytest.raises(ArchiveRefused) as refused:
        usage_month_archive(month=Month(2026, 1), path=target, now=utc(2026, 1, 20))
    assert refused.value.reasons == [
        "Events dated in 2026-01 are still accepted (USAGE_EVENT_MAX_AGE_DAYS = 35): not before 2026-03-08T00:00:00Z.",
        "Customer 'acme' has usage of 'api_calls' in 2026-01 from 2026-01-01T00:00:00Z on, in a period not "
        "invoiced yet.",
    ]
    assert usage_month_archive_refusals(month=Month(2026, 1), now=utc(2026, 6, 1)) == [refused.value.reasons[1]]
    assert not target.exists()
    assert Month(2026, 1) in partitions()
    assert UsageEvent.objects.count() == 1
    with pytest.raises(CommandError, match="period not invoiced yet"):
        with clock.frozen_at(utc(2026, 6, 1)):
            call_command("usage_partition_archive", "2026-01", "--to", str(target))
    assert not target.exists()


@postgresql_only
def test_archive_refuses_a_month_inside_a_lateness_window_or_with_late_usage_to_bill(customer, make_metric, tmp_path):
    make_metric(lateness_window_days=31)
    plan = PlanFactory()
    add_charge(
        plan.versions.get(), name="API calls", price_model="per_unit", kind="usage", metric_code="api_calls",
        amount=Decimal("0.01"),
    )  # fmt: skip
    make_subscription(customer=customer, plan=plan, started_at=utc(2026, 1, 15))  # periods from the 15th
    partitions_ensure(now=utc(2026, 1, 20))
    usage_events_ingest(events=[event("jan-1", utc(2026, 1, 20))], now=utc(2026, 1, 21))
    bill_due_subscriptions(now=utc(2026, 2, 15, 1))  # 15 Jan – 15 Feb invoiced
    usage_events_ingest(events=[event("jan-late", utc(2026, 1, 31))], now=utc(2026, 2, 20))  # late, within 31 days

    assert usage_month_archive_refusals(month=Month(2026, 1), now=utc(2026, 3, 10)) == [
        "1 late event(s) or correction(s) dated in 2026-01 are not billed yet.",
        "Customer 'acme''s usage of 'api_calls' in 2026-01 is in an invoiced period whose lateness window is open "
        "until 2026-03-18T00:00:00Z.",
    ]
    bill_due_subscriptions(now=utc(2026, 3, 15, 1))  # bills the late event
    assert usage_month_archive_refusals(month=Month(2026, 1), now=utc(2026, 3, 18, 0, 0, 1)) == []


@postgresql_only
def test_archive_of_an_old_month_writes_its_events_to_the_file_and_drops_the_partition(
    customer, billed_january, tmp_path
):
    usage_line = InvoiceLine.objects.get(kind="usage", period_end_at=utc(2026, 2, 1))
    assert usage_line.quantity == Decimal(3)
    january_ids = list(
        UsageEvent.objects.filter(occurred_at__lt=utc(2026, 2, 1)).order_by("id").values_list("id", flat=True)
    )
    target = tmp_path / "usage-2026-01.csv.gz"

    result = usage_month_archive(month=Month(2026, 1), path=target, now=utc(2026, 4, 1))

    assert (result.month, result.path, result.rows) == (Month(2026, 1), target, 3)
    lines = gzip.decompress(target.read_bytes()).decode().splitlines()
    assert lines[0].split(",")[:4] == ["id", "transaction_id", "occurred_at", "properties"]
    assert [int(line.split(",")[0]) for line in lines[1:]] == january_ids
    assert [line.split(",")[1] for line in lines[1:]] == ["jan-0", "jan-1", "jan-2"]
    assert Month(2026, 1) not in partitions()
    assert Month(2026, 2) in partitions()
    assert list(UsageEvent.objects.values_list("transaction_id", flat=True)) == ["feb-1"]
    # The hourly rollups stay: January reads the same as billed; its transaction ids stay taken.
    january = usage_aggregate(customer=customer, metric=billed_january, start=utc(2026, 1, 1), end=utc(2026, 2, 1))
    assert january == {"": Decimal(3)}
    assert usage_events_ingest(events=[event("jan-0", utc(2026, 3, 30))], now=utc(2026, 4, 1)) == IngestResult(
        accepted=0, duplicates=1
    )
    # The next invoice reads February's events from their partition.
    bill_due_subscriptions(now=utc(2026, 3, 1, 1))
    assert InvoiceLine.objects.get(kind="usage", period_end_at=utc(2026, 3, 1)).quantity == Decimal(1)
    # A second archive of the month is refused, and the file is never overwritten.
    with pytest.raises(ArchiveRefused, match="exists already"):
        usage_month_archive(month=Month(2026, 1), path=target, now=utc(2026, 4, 1))
    with pytest.raises(ArchiveRefused, match="2026-01 has no partition"):
        usage_month_archive(month=Month(2026, 1), path=tmp_path / "again.csv.gz", now=utc(2026, 4, 1))
    assert not (tmp_path / "again.csv.gz").exists()


@postgresql_only
def test_the_commands_ensure_partitions_and_archive_a_month(customer, billed_january, tmp_path, capsys):
    target = tmp_path / "usage-2026-01.csv.gz"
    with clock.frozen_at(utc(2026, 4, 1)):
        call_command("usage_partitions_ensure")
        call_command("usage_partition_archive", "2026-01", "--check")
        call_command("usage_partition_archive", "2026-01", "--to", str(target))

    output = capsys.readouterr().out
    assert "Created: 2026-05, 2026-06, 2026-07." in output
    assert "2026-01 can be archived now." in output
    assert f"2026-01: 3 events written to {target}" in output
    assert Month(2026, 1) not in partitions() and target.exists()
    with pytest.raises(CommandError, match="not a month written YYYY-MM"):
        call_command("usage_partition_archive", "2026-1", "--to", str(tmp_path / "x.csv.gz"))


def test_month_arithmetic():
    assert Month.parse("2026-12").shifted(1) == Month(2027, 1)
    assert Month(2027, 1).shifted(-1) == Month(2026, 12)
    assert (Month(2026, 2).start, Month(2026, 2).end) == (utc(2026, 2, 1), utc(2026, 3, 1))
    assert Month.of(utc(2026, 3, 31, 23, 59) + timedelta(minutes=1)) == Month(2026, 4)
    assert window(utc(2026, 3, 15)) == [Month(2026, 2), Month(2026, 3), Month(2026, 4), Month(2026, 5), Month(2026, 6)]


def test_the_migration_takes_the_keys_of_stored_and_voided_events(customer, make_metric):
    make_metric()
    usage_events_ingest(events=[event("kept", utc(2026, 3, 1)), event("voided", utc(2026, 3, 2))], now=NOW)
    usage_event_void(transaction_id="voided", now=NOW)
    UsageEventKey.objects.all().delete()  # as before migration usage 0006
    migration = importlib.import_module("apps.usage.migrations.0006_partitions_event_keys")

    migration.keys_fill(None, SimpleNamespace(connection=connection))

    assert list(UsageEventKey.objects.order_by("pk").values_list("pk", "customer_id", "occurred_at")) == [
        ("kept", customer.pk, utc(2026, 3, 1)),
        ("voided", customer.pk, utc(2026, 3, 2)),
    ]
    assert usage_events_ingest(events=[event("voided", utc(2026, 3, 3))], now=NOW) == IngestResult(
        accepted=0, duplicates=1
    )
