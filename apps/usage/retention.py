"""Retention of usage events: a month's events exported to a compressed CSV file, then its partition
detached and dropped (PostgreSQL only). See docs/scaling.md, "Usage events: monthly partitions and
retention".

Dropping a partition removes its file at once: no DELETE of millions of rows, so no dead rows for
autovacuum to clean up afterwards and no bloat left in the indexes. The hourly rollups and distinct
values of the month stay (invoices, previews and reports read those), and so do the transaction ids
(`UsageEventKey`) until their generation expires (keys.py): an event of an archived month sent again
is a duplicate, or too late once its id has expired.

A month is refused while anything may still read or change its raw events: events of it are still
accepted (USAGE_EVENT_MAX_AGE_DAYS), a subscription has usage of it in a period not invoiced yet, a
late event or correction of it waits for the next invoice, or an invoiced period holding its usage is
still inside its metric's lateness window (corrections read and change the raw events).
"""

import gzip
import os
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q

from apps.accounts.models import Customer
from apps.catalog.constants import ChargeKind
from apps.catalog.models import BillableMetric
from apps.core import clock
from apps.core.errors import Conflict

from .models import UsageEventChange
from .partitions import EVENTS_TABLE, Month, foreign_key_checks_fire, is_partitioned, partitions
from .services import _format, invoiced_spans

CUSTOMERS_PER_CHECK = 1_000


class ArchiveRefused(Conflict):
    """The month cannot be archived (yet); `reasons` says why, one sentence each."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__(" ".join(reasons), code="archive_refused")
        self.reasons = reasons


@dataclass(frozen=True)
class ArchiveResult:
    month: Month
    path: Path
    rows: int
    size_bytes: int


def usage_month_archive_refusals(*, month: Month, now: datetime) -> list[str]:
    """Why `month` cannot be archived at `now` (an empty list: it can)."""
    now = clock.ensure_aware(now)
    if not is_partitioned():
        return ["Usage events are kept in monthly partitions on PostgreSQL only; this database has one table."]
    name = partitions().get(month)
    if name is None:
        return [f"{month} has no partition (never created, or archived already)."]
    reasons = []
    accepted_from = now - timedelta(days=settings.USAGE_EVENT_MAX_AGE_DAYS)
    if month.end > accepted_from:
        days = settings.USAGE_EVENT_MAX_AGE_DAYS
        reasons.append(
            f"Events dated in {month} are still accepted (USAGE_EVENT_MAX_AGE_DAYS = {days}): not before "
            f"{_format(month.end + timedelta(days=days))}."
        )
    in_month = Q(occurred_at__gte=month.start, occurred_at__lt=month.end) | Q(
        previous_occurred_at__gte=month.start, previous_occurred_at__lt=month.end
    )
    waiting = UsageEventChange.objects.filter(in_month, settled_at__isnull=True, billed_period_end_at__isnull=False)
    if count := waiting.count():
        reasons.append(f"{count} late event(s) or correction(s) dated in {month} are not billed yet.")
    return reasons + _usage_refusals(partition=name, month=month, now=now)


def _usage_refusals(*, partition: str, month: Month, now: datetime) -> list[str]:
    """Usage of the month in a period not invoiced yet, or in an invoiced period whose lateness window
    is still open (checked per customer and metric with events in the month)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT customer_id, metric_id FROM {partition}")  # noqa: S608
        pairs = cursor.fetchall()
    metric_ids: dict[int, set[int]] = defaultdict(set)
    for customer_id, metric_id in pairs:
        metric_ids[customer_id].add(metric_id)
    metrics = {metric.pk: metric for metric in BillableMetric.objects.filter(pk__in={m for _, m in pairs})}
    by_code = {metric.code: metric for metric in metrics.values()}
    customer_ids = sorted(metric_ids)
    reasons = []
    for start in range(0, len(customer_ids), CUSTOMERS_PER_CHECK):
        chunk = customer_ids[start : start + CUSTOMERS_PER_CHECK]
        customers = Customer.objects.select_related("test_clock").only("external_id", "test_clock").in_bulk(chunk)
        # Usage not invoiced yet: from the current period's start of each subscription still billing it.
        subscription_model: Any = apps.get_model("subscriptions", "Subscription")
        open_from = (
            subscription_model.objects.filter(
                customer_id__in=chunk,
                next_billing_at__isnull=False,
                current_period_start_at__lt=month.end,
                plan_version__charges__kind=ChargeKind.USAGE,
                plan_version__charges__metric_code__in=set(by_code),
            )
            .values_list("customer_id", "plan_version__charges__metric_code", "current_period_start_at")
            .distinct()
            .order_by("customer_id", "plan_version__charges__metric_code", "current_period_start_at")
        )
        for customer_id, code, since in open_from:
            metric = by_code[code]
            if metric.pk in metric_ids[customer_id] and _has_events(partition, customer_id, metric.pk, since=since):
                reasons.append(
                    f"Customer {customers[customer_id].external_id!r} has usage of {code!r} in {month} from "
                    f"{_format(max(since, month.start))} on, in a period not invoiced yet."
                )
        # Usage invoiced, but open to late events and corrections until the lateness window closes.
        spans = invoiced_spans(customer_ids=set(chunk), metric_codes=set(by_code))
        for customer_id in chunk:
            customer = customers[customer_id]
            reference = customer.test_clock.frozen_at if customer.test_clock is not None else now
            for metric_id in sorted(metric_ids[customer_id]):
                metric = metrics[metric_id]
                closes_at = None
                for span in spans.get((customer_id, metric.code), ()):
                    last = min(month.end, span.invoiced_until) - timedelta(microseconds=1)
                    if not span.bills_again or last < max(span.started_at, month.start):
                        continue  # ended (its final invoice billed all it ever will), or not this month
                    span_closes_at = span.period_end(last) + timedelta(days=metric.lateness_window_days)
                    closes_at = max(closes_at or span_closes_at, span_closes_at)
                if closes_at is not None and reference <= closes_at:
                    reasons.append(
                        f"Customer {customer.external_id!r}'s usage of {metric.code!r} in {month} is in an "
                        f"invoiced period whose lateness window is open until {_format(closes_at)}."
                    )
    return reasons


def _has_events(partition: str, customer_id: int, metric_id: int, *, since: datetime) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {partition} WHERE customer_id = %s AND metric_id = %s "  # noqa: S608
            f"AND occurred_at >= %s)",
            [customer_id, metric_id, since],
        )
        return bool(cursor.fetchone()[0])


def usage_month_archive(*, month: Month, path: Path, now: datetime) -> ArchiveResult:
    """Export `month`'s events to `path` (CSV with a header row, gzip), then detach and drop its
    partition, in one transaction: refused (`ArchiveRefused`, nothing changed) for the reasons of
    `usage_month_archive_refusals` or when `path` exists. The partition is locked against writes
    (SHARE) before the checks, so nothing changes between the checks, the export and the drop; the
    file is complete and on disk before the partition is dropped, and removed again if anything fails
    up to the commit. Run it in a transaction of its own (the command does)."""
    path = Path(path)
    if path.exists():
        raise ArchiveRefused([f"{path} exists already; archives are never overwritten."])
    partial = path.with_name(path.name + ".partial")
    written = False
    try:
        with transaction.atomic():
            rows = _archive(month=month, partial=partial, now=now)
            os.replace(partial, path)
            written = True
            _fsync_directory(path.parent)
            with connection.cursor() as cursor:
                cursor.execute(f"ALTER TABLE {EVENTS_TABLE} DETACH PARTITION {month.partition}")
                cursor.execute(f"DROP TABLE {month.partition}")
    except BaseException:
        partial.unlink(missing_ok=True)
        if written:
            path.unlink(missing_ok=True)
        raise
    return ArchiveResult(month=month, path=path, rows=rows, size_bytes=path.stat().st_size)


def _archive(*, month: Month, partial: Path, now: datetime) -> int:
    """Lock the month's partition against writes, check it may go, and export it to `partial`."""
    if not is_partitioned() or month not in partitions():
        raise ArchiveRefused(usage_month_archive_refusals(month=month, now=now))
    partition = month.partition
    with connection.cursor() as cursor:
        # Waiting long for a lock would stall ingestion queued behind it: fail instead, and run again.
        cursor.execute("SET LOCAL lock_timeout = '10s'")
        foreign_key_checks_fire(cursor)
        cursor.execute(f"LOCK TABLE {partition} IN SHARE MODE")
    reasons = usage_month_archive_refusals(month=month, now=now)
    if reasons:
        raise ArchiveRefused(reasons)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {partition}")  # noqa: S608
        (expected,) = cursor.fetchone()
        query = f"COPY (SELECT * FROM {partition} ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)"  # noqa: S608
        with open(partial, "xb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out, cursor.copy(query) as copy:
                for data in copy:
                    out.write(data)
            copied = cursor.rowcount
            raw.flush()
            os.fsync(raw.fileno())
    if copied != expected:
        raise RuntimeError(f"COPY wrote {copied} rows of {expected}; nothing dropped.")
    return expected


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
