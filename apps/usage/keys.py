"""Transaction ids taken, in generations of the key table that rotate (PostgreSQL; SQLite keeps one
table and never rotates). See docs/scaling.md, "Rotating the transaction ids".

A transaction id only needs to stay taken while an event carrying it could still be accepted, or its
event still corrected. Ingestion claims ids in the current generation, `usage_usageeventkey` (the
`UsageEventKey` model), and looks for duplicates in every retained one through the view
`usage_usageeventkey_all` (`UNION ALL` of the generations, each searched through its primary key).
`keys_rotate` renames the current table to a generation named after the moment of the rotation,
`usage_usageeventkey_rYYYYMMDDHHMMSS`, starts an empty current table, and drops the generations
rotated at least the retention (USAGE_EVENT_KEY_RETENTION_DAYS) ago: DROP TABLE, instant whatever its
size, no DELETE and nothing for vacuum. It rotates once per retention, so besides the current table
at most one older generation is kept.

Locking: a batch reads the view (ACCESS SHARE on it and on every generation) before it claims its
ids in the current table, in one transaction; rotation locks the view, and with it every generation,
in ACCESS EXCLUSIVE mode. So a rotation waits for the batches and corrections under way (at most
`lock_timeout`, then it gives up and runs again next time) and the next ones wait for it (a few
catalog changes): no batch can look in one set of generations and claim in another.
"""

import logging
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from apps.catalog.constants import MAX_LATENESS_WINDOW_DAYS, BillingInterval, ChargeKind
from apps.catalog.models import Plan
from apps.core.errors import Conflict

from .models import UsageEventKey

logger = logging.getLogger(__name__)

KEYS_TABLE = UsageEventKey._meta.db_table  # the current generation
KEYS_VIEW = f"{KEYS_TABLE}_all"
GENERATION_PREFIX = f"{KEYS_TABLE}_r"
_GENERATION_NAME = re.compile(rf"^{GENERATION_PREFIX}(\d{{14}})$")
_KEY_COLUMNS = "transaction_id, customer_id, metric_id, occurred_at"
# Advisory lock key of the rotation (partitions use 7,311; ingestion's locks the namespace 7,310).
ROTATION_LOCK = 7_312
# The longest a billing period of each interval can be, in days (a leap year, a 31-day month).
INTERVAL_DAYS: dict[str, int] = {
    BillingInterval.DAY: 1,
    BillingInterval.WEEK: 7,
    BillingInterval.MONTH: 31,
    BillingInterval.YEAR: 366,
}


@dataclass(frozen=True, order=True)
class Generation:
    """An older generation of the key table: the ids claimed before `rotated_at`."""

    rotated_at: datetime
    table: str


def rotates() -> bool:
    """True where the key table has generations (PostgreSQL, after migration usage 0009)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [KEYS_VIEW])
        return bool(cursor.fetchone()[0])


def generations() -> list[Generation]:
    """The older generations kept now, oldest first (the current table is not one of them)."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = current_schema()::regnamespace "
            "AND relname LIKE %s",
            [GENERATION_PREFIX + "%"],
        )
        names = [name for (name,) in cursor.fetchall()]
    found = []
    for name in names:
        match = _GENERATION_NAME.match(name)
        if match:
            found.append(Generation(datetime.strptime(match[1], "%Y%m%d%H%M%S").replace(tzinfo=UTC), name))
    return sorted(found)


def view_definition(tables: list[str]) -> str:
    """The view of every retained generation (current first), with the table each key is in."""
    return " UNION ALL ".join(f"SELECT '{table}'::text AS generation, {_KEY_COLUMNS} FROM {table}" for table in tables)  # noqa: S608


def taken_transaction_ids(transaction_ids: list[str]) -> set[str]:
    """Those of `transaction_ids` taken in any retained generation: one statement on PostgreSQL (each
    generation searched through its primary key); the one table elsewhere."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT transaction_id FROM {KEYS_VIEW} WHERE transaction_id = ANY(%s::text[])",  # noqa: S608
                [transaction_ids],
            )
            return {transaction_id for (transaction_id,) in cursor.fetchall()}
    taken: set[str] = set()
    for start in range(0, len(transaction_ids), 500):
        chunk = transaction_ids[start : start + 500]
        taken.update(UsageEventKey.objects.filter(transaction_id__in=chunk).values_list("transaction_id", flat=True))
    return taken


@dataclass(frozen=True)
class Key:
    """A transaction id's key row, locked, and the generation (table) it is in."""

    transaction_id: str
    table: str
    customer_id: int
    metric_id: int
    occurred_at: datetime


def key_lock(transaction_id: str) -> Key | None:
    """The key of `transaction_id`, its row locked (FOR UPDATE), in whichever retained generation it
    is; None when it is in none."""
    if connection.vendor != "postgresql":
        row = UsageEventKey.objects.select_for_update().filter(transaction_id=transaction_id).first()
        if row is None:
            return None
        return Key(transaction_id, KEYS_TABLE, row.customer_id, row.metric_id, row.occurred_at)
    with connection.cursor() as cursor:
        for _attempt in range(2):  # a replace may move the key to the current table meanwhile: look again
            cursor.execute(f"SELECT generation FROM {KEYS_VIEW} WHERE transaction_id = %s", [transaction_id])  # noqa: S608
            found = cursor.fetchone()
            if found is None:
                return None
            (table,) = found
            cursor.execute(
                f"SELECT customer_id, metric_id, occurred_at FROM {table} WHERE transaction_id = %s FOR UPDATE",  # noqa: S608
                [transaction_id],
            )
            row = cursor.fetchone()
            if row is not None:
                return Key(transaction_id, table, *row)
    return None


def key_occurred_at_set(key: Key, *, occurred_at: datetime) -> None:
    """Record a replaced event's new time on its key, moving the key into the current generation: the
    event as replaced can be sent again (and corrected) from now on, so its id stays taken for a
    whole retention from now, not from its first claim."""
    if key.table == KEYS_TABLE:
        UsageEventKey.objects.filter(transaction_id=key.transaction_id).update(occurred_at=occurred_at)
        return
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {key.table} WHERE transaction_id = %s", [key.transaction_id])  # noqa: S608
    UsageEventKey.objects.create(
        transaction_id=key.transaction_id, customer_id=key.customer_id, metric_id=key.metric_id, occurred_at=occurred_at
    )


# --- retention ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetentionMinimum:
    """The shortest retention (whole days) that keeps every id taken while it matters, and why."""

    days: int
    reasons: list[str]


def retention_minimum() -> RetentionMinimum:
    """Ids are claimed at most USAGE_EVENT_MAX_FUTURE_MINUTES before their event's time. After that:

    - ingestion accepts the event for USAGE_EVENT_MAX_AGE_DAYS after its time, and refuses it as too
      late afterwards (checked for every event; a lateness window only narrows it);
    - corrections find the event through its key while its period is open (the longest billing period
      or trial of a plan that bills usage) and for the metric's lateness window after it
      (MAX_LATENESS_WINDOW_DAYS at most).
    """
    future_days = math.ceil(settings.USAGE_EVENT_MAX_FUTURE_MINUTES / 1440)
    period_days = 0
    plans = (
        Plan.objects.filter(versions__charges__kind=ChargeKind.USAGE)
        .values_list("interval", "interval_count", "trial_days")
        .distinct()
    )
    for interval, count, trial_days in plans:
        period_days = max(period_days, INTERVAL_DAYS[interval] * count, trial_days)
    ingestion = settings.USAGE_EVENT_MAX_AGE_DAYS + future_days
    corrections = period_days + MAX_LATENESS_WINDOW_DAYS + future_days
    return RetentionMinimum(
        days=max(ingestion, corrections),
        reasons=[
            f"ingestion accepts an event up to USAGE_EVENT_MAX_AGE_DAYS = {settings.USAGE_EVENT_MAX_AGE_DAYS} days "
            f"after its time, which may be USAGE_EVENT_MAX_FUTURE_MINUTES = "
            f"{settings.USAGE_EVENT_MAX_FUTURE_MINUTES} minutes after its claim: {ingestion} days;",
            f"corrections find an event while its period is open (the longest period or trial of a plan billing "
            f"usage: {period_days} days) and the lateness window after it (at most {MAX_LATENESS_WINDOW_DAYS} "
            f"days), from up to {future_days} day(s) before its time: {corrections} days.",
        ],
    )


class RetentionTooShort(Conflict):
    """USAGE_EVENT_KEY_RETENTION_DAYS is shorter than `retention_minimum`: nothing rotated or dropped."""

    def __init__(self, *, retention_days: int, minimum: RetentionMinimum) -> None:
        message = (
            f"USAGE_EVENT_KEY_RETENTION_DAYS = {retention_days} is too short: transaction ids must stay taken at "
            f"least {minimum.days} days, because " + " ".join(minimum.reasons) + " Nothing was rotated or dropped."
        )
        super().__init__(message, code="key_retention_too_short")
        self.minimum = minimum


@dataclass(frozen=True)
class RotationResult:
    rotated: str | None = None  # the generation the current table became, if it rotated
    dropped: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # the older generations retained after it
    retention_days: int = 0
    minimum_days: int = 0

    def __str__(self) -> str:
        return (
            f"Rotated: {self.rotated or 'no (the current generation is younger than the retention)'}. "
            f"Dropped: {', '.join(self.dropped) or 'none'}. Kept: {', '.join([KEYS_TABLE, *self.kept])}. "
            f"Retention {self.retention_days} days (at least {self.minimum_days})."
        )


def keys_rotate(*, now: datetime, retention_days: int | None = None) -> RotationResult:
    """Rotate the key table if its current generation is a retention old (or was never rotated), and
    drop the generations rotated at least a retention before `now`. Idempotent: run again, it does
    nothing until the next retention has passed. Refused (`RetentionTooShort`) when the retention is
    shorter than `retention_minimum()`. A no-op (empty result) without generations (SQLite)."""
    retention = settings.USAGE_EVENT_KEY_RETENTION_DAYS if retention_days is None else retention_days
    minimum = retention_minimum()
    if retention < minimum.days:
        raise RetentionTooShort(retention_days=retention, minimum=minimum)
    if not rotates():
        return RotationResult(retention_days=retention, minimum_days=minimum.days)
    with transaction.atomic(), connection.cursor() as cursor:
        # Waiting long for the locks would stall ingestion queued behind them: fail, run again later.
        cursor.execute("SET LOCAL lock_timeout = '10s'")
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ROTATION_LOCK])
        older = generations()
        rotated = None
        if not older or now >= older[-1].rotated_at + timedelta(days=retention):
            cursor.execute(f"LOCK TABLE {KEYS_VIEW} IN ACCESS EXCLUSIVE MODE")  # the view and every generation
            rotated = GENERATION_PREFIX + now.astimezone(UTC).strftime("%Y%m%d%H%M%S")
            cursor.execute(f"ALTER TABLE {KEYS_TABLE} RENAME TO {rotated}")
            cursor.execute(f"ALTER INDEX {KEYS_TABLE}_pkey RENAME TO {rotated}_pkey")
            cursor.execute(f"CREATE TABLE {KEYS_TABLE} (LIKE {rotated} INCLUDING ALL)")
            older.append(Generation(now, rotated))
        expired = [g for g in older if now >= g.rotated_at + timedelta(days=retention)]
        kept = [g for g in older if g not in expired]
        if rotated or expired:
            if not rotated:
                cursor.execute(f"LOCK TABLE {KEYS_VIEW} IN ACCESS EXCLUSIVE MODE")
            cursor.execute(
                f"CREATE OR REPLACE VIEW {KEYS_VIEW} AS {view_definition([KEYS_TABLE, *(g.table for g in kept)])}"
            )
            for generation in expired:
                cursor.execute(f"DROP TABLE {generation.table}")
    result = RotationResult(
        rotated=rotated,
        dropped=[g.table for g in expired],
        kept=[g.table for g in kept],
        retention_days=retention,
        minimum_days=minimum.days,
    )
    logger.info("usage key rotation at %s: %s", now.isoformat(), result)
    return result


def generations_merge(cursor: Any) -> None:
    """Back to one key table (migration usage 0009 reversed): the older generations' keys moved into
    the current table, the generations and the view dropped."""
    cursor.execute("DROP VIEW IF EXISTS " + KEYS_VIEW)
    for generation in generations():
        cursor.execute(
            f"INSERT INTO {KEYS_TABLE} ({_KEY_COLUMNS}) SELECT {_KEY_COLUMNS} FROM {generation.table} "  # noqa: S608
            "ON CONFLICT (transaction_id) DO NOTHING"
        )
        cursor.execute(f"DROP TABLE {generation.table}")
