"""Monthly partitions of the usage events on PostgreSQL (other databases keep one plain table).

`usage_usageevent` is `PARTITION BY RANGE (occurred_at)`: one partition per UTC calendar month,
named `usage_usageevent_pYYYY_MM`, and a DEFAULT partition (`usage_usageevent_default`) that takes
an event of a month without a partition, so no accepted event is ever refused or lost for want of
one. `partitions_ensure` (the command `usage_partitions_ensure`, daily on Celery beat) creates the
months ahead and moves whatever the DEFAULT partition holds into partitions of its own months, so
the DEFAULT partition stays empty in normal operation. Retention (export, detach, drop a month) is
`retention.py`. See docs/scaling.md, "Usage events: monthly partitions and retention".

The primary key is (id, occurred_at): PostgreSQL requires every unique index of a partitioned table
to include the partition key. Transaction ids are kept unique by `UsageEventKey` instead.
"""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction

EVENTS_TABLE = "usage_usageevent"
DEFAULT_PARTITION = f"{EVENTS_TABLE}_default"
# Months created ahead of the current one (the beat entry runs daily, so a month is ready weeks early).
MONTHS_AHEAD = 3
# Advisory lock key of the partition upkeep (usage ingestion's locks use the namespace 7,310).
PARTITIONS_LOCK = 7_311


@dataclass(frozen=True, order=True)
class Month:
    """A UTC calendar month, [start, end)."""

    year: int
    month: int

    @classmethod
    def of(cls, moment: datetime | date) -> "Month":
        if isinstance(moment, datetime) and moment.tzinfo is not None:  # naive: already UTC (date_trunc)
            moment = moment.astimezone(UTC)
        return cls(moment.year, moment.month)

    @classmethod
    def parse(cls, text: str) -> "Month":
        """`YYYY-MM`; ValueError otherwise."""
        year, _, month = text.strip().partition("-")
        if len(year) != 4 or len(month) != 2 or not (year + month).isdigit() or not 1 <= int(month) <= 12:
            raise ValueError(f"{text!r} is not a month written YYYY-MM (e.g. 2026-09).")
        return cls(int(year), int(month))

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return self.shifted(1).start

    def shifted(self, months: int) -> "Month":
        index = self.year * 12 + (self.month - 1) + months
        return Month(index // 12, index % 12 + 1)

    @property
    def partition(self) -> str:
        return f"{EVENTS_TABLE}_p{self.year:04d}_{self.month:02d}"

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def is_partitioned() -> bool:
    """True when the events table is partitioned (PostgreSQL, after migration usage 0006)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [EVENTS_TABLE])
        row = cursor.fetchone()
    return row is not None and row[0] == "p"


def partitions() -> dict[Month, str]:
    """The monthly partitions attached now, by month (the DEFAULT partition is not a month)."""
    if not is_partitioned():
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [EVENTS_TABLE],
        )
        names = [name for (name,) in cursor.fetchall()]
    found = {}
    for name in names:
        suffix = name.removeprefix(f"{EVENTS_TABLE}_p")
        if suffix != name and len(suffix) == 7:
            found[Month.parse(suffix.replace("_", "-"))] = name
    return dict(sorted(found.items()))


def window(now: datetime, *, months_ahead: int = MONTHS_AHEAD) -> list[Month]:
    """The months that must have a partition at `now`: from the month of the oldest event ingestion
    still accepts (USAGE_EVENT_MAX_AGE_DAYS back) to `months_ahead` months after the current one."""
    first = Month.of(now - timedelta(days=settings.USAGE_EVENT_MAX_AGE_DAYS))
    last = Month.of(now).shifted(months_ahead)
    months = [first]
    while months[-1] < last:
        months.append(months[-1].shifted(1))
    return months


def _bound(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S+00")


def foreign_key_checks_fire(cursor: Any) -> None:
    """Run now the events' foreign-key checks still pending in this transaction (PostgreSQL refuses to
    ALTER a table with pending trigger events), then defer them again as they are declared."""
    cursor.execute(
        "SELECT string_agg(quote_ident(conname), ', ') FROM pg_constraint WHERE conrelid = %s::regclass "
        "AND contype = 'f' AND condeferrable",
        [EVENTS_TABLE],
    )
    (names,) = cursor.fetchone()
    if names:
        cursor.execute(f"SET CONSTRAINTS {names} IMMEDIATE")
        cursor.execute(f"SET CONSTRAINTS {names} DEFERRED")


def _months_in_default(cursor: Any) -> list[Month]:
    cursor.execute(
        f"SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC') FROM {DEFAULT_PARTITION}"  # noqa: S608
    )
    return sorted(Month.of(moment) for (moment,) in cursor.fetchall())


@transaction.atomic
def partition_create(month: Month) -> bool:
    """Create and attach `month`'s partition, moving the month's rows out of the DEFAULT partition in
    the same transaction. False when it exists already.

    The table is made apart and then attached: ATTACH PARTITION takes only a SHARE UPDATE EXCLUSIVE
    lock on the events table, so ingestion goes on meanwhile (CREATE TABLE … PARTITION OF would take
    an ACCESS EXCLUSIVE one). Attaching builds the partition's indexes and foreign keys from the
    table's, and checks that the DEFAULT partition holds no row of the month any more."""
    with connection.cursor() as cursor:
        # One upkeep at a time (the beat entry and a command run by hand): the second finds it made.
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PARTITIONS_LOCK])
    if month in partitions():
        return False
    name, start, end = month.partition, _bound(month.start), _bound(month.end)
    with connection.cursor() as cursor:
        foreign_key_checks_fire(cursor)
        cursor.execute(f"CREATE TABLE {name} (LIKE {EVENTS_TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        cursor.execute(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE occurred_at >= %s AND occurred_at < %s "  # noqa: S608
            f"RETURNING *) INSERT INTO {name} SELECT * FROM moved",
            [month.start, month.end],
        )
        cursor.execute(f"ALTER TABLE {EVENTS_TABLE} ATTACH PARTITION {name} FOR VALUES FROM ('{start}') TO ('{end}')")
    return True


def partitions_ensure(*, now: datetime, months_ahead: int = MONTHS_AHEAD) -> list[Month]:
    """Create the partitions of `window(now)` and of every month the DEFAULT partition holds events
    of (test clocks in the past, a beat that stopped for months), moving those events in. Returns the
    months created; nothing (an empty list) on a database without partitions."""
    if not is_partitioned():
        return []
    with connection.cursor() as cursor:
        stray = _months_in_default(cursor)
    existing = partitions()
    return [
        month
        for month in sorted(set(window(now, months_ahead=months_ahead)) | set(stray))
        if month not in existing and partition_create(month)
    ]


# --- the conversion (migration usage 0006) ---------------------------------------------------------


def _on_table(index_definition: str, old: str) -> str:
    """An index definition of table `old` (pg_get_indexdef) made for the events table instead."""
    return re.sub(rf" ON (ONLY )?(\w+\.)?{old} ", f" ON {EVENTS_TABLE} ", index_definition, count=1)


def events_table_partition(cursor: Any, *, now: datetime) -> None:
    """Turn the plain events table into a partitioned one, with its rows, indexes and foreign keys:
    partitions for every month that has events and for `window(now)`, and the DEFAULT partition.

    The primary key becomes (id, occurred_at). The single-column index on customer_id is not carried
    over: the window index (customer_id, metric_id, occurred_at) starts with it, and every index is a
    write per ingested event. Ids continue where they were."""
    cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [EVENTS_TABLE])
    if cursor.fetchone() != ("r",):
        return
    old = f"{EVENTS_TABLE}_unpartitioned"
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid), x.indisprimary, "
        "array(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = x.indrelid AND a.attnum = ANY(x.indkey)) "
        "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = %s::regclass",
        [EVENTS_TABLE],
    )
    indexes = [
        (name, definition)
        for name, definition, primary, columns in cursor.fetchall()
        if not primary and list(columns) != ["customer_id"]
    ]
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
        [EVENTS_TABLE],
    )
    foreign_keys = cursor.fetchall()
    cursor.execute(
        f"SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC') FROM {EVENTS_TABLE}"  # noqa: S608
    )
    months = {Month.of(moment) for (moment,) in cursor.fetchall()} | set(window(now))

    cursor.execute(f"ALTER TABLE {EVENTS_TABLE} RENAME TO {old}")
    cursor.execute(
        f"CREATE TABLE {EVENTS_TABLE} (LIKE {old} INCLUDING DEFAULTS INCLUDING IDENTITY) "
        f"PARTITION BY RANGE (occurred_at)"
    )
    for month in sorted(months):
        cursor.execute(
            f"CREATE TABLE {month.partition} PARTITION OF {EVENTS_TABLE} "
            f"FOR VALUES FROM ('{_bound(month.start)}') TO ('{_bound(month.end)}')"
        )
    cursor.execute(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {EVENTS_TABLE} DEFAULT")
    cursor.execute(f"INSERT INTO {EVENTS_TABLE} SELECT * FROM {old} ORDER BY id")  # noqa: S608
    cursor.execute(
        f"SELECT setval(pg_get_serial_sequence(%s, 'id'), coalesce((SELECT max(id) FROM {old}), 0) + 1, false)",  # noqa: S608
        [EVENTS_TABLE],
    )
    cursor.execute(f"DROP TABLE {old}")
    cursor.execute(f"ALTER TABLE {EVENTS_TABLE} ADD CONSTRAINT {EVENTS_TABLE}_pkey PRIMARY KEY (id, occurred_at)")
    for _name, definition in indexes:
        cursor.execute(_on_table(definition, old))
    for name, definition in foreign_keys:
        cursor.execute(f"ALTER TABLE {EVENTS_TABLE} ADD CONSTRAINT {name} {definition}")


def events_table_unpartition(cursor: Any, *, customer_index: str) -> None:
    """The reverse of `events_table_partition`: one plain table again, primary key (id), with the
    indexes and foreign keys of the partitioned table and the customer_id index (`customer_index`)."""
    cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [EVENTS_TABLE])
    if cursor.fetchone() != ("p",):
        return
    old = f"{EVENTS_TABLE}_partitioned"
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = %s::regclass AND NOT x.indisprimary",
        [EVENTS_TABLE],
    )
    indexes = cursor.fetchall()
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
        [EVENTS_TABLE],
    )
    foreign_keys = cursor.fetchall()
    cursor.execute(f"ALTER TABLE {EVENTS_TABLE} RENAME TO {old}")
    cursor.execute(f"CREATE TABLE {EVENTS_TABLE} (LIKE {old} INCLUDING DEFAULTS INCLUDING IDENTITY)")
    cursor.execute(f"INSERT INTO {EVENTS_TABLE} SELECT * FROM {old} ORDER BY id")  # noqa: S608
    cursor.execute(
        f"SELECT setval(pg_get_serial_sequence(%s, 'id'), coalesce((SELECT max(id) FROM {old}), 0) + 1, false)",  # noqa: S608
        [EVENTS_TABLE],
    )
    cursor.execute(f"DROP TABLE {old}")  # its partitions with it
    cursor.execute(f"ALTER TABLE {EVENTS_TABLE} ADD CONSTRAINT {EVENTS_TABLE}_pkey PRIMARY KEY (id)")
    for _name, definition in indexes:
        cursor.execute(_on_table(definition, old))
    cursor.execute(f"CREATE INDEX {customer_index} ON {EVENTS_TABLE} (customer_id)")
    for name, definition in foreign_keys:
        cursor.execute(f"ALTER TABLE {EVENTS_TABLE} ADD CONSTRAINT {name} {definition}")
