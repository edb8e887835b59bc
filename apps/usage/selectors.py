"""Usage aggregation: how much of a metric a customer used in a window [start, end).

Windows are half-open: an event at exactly `end` belongs to the next window. The rollup source reads
hourly rollups for the whole hours of the window and raw events for the partial hours at either end,
so any window gives the same result from either source (tested with random event streams).
"""

from calendar import monthrange
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any, Literal
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import (
    Aggregate,
    Case,
    CharField,
    Count,
    DecimalField,
    F,
    Max,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.expressions import RowRange
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, ExtractHour, RowNumber

from apps.accounts.models import Customer
from apps.catalog.constants import MetricAggregation, WeightedTimeUnit
from apps.catalog.models import BillableMetric
from apps.core import clock
from apps.core.money import round_quantity

from .constants import POOL_MEMBER_PROPERTY
from .models import UsageDistinctValue, UsageEvent, UsageIntervalRollup, UsageRollup
from .services import GaugeSpan, gauge_span, hour_of, interval_start_of, seconds_of

Source = Literal["rollup", "raw"]
ONE_HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class _Latest:
    at: datetime
    event_id: int
    value: Decimal


def usage_aggregate(
    *, customer: Customer, metric: BillableMetric, start: datetime, end: datetime, source: Source = "rollup"
) -> dict[str, Decimal]:
    """The metric's aggregate over the customer's events in [start, end), per group key ("" when the
    metric is not grouped). Groups without events in the window are absent; an empty dict means no
    usage."""
    start, end = clock.ensure_aware(start), clock.ensure_aware(end)
    if end <= start:
        return {}
    if source not in ("rollup", "raw"):
        raise ValueError(f"unknown usage source {source!r}")
    first_hour = _ceil_hour(start)
    last_hour = hour_of(end)
    if metric.aggregation == MetricAggregation.WEIGHTED_SUM:
        return _weighted_sum(customer=customer, metric=metric, start=start, end=end, source=source)
    if metric.aggregation == MetricAggregation.PERCENTILE:
        return _percentile(customer=customer, metric=metric, start=start, end=end, source=source)
    if source == "raw" or first_hour >= last_hour:
        return _combine(metric, raw=[(start, end)], hours=None, customer=customer)
    raw_spans = [(span_start, span_end) for span_start, span_end in [(start, first_hour), (last_hour, end)]]
    raw_spans = [(span_start, span_end) for span_start, span_end in raw_spans if span_start < span_end]
    return _combine(metric, raw=raw_spans, hours=(first_hour, last_hour), customer=customer)


def usage_for_customer_period(
    *,
    customer: Customer,
    start: datetime,
    end: datetime,
    metric_codes: list[str] | None = None,
    source: Source = "rollup",
) -> dict[str, dict[str, Decimal]]:
    """Every metric's usage by the customer in [start, end): metric code → group key → aggregate.
    With `metric_codes`, only those metrics (each present, with {} when unused); without, every
    metric the customer has events for in the window."""
    metrics: QuerySet[BillableMetric] = BillableMetric.objects.all()
    if metric_codes is not None:
        metrics = metrics.filter(code__in=metric_codes)
    else:
        # Every event has a rollup row for its hour: the window's metrics, without scanning events.
        in_window = UsageRollup.objects.filter(customer=customer, hour__gte=hour_of(start), hour__lt=end)
        metrics = metrics.filter(pk__in=in_window.values("metric_id"))
    usage = {
        metric.code: usage_aggregate(customer=customer, metric=metric, start=start, end=end, source=source)
        for metric in metrics.order_by("code")
    }
    if metric_codes is None:  # events in the window's first hour but before its start: not used here
        usage = {code: totals for code, totals in usage.items() if totals}
    return usage


def _ceil_hour(moment: datetime) -> datetime:
    floor = hour_of(moment)
    return floor if floor == moment else floor + ONE_HOUR


def _combine(
    metric: BillableMetric,
    *,
    customer: Customer,
    raw: list[tuple[datetime, datetime]],
    hours: tuple[datetime, datetime] | None,
) -> dict[str, Decimal]:
    aggregation = metric.aggregation
    events = [
        UsageEvent.objects.filter(customer=customer, metric=metric, occurred_at__gte=span_start, occurred_at__lt=end)
        for span_start, end in raw
    ]
    rollups = (
        UsageRollup.objects.filter(customer=customer, metric=metric, hour__gte=hours[0], hour__lt=hours[1])
        if hours
        else None
    )

    if aggregation in (MetricAggregation.COUNT, MetricAggregation.SUM):
        event_expression, rollup_expression = (
            (Count("id"), Sum("event_count"))
            if aggregation == MetricAggregation.COUNT
            else (Sum("value"), Sum("value_sum"))
        )
        parts = [_per_group(queryset, event_expression) for queryset in events]
        if rollups is not None:
            parts.append(_per_group(rollups, rollup_expression))
        totals: dict[str, Decimal] = {}
        for part in parts:
            for group_key, amount in part.items():
                totals[group_key] = totals.get(group_key, Decimal(0)) + amount
        return totals

    if aggregation == MetricAggregation.MAX:
        parts = [_per_group(queryset, Max("value")) for queryset in events]
        if rollups is not None:
            parts.append(_per_group(rollups, Max("value_max")))
        highest: dict[str, Decimal] = {}
        for part in parts:
            for group_key, amount in part.items():
                highest[group_key] = max(highest.get(group_key, amount), amount)
        return highest

    if aggregation == MetricAggregation.LATEST:
        candidates = [_latest_per_group(queryset, "occurred_at", "id", "value") for queryset in events]
        if rollups is not None:
            candidates.append(_latest_per_group(rollups, "latest_at", "latest_event_id", "latest_value"))
        latest: dict[str, _Latest] = {}
        for candidate_part in candidates:
            for group_key, candidate in candidate_part.items():
                current = latest.get(group_key)
                if current is None or (candidate.at, candidate.event_id) > (current.at, current.event_id):
                    latest[group_key] = candidate
        return {group_key: candidate.value for group_key, candidate in latest.items()}

    # Unique count: distinct values over the whole window, never a sum of per-hour counts.
    distinct_rows = (
        UsageDistinctValue.objects.filter(customer=customer, metric=metric, hour__gte=hours[0], hour__lt=hours[1])
        if hours
        else None
    )
    if not raw and distinct_rows is not None:
        return _per_group(distinct_rows, Count("value", distinct=True))
    values: dict[str, set[str]] = {}
    for queryset in events:
        for group_key, value in queryset.values_list("group_key", "distinct_value").distinct():
            values.setdefault(group_key, set()).add(value)
    if distinct_rows is not None:
        for group_key, value in distinct_rows.values_list("group_key", "value").distinct():
            values.setdefault(group_key, set()).add(value)
    return {group_key: Decimal(len(group_values)) for group_key, group_values in values.items()}


def _per_group(queryset: QuerySet[Any], expression: Aggregate) -> dict[str, Decimal]:
    rows = queryset.order_by().values("group_key").annotate(amount=expression).values_list("group_key", "amount")
    return {group_key: Decimal(amount) for group_key, amount in rows if amount is not None}


def _latest_per_group(queryset: QuerySet[Any], at: str, event_id: str, value: str) -> dict[str, _Latest]:
    ranked = (
        queryset.order_by()
        .annotate(rank=Window(RowNumber(), partition_by=[F("group_key")], order_by=[F(at).desc(), F(event_id).desc()]))
        .filter(rank=1)
        .values_list("group_key", at, event_id, value)
    )
    return {
        group_key: _Latest(moment, identifier, amount)
        for group_key, moment, identifier, amount in ranked
        if amount is not None
    }


# --- weighted sum -----------------------------------------------------------------------------------
#
# A weighted-sum metric is a gauge: each event's value is the new level of its group (GB stored,
# VMs running), holding until the group's next event. Over [start, end) the quantity is
# Σ level × the time it held, in the metric's time unit; the level at `start` is the value of the
# group's last event before it (carried over from earlier periods), zero if it never had one.
# Whole hours come from the hourly rollups (first event, Σ value × seconds within the hour, latest
# value); partial hours at either end from the events in SQL. See docs/usage.md, "Weighted sum".

QUANTITY_PLACES = 6
UNIT_SECONDS = {WeightedTimeUnit.HOUR: 3_600, WeightedTimeUnit.DAY: 86_400}


@dataclass(frozen=True)
class _GaugePiece:
    start: datetime
    end: datetime
    span: GaugeSpan


def _weighted_sum(
    *, customer: Customer, metric: BillableMetric, start: datetime, end: datetime, source: Source
) -> dict[str, Decimal]:
    first_hour, last_hour = _ceil_hour(start), hour_of(end)
    pieces: dict[str, list[_GaugePiece]] = defaultdict(list)
    if source == "raw" or first_hour >= last_hour:
        spans = [(start, end)]
    else:
        spans = [(a, b) for a, b in ((start, first_hour), (last_hour, end)) if a < b]
        rows = UsageRollup.objects.filter(
            customer=customer, metric=metric, hour__gte=first_hour, hour__lt=last_hour
        ).values_list("group_key", "hour", "first_at", "level_seconds", "latest_value")
        for group_key, hour, first_at, level_seconds, latest_value in rows:
            span = GaugeSpan(first_at or hour, level_seconds or Decimal(0), latest_value or Decimal(0))
            pieces[group_key].append(_GaugePiece(hour, hour + ONE_HOUR, span))
    for span_start, span_end in _split_at_month_starts(spans):
        for group_key, span in _gauge_spans(customer=customer, metric=metric, start=span_start, end=span_end).items():
            pieces[group_key].append(_GaugePiece(span_start, span_end, span))
    carried = _levels_before(customer=customer, metric=metric, moment=start, source=source)
    return _weighted_totals(metric, start, end, pieces, carried)


def _weighted_partial_spans(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The parts of [start, end) read from the events (the rest from the hourly rollups), cut where a
    UTC month begins."""
    first_hour, last_hour = _ceil_hour(start), hour_of(end)
    if first_hour >= last_hour:
        return _split_at_month_starts([(start, end)])
    return _split_at_month_starts([(a, b) for a, b in ((start, first_hour), (last_hour, end)) if a < b])


def _weighted_totals(
    metric: BillableMetric,
    start: datetime,
    end: datetime,
    pieces: dict[str, list[_GaugePiece]],
    carried: dict[str, Decimal],
) -> dict[str, Decimal]:
    """Each group's weighted sum over [start, end) from its pieces (hourly rollups and spans of events)
    and its level carried in at `start`."""
    totals: dict[str, Decimal] = {}
    with localcontext() as exact:
        # Value-seconds are added up exactly (values have 6 decimals, seconds 6) per unit length, and
        # divided once: Decimal sums with room to spare, one Fraction per unit length.
        exact.prec = 80
        for group_key in sorted(set(pieces) | {group for group, level in carried.items() if level}):
            level, cursor = carried.get(group_key, Decimal(0)), start
            held: dict[int, Decimal] = defaultdict(Decimal)  # seconds of the unit → value-seconds
            for piece in sorted(pieces.get(group_key, []), key=lambda piece: piece.start):
                _hold(held, metric, level, cursor, piece.span.first_at)
                held[_unit_seconds(metric, piece.span.first_at)] += piece.span.level_seconds
                level, cursor = piece.span.last_value, piece.end
            _hold(held, metric, level, cursor, end)
            total = sum((Fraction(value_seconds) / unit for unit, value_seconds in held.items()), Fraction(0))
            totals[group_key] = round_quantity(total, QUANTITY_PLACES)
    return totals


def _split_at_month_starts(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """The spans cut where a UTC month begins, so that each piece's time is counted in one month."""
    pieces = []
    for span_start, span_end in spans:
        moment = span_start
        while moment < span_end:
            piece_end = min(span_end, _next_month(_month_start(moment)))
            pieces.append((moment, piece_end))
            moment = piece_end
    return pieces


def _unit_seconds(metric: BillableMetric, moment: datetime) -> int:
    """Seconds in one time unit of the metric at `moment`: an hour, a day, or the UTC calendar month
    containing `moment`."""
    if metric.time_unit in UNIT_SECONDS:
        return UNIT_SECONDS[WeightedTimeUnit(metric.time_unit)]
    moment = moment.astimezone(UTC)
    return monthrange(moment.year, moment.month)[1] * 86_400


def _month_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(month_start: datetime) -> datetime:
    return (month_start + timedelta(days=32)).replace(day=1)


def _hold(held: dict[int, Decimal], metric: BillableMetric, level: Decimal, start: datetime, end: datetime) -> None:
    """Add `level` held over [start, end) to `held` (seconds of the unit → value-seconds); a month unit
    splits the stretch where a month begins."""
    if not level:
        return
    while start < end:
        piece_end = min(end, _next_month(_month_start(start))) if metric.time_unit == WeightedTimeUnit.MONTH else end
        held[_unit_seconds(metric, start)] += level * seconds_of(piece_end - start)
        start = piece_end


def _levels_before(
    *, customer: Customer, metric: BillableMetric, moment: datetime, source: Source
) -> dict[str, Decimal]:
    """Each group's level just before `moment`: the value of its last event before it."""
    events = UsageEvent.objects.filter(customer=customer, metric=metric, occurred_at__lt=moment)
    if source == "raw":
        candidates = [_latest_per_group(events, "occurred_at", "id", "value")]
    else:
        boundary = hour_of(moment)
        candidates = [
            _latest_per_group(
                UsageRollup.objects.filter(customer=customer, metric=metric, hour__lt=boundary),
                "latest_at", "latest_event_id", "latest_value",
            ),
            _latest_per_group(events.filter(occurred_at__gte=boundary), "occurred_at", "id", "value"),
        ]  # fmt: skip
    latest: dict[str, _Latest] = {}
    for part in candidates:
        for group_key, candidate in part.items():
            current = latest.get(group_key)
            if current is None or (candidate.at, candidate.event_id) > (current.at, current.event_id):
                latest[group_key] = candidate
    return {group_key: candidate.value for group_key, candidate in latest.items()}


def _gauge_spans(*, customer: Customer, metric: BillableMetric, start: datetime, end: datetime) -> dict[str, GaugeSpan]:
    """Each group's `GaugeSpan` of its events in [start, end). On PostgreSQL in one statement (each
    event's successor by LEAD, the seconds by EXTRACT(EPOCH …), exact numerics); elsewhere (SQLite,
    local development) by walking the span's events in order."""
    if connection.vendor != "postgresql":
        events = (
            UsageEvent.objects.filter(customer=customer, metric=metric, occurred_at__gte=start, occurred_at__lt=end)
            .order_by("group_key", "occurred_at", "id")
            .values_list("group_key", "occurred_at", "value")
        )
        by_group: dict[str, list[tuple[datetime, Decimal | None]]] = defaultdict(list)
        for group_key, occurred_at, value in events:
            by_group[group_key].append((occurred_at, value))
        spans = {group_key: gauge_span(rows, end=end) for group_key, rows in by_group.items()}
        return {group_key: span for group_key, span in spans.items() if span is not None}
    sql = f"""
        SELECT group_key, MIN(occurred_at),
               SUM(COALESCE(value, 0) * EXTRACT(EPOCH FROM (COALESCE(next_at, %(end)s) - occurred_at))),
               (ARRAY_AGG(COALESCE(value, 0) ORDER BY occurred_at DESC, id DESC))[1]
        FROM (
            SELECT group_key, occurred_at, id, value,
                   LEAD(occurred_at) OVER (PARTITION BY group_key ORDER BY occurred_at, id) AS next_at
            FROM {UsageEvent._meta.db_table}
            WHERE customer_id = %(customer)s AND metric_id = %(metric)s
              AND occurred_at >= %(start)s AND occurred_at < %(end)s
        ) AS ordered
        GROUP BY group_key
    """  # noqa: S608 - the table name is ours, values are parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, {"customer": customer.pk, "metric": metric.pk, "start": start, "end": end})
        return {
            group_key: GaugeSpan(first_at, Decimal(level_seconds), Decimal(last_value))
            for group_key, first_at, level_seconds, last_value in cursor.fetchall()
        }


def _weighted_sum_many(windows: list["UsageWindow"], indexes: list[int]) -> dict[int, dict[str, Decimal]]:
    """`_weighted_sum` (from rollups) of the windows at `indexes`, read in three statements for all of
    them on PostgreSQL — the hourly rollups of every window's whole hours, the `GaugeSpan`s of every
    window's partial hours, and each group's level before every window (its latest rollup before the
    window's first hour, or its latest event since) — and combined by the same code as window by
    window."""
    bounds: dict[int, tuple[datetime, datetime]] = {}
    hours: list[tuple[int, datetime, datetime]] = []  # (window index, first whole hour, end of the last)
    spans: list[tuple[int, datetime, datetime]] = []  # (window index, span start, span end)
    for index in indexes:
        window = windows[index]
        start, end = clock.ensure_aware(window.start), clock.ensure_aware(window.end)
        if end <= start:
            continue
        bounds[index] = (start, end)
        first_hour, last_hour = _ceil_hour(start), hour_of(end)
        if first_hour < last_hour:
            hours.append((index, first_hour, last_hour))
        spans += [(index, span_start, span_end) for span_start, span_end in _weighted_partial_spans(start, end)]
    if not bounds:
        return {}
    customers = {index: windows[index].customer_id for index in bounds}
    metric_ids = {index: windows[index].metric.pk for index in bounds}
    pieces: dict[int, dict[str, list[_GaugePiece]]] = defaultdict(lambda: defaultdict(list))
    rollups, events = UsageRollup._meta.db_table, UsageEvent._meta.db_table
    with connection.cursor() as cursor:
        if hours:
            cursor.execute(
                f"""
                SELECT w.idx, r.group_key, r.hour, r.first_at, r.level_seconds, r.latest_value
                FROM unnest(%s::integer[], %s::bigint[], %s::bigint[], %s::timestamptz[], %s::timestamptz[])
                     AS w(idx, customer_id, metric_id, first_hour, last_hour)
                JOIN {rollups} r ON r.customer_id = w.customer_id AND r.metric_id = w.metric_id
                                AND r.hour >= w.first_hour AND r.hour < w.last_hour
                """,  # noqa: S608 - the table name is ours, values are parameters
                [
                    [index for index, _, _ in hours],
                    [customers[index] for index, _, _ in hours],
                    [metric_ids[index] for index, _, _ in hours],
                    [first_hour for _, first_hour, _ in hours],
                    [last_hour for _, _, last_hour in hours],
                ],
            )
            for index, group_key, hour, first_at, level_seconds, latest_value in cursor.fetchall():
                span = GaugeSpan(first_at or hour, level_seconds or Decimal(0), latest_value or Decimal(0))
                pieces[index][group_key].append(_GaugePiece(hour, hour + ONE_HOUR, span))
        if spans:
            # As `_gauge_spans`, per span: each event's successor by LEAD, exact numerics.
            cursor.execute(
                f"""
                SELECT span, group_key, MIN(occurred_at),
                       SUM(COALESCE(value, 0) * EXTRACT(EPOCH FROM (COALESCE(next_at, span_end) - occurred_at))),
                       (ARRAY_AGG(COALESCE(value, 0) ORDER BY occurred_at DESC, id DESC))[1]
                FROM (
                    SELECT s.span, s.span_end, e.group_key, e.occurred_at, e.id, e.value,
                           LEAD(e.occurred_at) OVER (PARTITION BY s.span, e.group_key ORDER BY e.occurred_at, e.id)
                               AS next_at
                    FROM unnest(%s::integer[], %s::bigint[], %s::bigint[], %s::timestamptz[], %s::timestamptz[])
                         AS s(span, customer_id, metric_id, span_start, span_end)
                    JOIN {events} e ON e.customer_id = s.customer_id AND e.metric_id = s.metric_id
                                   AND e.occurred_at >= s.span_start AND e.occurred_at < s.span_end
                ) AS ordered
                GROUP BY span, group_key
                """,  # noqa: S608 - the table name is ours, values are parameters
                [
                    list(range(len(spans))),
                    [customers[index] for index, _, _ in spans],
                    [metric_ids[index] for index, _, _ in spans],
                    [span_start for _, span_start, _ in spans],
                    [span_end for _, _, span_end in spans],
                ],
            )
            for span_number, group_key, first_at, level_seconds, last_value in cursor.fetchall():
                index, span_start, span_end = spans[span_number]
                span = GaugeSpan(first_at, Decimal(level_seconds), Decimal(last_value))
                pieces[index][group_key].append(_GaugePiece(span_start, span_end, span))
        # The levels before each window, as `_levels_before` reads them from rollups: per group, the
        # latest of (its latest rollup before the window's first hour, its latest event from that hour
        # to the window's start), each the first of its source by (time, event id) descending.
        order = list(bounds)
        cursor.execute(
            f"""
            (SELECT DISTINCT ON (w.idx, r.group_key) w.idx, r.group_key, r.latest_at, r.latest_event_id,
                    r.latest_value
             FROM unnest(%s::integer[], %s::bigint[], %s::bigint[], %s::timestamptz[], %s::timestamptz[])
                  AS w(idx, customer_id, metric_id, boundary, moment)
             JOIN {rollups} r ON r.customer_id = w.customer_id AND r.metric_id = w.metric_id AND r.hour < w.boundary
             ORDER BY w.idx, r.group_key, r.latest_at DESC, r.latest_event_id DESC)
            UNION ALL
            (SELECT DISTINCT ON (w.idx, e.group_key) w.idx, e.group_key, e.occurred_at, e.id, e.value
             FROM unnest(%s::integer[], %s::bigint[], %s::bigint[], %s::timestamptz[], %s::timestamptz[])
                  AS w(idx, customer_id, metric_id, boundary, moment)
             JOIN {events} e ON e.customer_id = w.customer_id AND e.metric_id = w.metric_id
                            AND e.occurred_at >= w.boundary AND e.occurred_at < w.moment
             ORDER BY w.idx, e.group_key, e.occurred_at DESC, e.id DESC)
            """,  # noqa: S608 - the table names are ours, values are parameters
            [
                order,
                [customers[index] for index in order],
                [metric_ids[index] for index in order],
                [hour_of(bounds[index][0]) for index in order],
                [bounds[index][0] for index in order],
            ]
            * 2,
        )
        latest: dict[int, dict[str, _Latest]] = defaultdict(dict)
        for index, group_key, at, event_id, value in cursor.fetchall():
            if value is None:  # as `_latest_per_group`: a latest event without a value says nothing
                continue
            current = latest[index].get(group_key)
            if current is None or (at, event_id) > (current.at, current.event_id):
                latest[index][group_key] = _Latest(at, event_id, value)
    return {
        index: _weighted_totals(
            windows[index].metric, start, end, pieces[index],
            {group_key: candidate.value for group_key, candidate in latest[index].items()},
        )
        for index, (start, end) in bounds.items()
    }  # fmt: skip


# --- percentile -------------------------------------------------------------------------------------
#
# The period's samples are the sums of the property per sample interval (intervals of the metric's
# length counted from each UTC hour), one per interval overlapping [start, end), zero for an interval
# without events; a partial interval at either end of the window is a sample of the events inside the
# window. Of n samples, the k = floor(n × (100 − N) / 100) highest are dropped and the highest left is
# the quantity: the nearest-rank percentile, rank ceil(n × N / 100) counted from the lowest. Whole
# intervals come from `UsageIntervalRollup`, of which only the k + 1 highest per group are read.


@dataclass(frozen=True)
class _PercentilePlan:
    """What a percentile window reads: its partial intervals at either end (raw events), the whole
    intervals between (interval rollups), and how many samples it has and drops."""

    sample_count: int
    dropped: int
    partial: list[tuple[datetime, datetime]]
    whole: tuple[datetime, datetime] | None


def _percentile_plan(metric: BillableMetric, start: datetime, end: datetime) -> _PercentilePlan:
    assert metric.interval_minutes is not None and metric.percentile is not None
    interval = timedelta(minutes=metric.interval_minutes)
    grid_start = interval_start_of(start, metric.interval_minutes)
    sample_count = -((grid_start - end) // interval)  # intervals overlapping [start, end): ceil
    dropped = int(sample_count * (Decimal(100) - metric.percentile) // Decimal(100))
    first_full = grid_start if grid_start == start else grid_start + interval
    last_full = interval_start_of(end, metric.interval_minutes)
    if first_full >= end:
        partial = [(start, end)]
    else:
        partial = [(a, b) for a, b in ((start, first_full), (last_full, end)) if a < b]
    whole = (first_full, last_full) if first_full < last_full else None
    return _PercentilePlan(sample_count, dropped, partial, whole)


class _Samples:
    """A percentile window's samples as read, per group: the partial intervals' sums and the highest
    whole intervals' sums; the intervals not read are zero."""

    def __init__(self) -> None:
        self.values: dict[str, list[Decimal]] = defaultdict(list)
        self.stored: dict[str, int] = defaultdict(int)  # per group: how many samples of the window were read

    def add_partial(self, group_key: str, total: Decimal) -> None:
        self.values[group_key].append(total)
        self.stored[group_key] += 1

    def add_highest(self, group_key: str, total: Decimal, in_window: int, rank: int) -> None:
        self.values[group_key].append(total)
        if rank == 1:
            self.stored[group_key] += in_window

    def percentile(self, plan: _PercentilePlan) -> dict[str, Decimal]:
        result: dict[str, Decimal] = {}
        for group_key, values in self.values.items():
            zeros = plan.sample_count - self.stored[group_key]
            ordered = sorted([*values, *[Decimal(0)] * min(zeros, plan.dropped + 1)], reverse=True)
            result[group_key] = ordered[plan.dropped]
        return result


def _percentile(
    *, customer: Customer, metric: BillableMetric, start: datetime, end: datetime, source: Source
) -> dict[str, Decimal]:
    plan = _percentile_plan(metric, start, end)
    events = UsageEvent.objects.filter(customer=customer, metric=metric)
    samples = _Samples()
    if source == "raw":
        for group_key, total in _raw_interval_sums(customer=customer, metric=metric, start=start, end=end):
            samples.add_partial(group_key, total)
        return samples.percentile(plan)
    for span_start, span_end in plan.partial:
        sums = _per_group(events.filter(occurred_at__gte=span_start, occurred_at__lt=span_end), Sum("value"))
        for group_key, total in sums.items():
            samples.add_partial(group_key, total)
    if plan.whole is not None:
        for group_key, total, in_window, rank in _highest_samples(
            customer=customer, metric=metric, start=plan.whole[0], end=plan.whole[1], count=plan.dropped + 1
        ):
            samples.add_highest(group_key, total, in_window, rank)
    return samples.percentile(plan)


def _percentile_many(windows: list["UsageWindow"], indexes: list[int]) -> dict[int, dict[str, Decimal]]:
    """`_percentile` (from rollups) of the windows at `indexes`, read in two statements for all of them
    on PostgreSQL: the sums of every window's partial intervals from the raw events, and the highest
    whole-interval sums of every window and group (a top-N `LATERAL` per window and group, as in
    `_highest_samples`). The samples are combined by the same code as window by window."""
    plans: dict[int, _PercentilePlan] = {}
    partial: list[tuple[int, datetime, datetime]] = []  # (window index, span start, span end)
    whole: list[tuple[int, datetime, datetime, int]] = []  # (window index, start, end, how many)
    for index in indexes:
        window = windows[index]
        start, end = clock.ensure_aware(window.start), clock.ensure_aware(window.end)
        if end <= start:
            continue
        plan = plans[index] = _percentile_plan(window.metric, start, end)
        partial += [(index, span_start, span_end) for span_start, span_end in plan.partial]
        if plan.whole is not None:
            whole.append((index, plan.whole[0], plan.whole[1], plan.dropped + 1))
    samples: dict[int, _Samples] = defaultdict(_Samples)
    with connection.cursor() as cursor:
        if partial:
            # Grouped by span (not by window): each partial interval is a sample of its own.
            cursor.execute(
                f"""
                SELECT s.span, e.group_key, SUM(e.value)
                FROM unnest(%s::integer[], %s::bigint[], %s::bigint[], %s::timestamptz[], %s::timestamptz[])
                     AS s(span, customer_id, metric_id, span_start, span_end)
                JOIN {UsageEvent._meta.db_table} e
                  ON e.customer_id = s.customer_id AND e.metric_id = s.metric_id
                 AND e.occurred_at >= s.span_start AND e.occurred_at < s.span_end
                GROUP BY s.span, e.group_key
                """,  # noqa: S608 - the table name is ours, values are parameters
                [
                    list(range(len(partial))),
                    [windows[index].customer_id for index, _, _ in partial],
                    [windows[index].metric.pk for index, _, _ in partial],
                    [span_start for _, span_start, _ in partial],
                    [span_end for _, _, span_end in partial],
                ],
            )
            for span, group_key, total in cursor.fetchall():
                if total is not None:  # as `_per_group`: a group whose values are all empty has no sum
                    samples[partial[span][0]].add_partial(group_key, Decimal(total))
        if whole:
            table = UsageIntervalRollup._meta.db_table
            cursor.execute(
                f"""
                SELECT w.idx, groups.group_key, highest.value_sum, groups.row_count,
                       ROW_NUMBER() OVER (PARTITION BY w.idx, groups.group_key ORDER BY highest.value_sum DESC)
                FROM unnest(%s::integer[], %s::bigint[], %s::bigint[], %s::timestamptz[], %s::timestamptz[],
                            %s::integer[])
                     AS w(idx, customer_id, metric_id, range_start, range_end, top)
                CROSS JOIN LATERAL (
                    SELECT group_key, COUNT(*) AS row_count FROM {table} AS r
                    WHERE r.customer_id = w.customer_id AND r.metric_id = w.metric_id
                      AND r.interval_start >= w.range_start AND r.interval_start < w.range_end
                    GROUP BY group_key
                ) AS groups
                CROSS JOIN LATERAL (
                    SELECT value_sum FROM {table} AS sample
                    WHERE sample.customer_id = w.customer_id AND sample.metric_id = w.metric_id
                      AND sample.group_key = groups.group_key
                      AND sample.interval_start >= w.range_start AND sample.interval_start < w.range_end
                    ORDER BY value_sum DESC
                    LIMIT w.top
                ) AS highest
                """,  # noqa: S608 - the table name is ours, values are parameters
                [
                    [index for index, _, _, _ in whole],
                    [windows[index].customer_id for index, _, _, _ in whole],
                    [windows[index].metric.pk for index, _, _, _ in whole],
                    [start for _, start, _, _ in whole],
                    [end for _, _, end, _ in whole],
                    [count for _, _, _, count in whole],
                ],
            )
            for index, group_key, total, in_window, rank in cursor.fetchall():
                samples[index].add_highest(group_key, total, in_window, rank)
    return {index: samples[index].percentile(plan) for index, plan in plans.items()}


def _raw_interval_sums(
    *, customer: Customer, metric: BillableMetric, start: datetime, end: datetime
) -> list[tuple[str, Decimal]]:
    """(group key, sum) per group and sample interval with events in [start, end), from the events: on
    PostgreSQL summed in SQL (intervals by `date_bin` from a UTC hour), elsewhere in Python."""
    assert metric.interval_minutes is not None
    if connection.vendor == "postgresql":
        sql = f"""
            SELECT group_key, SUM(COALESCE(value, 0)) FROM {UsageEvent._meta.db_table}
            WHERE customer_id = %s AND metric_id = %s AND occurred_at >= %s AND occurred_at < %s
            GROUP BY group_key, date_bin(CAST(%s AS interval), occurred_at, TIMESTAMPTZ '2000-01-01 00:00:00+00')
        """  # noqa: S608 - the table name is ours, values are parameters
        with connection.cursor() as cursor:
            cursor.execute(sql, [customer.pk, metric.pk, start, end, f"{metric.interval_minutes} minutes"])
            return [(group_key, total) for group_key, total in cursor.fetchall()]
    totals: dict[tuple[str, datetime], Decimal] = defaultdict(Decimal)
    rows = UsageEvent.objects.filter(customer=customer, metric=metric, occurred_at__gte=start, occurred_at__lt=end)
    for group_key, occurred_at, value in rows.values_list("group_key", "occurred_at", "value"):
        totals[(group_key, interval_start_of(occurred_at, metric.interval_minutes))] += value or Decimal(0)
    return [(group_key, total) for (group_key, _), total in totals.items()]


def _highest_samples(
    *, customer: Customer, metric: BillableMetric, start: datetime, end: datetime, count: int
) -> list[tuple[str, Decimal, int, int]]:
    """(group key, sum, the group's number of interval rows in [start, end), rank) for the `count`
    highest interval sums of each group. On PostgreSQL each group's are taken by a top-N sort of its
    rows (LATERAL … ORDER BY value_sum DESC LIMIT), a few times faster than ranking every row."""
    if connection.vendor != "postgresql":
        ranked = (
            UsageIntervalRollup.objects.filter(
                customer=customer, metric=metric, interval_start__gte=start, interval_start__lt=end
            )
            .annotate(
                rank=Window(RowNumber(), partition_by=[F("group_key")], order_by=[F("value_sum").desc()]),
                in_window=Window(Count("id"), partition_by=[F("group_key")]),
            )
            .filter(rank__lte=count)
            .values_list("group_key", "value_sum", "in_window", "rank")
        )
        return list(ranked)
    table = UsageIntervalRollup._meta.db_table
    sql = f"""
        SELECT groups.group_key, highest.value_sum, groups.row_count,
               ROW_NUMBER() OVER (PARTITION BY groups.group_key ORDER BY highest.value_sum DESC)
        FROM (
            SELECT group_key, COUNT(*) AS row_count FROM {table}
            WHERE customer_id = %(customer)s AND metric_id = %(metric)s
              AND interval_start >= %(start)s AND interval_start < %(end)s
            GROUP BY group_key
        ) AS groups
        CROSS JOIN LATERAL (
            SELECT value_sum FROM {table} AS sample
            WHERE sample.customer_id = %(customer)s AND sample.metric_id = %(metric)s
              AND sample.group_key = groups.group_key
              AND sample.interval_start >= %(start)s AND sample.interval_start < %(end)s
            ORDER BY value_sum DESC
            LIMIT %(count)s
        ) AS highest
    """  # noqa: S608 - the table name is ours, values are parameters
    params: dict[str, Any] = {"customer": customer.pk, "metric": metric.pk, "start": start, "end": end, "count": count}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(group_key, total, row_count, rank) for group_key, total, row_count, rank in cursor.fetchall()]


@dataclass(frozen=True)
class UsageWindow:
    """One customer's use of one metric in [start, end): what `usage_aggregate_many` is asked for."""

    customer_id: int
    metric: BillableMetric
    start: datetime
    end: datetime


# Aggregations `usage_aggregate_many` does in one statement per source on PostgreSQL; percentiles and
# weighted sums are read in two and three statements for all windows (`_percentile_many`,
# `_weighted_sum_many`), latest values and unique counts in one (`_latest_many`, `_unique_count_many`).
def _aggregated(aggregation: str, count: Any, total: Any, highest: Any) -> Any:
    """The value a count, sum or max metric takes from a row's event count, value sum and highest value."""
    if aggregation == MetricAggregation.COUNT:
        return count
    return total if aggregation == MetricAggregation.SUM else highest


BULK_AGGREGATIONS = frozenset({MetricAggregation.COUNT, MetricAggregation.SUM, MetricAggregation.MAX})


def usage_aggregate_many(windows: list[UsageWindow]) -> list[dict[str, Decimal]]:
    """`usage_aggregate` of many windows at once, in their order, with the same results.

    The billing run asks this for every usage charge of a chunk of subscriptions: on PostgreSQL,
    count, sum and max metrics are read for all windows together — one statement over the hourly
    rollups and one over the raw events of the windows' partial hours — percentiles in two,
    weighted sums in three, latest values and unique counts in one each, instead of a few statements
    per window."""
    results: list[dict[str, Decimal]] = [{} for _ in windows]
    bulk: list[int] = []
    batched: dict[str, list[int]] = defaultdict(list)
    for index, window in enumerate(windows):
        if connection.vendor == "postgresql" and window.metric.aggregation in BULK_AGGREGATIONS:
            bulk.append(index)
        elif window.metric.aggregation in BATCHED_READS and (
            connection.vendor == "postgresql" or window.metric.aggregation in PORTABLE_BATCHED_READS
        ):
            batched[window.metric.aggregation].append(index)
        else:
            results[index] = usage_aggregate(
                customer=Customer(pk=window.customer_id), metric=window.metric, start=window.start, end=window.end
            )
    for aggregation, indexes in batched.items():
        for index, totals in BATCHED_READS[MetricAggregation(aggregation)](windows, indexes).items():
            results[index] = totals
    if not bulk:
        return results
    raw_spans, hour_spans = _window_spans(windows, bulk)
    parts: dict[int, list[tuple[str, Decimal | None, Decimal | None, Decimal | None]]] = {}
    sources: tuple[tuple[Source, list[tuple[int, datetime, datetime]]], ...] = (
        ("raw", raw_spans),
        ("rollup", hour_spans),
    )
    for source, spans in sources:
        for index, group_key, count, total, highest in _bulk_rows(source, windows, spans):
            parts.setdefault(index, []).append((group_key, count, total, highest))
    for index, rows in parts.items():
        aggregation = windows[index].metric.aggregation
        combined: dict[str, Decimal] = {}
        for group_key, count, total, highest in rows:
            value = _aggregated(aggregation, count, total, highest)
            if value is None:
                continue
            if aggregation == MetricAggregation.MAX:
                combined[group_key] = max(combined.get(group_key, value), value)
            else:
                combined[group_key] = combined.get(group_key, Decimal(0)) + value
        results[index] = combined
    return results


def _bulk_rows(
    source: Source, windows: list[UsageWindow], spans: list[tuple[int, datetime, datetime]]
) -> list[tuple[int, str, Decimal | None, Decimal | None, Decimal | None]]:
    """(window index, group key, count, sum, max) per window span and group, from raw events or rollups
    (rows of a sum over events whose values are all empty have a sum of None, as in `usage_aggregate`)."""
    if not spans:
        return []
    if source == "raw":
        table, at = UsageEvent._meta.db_table, "occurred_at"
        columns = "COUNT(u.id), SUM(u.value), MAX(u.value)"
    else:
        table, at = UsageRollup._meta.db_table, "hour"
        columns = "SUM(u.event_count), SUM(u.value_sum), MAX(u.value_max)"
    sql = f"""
        SELECT w.idx, u.group_key, {columns}
        FROM unnest(%s::integer[], %s::bigint[], %s::bigint[], %s::timestamptz[], %s::timestamptz[])
             AS w(idx, customer_id, metric_id, span_start, span_end)
        JOIN {table} u ON u.customer_id = w.customer_id AND u.metric_id = w.metric_id
                      AND u.{at} >= w.span_start AND u.{at} < w.span_end
        GROUP BY w.idx, u.group_key
    """  # noqa: S608 - table and column names are ours, values are parameters
    params: list[Any] = [
        [index for index, _, _ in spans],
        [windows[index].customer_id for index, _, _ in spans],
        [windows[index].metric.pk for index, _, _ in spans],
        [start for _, start, _ in spans],
        [end for _, _, end in spans],
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [
            (index, group_key, None if count is None else Decimal(count), total, highest)
            for index, group_key, count, total, highest in cursor.fetchall()
        ]


def _window_spans(
    windows: list[UsageWindow], indexes: list[int]
) -> tuple[list[tuple[int, datetime, datetime]], list[tuple[int, datetime, datetime]]]:
    """The parts of the windows at `indexes` that `usage_aggregate` reads from the raw events (the
    partial hours at either end, or the whole window inside one hour) and from the hourly tables (the
    whole hours between): two lists of (window index, start, end)."""
    raw: list[tuple[int, datetime, datetime]] = []
    hours: list[tuple[int, datetime, datetime]] = []
    for index in indexes:
        window = windows[index]
        start, end = clock.ensure_aware(window.start), clock.ensure_aware(window.end)
        if end <= start:
            continue
        first_hour, last_hour = _ceil_hour(start), hour_of(end)
        if first_hour >= last_hour:
            raw.append((index, start, end))
            continue
        hours.append((index, first_hour, last_hour))
        raw += [(index, a, b) for a, b in ((start, first_hour), (last_hour, end)) if a < b]
    return raw, hours


def _span_parameters(windows: list[UsageWindow], spans: list[tuple[int, datetime, datetime]]) -> list[list[Any]]:
    """The arrays `unnest(span, idx, customer_id, metric_id, span_start, span_end)` reads spans from."""
    return [
        list(range(len(spans))),
        [index for index, _, _ in spans],
        [windows[index].customer_id for index, _, _ in spans],
        [windows[index].metric.pk for index, _, _ in spans],
        [start for _, start, _ in spans],
        [end for _, _, end in spans],
    ]


SPANS = """unnest(%s::integer[], %s::integer[], %s::bigint[], %s::bigint[], %s::timestamptz[], %s::timestamptz[])
           AS s(span, idx, customer_id, metric_id, span_start, span_end)"""


def _span_rows(
    model: type[Any], at: str, windows: list[UsageWindow], spans: list[tuple[int, datetime, datetime]], *columns: str
) -> Iterator[tuple[int, int, datetime, tuple[Any, ...]]]:
    """(span number, window index, `at`, the `columns`) of every row of `model` inside a span — the
    batched reads' way on databases without `unnest` (SQLite): one statement for all the spans (their
    customers and metrics, from the earliest start to the latest end), each row then given to the
    spans it falls in."""
    if not spans:
        return
    by_key: dict[tuple[int, int], list[tuple[int, int, datetime, datetime]]] = defaultdict(list)
    for number, (index, start, end) in enumerate(spans):
        by_key[(windows[index].customer_id, windows[index].metric.pk)].append((number, index, start, end))
    rows = model.objects.filter(
        customer_id__in={customer_id for customer_id, _ in by_key},
        metric_id__in={metric_id for _, metric_id in by_key},
        **{f"{at}__gte": min(start for _, start, _ in spans), f"{at}__lt": max(end for _, _, end in spans)},
    ).values_list("customer_id", "metric_id", at, *columns)
    for customer_id, metric_id, moment, *values in rows:
        for number, index, start, end in by_key.get((customer_id, metric_id), ()):
            if start <= moment < end:
                yield number, index, moment, tuple(values)


def _latest_many(windows: list[UsageWindow], indexes: list[int]) -> dict[int, dict[str, Decimal]]:
    """`usage_aggregate` of the latest-value windows at `indexes`, in one statement for all of them on
    PostgreSQL: per span and group, the latest row of each part `_combine` reads — the latest event of
    every partial-hour span, and the rollup with the latest event of the whole hours — ranked by
    (time, event id) as `_latest_per_group` ranks them. As there, a part whose latest row has no value
    says nothing for its group (no fallback to an earlier row of the same part); the parts are then
    combined by the same rule, the latest (time, event id) wins."""
    raw, hours = _window_spans(windows, indexes)
    if connection.vendor != "postgresql":
        return _latest_by_span_rows(windows, indexes, raw, hours)
    latest: dict[int, dict[str, _Latest]] = defaultdict(dict)
    parts: list[str] = []
    params: list[Any] = []
    if raw:
        parts.append(
            f"""(SELECT DISTINCT ON (s.span, e.group_key) s.idx, e.group_key, e.occurred_at, e.id, e.value
                 FROM {SPANS}
                 JOIN {UsageEvent._meta.db_table} e ON e.customer_id = s.customer_id AND e.metric_id = s.metric_id
                  AND e.occurred_at >= s.span_start AND e.occurred_at < s.span_end
                 ORDER BY s.span, e.group_key, e.occurred_at DESC, e.id DESC)"""  # noqa: S608 - our table name
        )
        params += _span_parameters(windows, raw)
    if hours:
        parts.append(
            f"""(SELECT DISTINCT ON (s.span, r.group_key) s.idx, r.group_key, r.latest_at, r.latest_event_id,
                        r.latest_value
                 FROM {SPANS}
                 JOIN {UsageRollup._meta.db_table} r ON r.customer_id = s.customer_id AND r.metric_id = s.metric_id
                  AND r.hour >= s.span_start AND r.hour < s.span_end
                 ORDER BY s.span, r.group_key, r.latest_at DESC, r.latest_event_id DESC)"""  # noqa: S608
        )
        params += _span_parameters(windows, hours)
    if parts:
        with connection.cursor() as cursor:
            cursor.execute(" UNION ALL ".join(parts), params)
            for index, group_key, at, event_id, value in cursor.fetchall():
                if value is None:
                    continue
                current = latest[index].get(group_key)
                if current is None or (at, event_id) > (current.at, current.event_id):
                    latest[index][group_key] = _Latest(at, event_id, value)
    results: dict[int, dict[str, Decimal]] = {index: {} for index in indexes}
    for index, groups in latest.items():
        results[index] = {group_key: candidate.value for group_key, candidate in groups.items()}
    return results


def _latest_by_span_rows(
    windows: list[UsageWindow],
    indexes: list[int],
    raw: list[tuple[int, datetime, datetime]],
    hours: list[tuple[int, datetime, datetime]],
) -> dict[int, dict[str, Decimal]]:
    """`_latest_many` without `unnest`: the same parts and rules, each part's latest row found in Python."""
    parts: dict[tuple[str, int, str], tuple[datetime, int, Any]] = {}  # (source, span, group) → its latest row
    for number, _, at, (group_key, event_id, value) in _span_rows(UsageEvent, "occurred_at", windows, raw, "group_key",
                                                                   "id", "value"):  # fmt: skip
        current = parts.get(("raw", number, group_key))
        if current is None or (at, event_id) > current[:2]:
            parts[("raw", number, group_key)] = (at, event_id, value)
    for number, _, _, (group_key, at, event_id, value) in _span_rows(
        UsageRollup, "hour", windows, hours, "group_key", "latest_at", "latest_event_id", "latest_value"
    ):
        current = parts.get(("hours", number, group_key))
        if current is None or (at, event_id) > current[:2]:
            parts[("hours", number, group_key)] = (at, event_id, value)
    latest: dict[int, dict[str, _Latest]] = defaultdict(dict)
    for (source, number, group_key), (at, event_id, value) in parts.items():
        if value is None:
            continue
        index = (raw if source == "raw" else hours)[number][0]
        found = latest[index].get(group_key)
        if found is None or (at, event_id) > (found.at, found.event_id):
            latest[index][group_key] = _Latest(at, event_id, value)
    return {index: {group_key: found.value for group_key, found in latest[index].items()} for index in indexes}


def _unique_count_many(windows: list[UsageWindow], indexes: list[int]) -> dict[int, dict[str, Decimal]]:
    """`usage_aggregate` of the unique-count windows at `indexes`, in one statement for all of them on
    PostgreSQL: per window and group, the number of distinct values among its partial hours' events
    and its whole hours' distinct-value rows together (a value seen in both, or in several hours,
    counts once). Neither column is ever null, so `COUNT(DISTINCT …)` is the size of the set of values
    `_combine` builds."""
    raw, hours = _window_spans(windows, indexes)
    if connection.vendor != "postgresql":  # one statement per source, the sets made in Python
        values: dict[int, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        for _, index, _, (group_key, value) in _span_rows(
            UsageEvent, "occurred_at", windows, raw, "group_key", "distinct_value"
        ):
            values[index][group_key].add(value)
        for _, index, _, (group_key, value) in _span_rows(UsageDistinctValue, "hour", windows, hours, "group_key",
                                                           "value"):  # fmt: skip
            values[index][group_key].add(value)
        return {
            index: {group_key: Decimal(len(group_values)) for group_key, group_values in values[index].items()}
            for index in indexes
        }
    parts: list[str] = []
    params: list[Any] = []
    if raw:
        parts.append(
            f"""SELECT s.idx, e.group_key, e.distinct_value AS value FROM {SPANS}
                JOIN {UsageEvent._meta.db_table} e ON e.customer_id = s.customer_id AND e.metric_id = s.metric_id
                 AND e.occurred_at >= s.span_start AND e.occurred_at < s.span_end"""  # noqa: S608 - our table name
        )
        params += _span_parameters(windows, raw)
    if hours:
        parts.append(
            f"""SELECT s.idx, d.group_key, d.value FROM {SPANS}
                JOIN {UsageDistinctValue._meta.db_table} d ON d.customer_id = s.customer_id
                 AND d.metric_id = s.metric_id AND d.hour >= s.span_start AND d.hour < s.span_end"""  # noqa: S608
        )
        params += _span_parameters(windows, hours)
    results: dict[int, dict[str, Decimal]] = {index: {} for index in indexes}
    if parts:
        sql = f"SELECT idx, group_key, COUNT(DISTINCT value) FROM ({' UNION ALL '.join(parts)}) AS v GROUP BY idx, group_key"  # noqa: S608, E501
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for index, group_key, count in cursor.fetchall():
                results[index][group_key] = Decimal(count)
    return results


BATCHED_READS = {
    MetricAggregation.PERCENTILE: _percentile_many,
    MetricAggregation.WEIGHTED_SUM: _weighted_sum_many,
    MetricAggregation.LATEST: _latest_many,
    MetricAggregation.UNIQUE_COUNT: _unique_count_many,
}
# Those batched on every database (elsewhere than PostgreSQL one statement per source, see `_span_rows`).
PORTABLE_BATCHED_READS = frozenset({MetricAggregation.LATEST, MetricAggregation.UNIQUE_COUNT})


def usage_values_many(windows: list[UsageWindow]) -> list[dict[str, list[Decimal]]]:
    """Per window, in their order: each group's event values in [start, end), oldest first by
    (occurred_at, id), an empty value as 0 — what a percentage price prices, one transaction per event
    (`apps.billing.services.lines.usage_values` reads one group of one window). One statement for all
    windows."""
    results: list[dict[str, list[Decimal]]] = [{} for _ in windows]
    spans = []
    for index, window in enumerate(windows):
        start, end = clock.ensure_aware(window.start), clock.ensure_aware(window.end)
        if start < end:
            spans.append((index, start, end))
    if not spans:
        return results
    if connection.vendor != "postgresql":
        rows = sorted(
            (index, at, event_id, group_key, value)
            for _, index, at, (event_id, group_key, value) in _span_rows(
                UsageEvent, "occurred_at", windows, spans, "id", "group_key", "value"
            )
        )
        for index, _, _, group_key, value in rows:
            results[index].setdefault(group_key, []).append(value if value is not None else Decimal(0))
        return results
    sql = f"""
        SELECT s.idx, e.group_key, e.value FROM {SPANS}
        JOIN {UsageEvent._meta.db_table} e ON e.customer_id = s.customer_id AND e.metric_id = s.metric_id
         AND e.occurred_at >= s.span_start AND e.occurred_at < s.span_end
        ORDER BY s.idx, e.occurred_at, e.id
    """  # noqa: S608 - the table name is ours, values are parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, _span_parameters(windows, spans))
        for index, group_key, value in cursor.fetchall():
            results[index].setdefault(group_key, []).append(value if value is not None else Decimal(0))
    return results


@dataclass(frozen=True)
class MetricUsageSoFar:
    """A customer's use of one metric in a window, in total and day by day (UTC days)."""

    code: str
    name: str
    aggregation: str
    total: Decimal
    days: list[tuple[datetime, Decimal]]

    @property
    def peak(self) -> Decimal:
        return max((value for _, value in self.days), default=Decimal(0))


def usage_so_far_for_customer(
    *, customer: Customer, metric_codes: list[str], start: datetime, end: datetime
) -> list[MetricUsageSoFar]:
    """The customer's usage of each metric (in `metric_codes`' order) in [start, end): the window's
    aggregate (as billed: groups added up) and each day's, for a chart. Customer-scoped: only this
    customer's events count."""
    start, end = clock.ensure_aware(start), clock.ensure_aware(end)
    metrics = {metric.code: metric for metric in BillableMetric.objects.filter(code__in=metric_codes)}
    ordered = [metrics[code] for code in dict.fromkeys(metric_codes) if code in metrics]
    if end <= start or not ordered:
        return [MetricUsageSoFar(m.code, m.name, m.aggregation, Decimal(0), []) for m in ordered]
    day_starts: list[datetime] = []
    moment = start
    while moment < end:
        day_starts.append(moment)
        moment = (moment + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    windows: list[UsageWindow] = []
    for metric in ordered:
        windows.append(UsageWindow(customer_id=customer.pk, metric=metric, start=start, end=end))
        for index, day_start in enumerate(day_starts):
            day_end = day_starts[index + 1] if index + 1 < len(day_starts) else end
            windows.append(UsageWindow(customer_id=customer.pk, metric=metric, start=day_start, end=day_end))
    results = iter(usage_aggregate_many(windows))
    usage = []
    for metric in ordered:
        total = sum(next(results).values(), Decimal(0))
        days = [(day_start, sum(next(results).values(), Decimal(0))) for day_start in day_starts]
        usage.append(MetricUsageSoFar(metric.code, metric.name, metric.aggregation, total, days))
    return usage


@dataclass(frozen=True)
class PoolShare:
    """One subscription's part of a pool over a window: what it used, how much of that the pool covered,
    and what went beyond the pool (`used = from_pool + beyond_pool`)."""

    used: Decimal
    from_pool: Decimal
    beyond_pool: Decimal


def usage_pool_shares(
    *,
    customer_id: int,
    metric: BillableMetric,
    start: datetime,
    end: datetime,
    member_ids: list[int],
    pool: Decimal,
    consumed_from: datetime | None = None,
) -> dict[int, PoolShare]:
    """How a pool of `pool` units of a count or sum metric was consumed in [start, end) by the events of
    the subscriptions `member_ids` (each event names its subscription in `POOL_MEMBER_PROPERTY`).

    The pool is consumed in event order — (occurred_at, id), the order of `latest` — across the
    subscriptions: each event takes what is left of the pool, and the part of it that does not fit is
    beyond the pool, on the subscription that sent it. One statement: a running total over the
    window's events (a window function), summed per subscription; no event is loaded into Python.
    Subscriptions without events are absent.

    `consumed_from` (before `start`; the pool's period start) is where the pool starts being consumed:
    the events from then on use it up, and the shares are those of the events in [start, end) — the
    part of a period after a change inside it, whose pool the events before the change have partly
    used already."""
    start, end = clock.ensure_aware(start), clock.ensure_aware(end)
    if end <= start or not member_ids:
        return {}
    consumed_from = min(clock.ensure_aware(consumed_from), start) if consumed_from is not None else start
    amount: Any = (
        Value(Decimal(1), output_field=DecimalField(max_digits=38, decimal_places=6))
        if metric.aggregation == MetricAggregation.COUNT
        else Coalesce(F("value"), Value(Decimal(0)), output_field=DecimalField(max_digits=38, decimal_places=6))
    )
    events = (
        UsageEvent.objects.filter(
            customer_id=customer_id, metric=metric, occurred_at__gte=consumed_from, occurred_at__lt=end
        )
        .annotate(member=Cast(KT(f"properties__{POOL_MEMBER_PROPERTY}"), CharField()))
        .filter(member__in=[str(member_id) for member_id in member_ids])
        .annotate(amount=amount)
        .annotate(
            running=Window(Sum("amount"), order_by=[F("occurred_at").asc(), F("id").asc()], frame=RowRange(None, 0))
        )
        .order_by()
        .annotate(counted=Case(When(occurred_at__gte=start, then=Value(1)), default=Value(0)))
        .values_list("member", "amount", "running", "counted")
    )
    inner, params = events.query.sql_with_params()
    pool_sql = "CAST(%s AS NUMERIC)"
    # Per event: nothing beyond the pool while the running total stays within it; all of it when the
    # pool was used up before it; else the part above the pool. Events before `start` only use it up.
    sql = f"""
        SELECT e.member, ROUND(SUM(e.amount), 6),
               ROUND(SUM(CASE WHEN e.running <= {pool_sql} THEN 0
                              WHEN e.running - e.amount >= {pool_sql} THEN e.amount
                              ELSE e.running - {pool_sql} END), 6)
        FROM ({inner}) e
        WHERE e.counted = 1
        GROUP BY e.member
    """  # noqa: S608 - the inner statement is Django's, values are parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, [str(pool), str(pool), str(pool), *params])
        rows = cursor.fetchall()
    shares = {}
    for member, used, beyond in rows:
        used_amount, beyond_amount = Decimal(str(used)), Decimal(str(beyond))
        shares[int(member)] = PoolShare(used_amount, used_amount - beyond_amount, beyond_amount)
    return shares


PEAK, OFF_PEAK = "peak", "off_peak"


def usage_aggregate_by_hours(
    *, customer: Customer, metric: BillableMetric, start: datetime, end: datetime, time_zone: str, hours: frozenset[int]
) -> dict[str, Decimal]:
    """A count, sum or max metric's aggregate over the customer's events in [start, end), split by the
    hour of the day in `time_zone`: {"peak": in `hours` (local hours 0–23), "off_peak": the others}
    (a side without events is absent).

    Read like `usage_aggregate`: the hourly rollups of the window's whole hours, each counted in the
    local hour it starts in, and the raw events of the partial hours at either end — so a peak window
    of whole local hours is exact. In a time zone whose UTC offset is not a whole number of hours
    (Asia/Kolkata, +05:30) an hourly rollup straddles two local hours: the whole window is then read
    from the raw events, still in SQL."""
    start, end = clock.ensure_aware(start), clock.ensure_aware(end)
    if end <= start:
        return {}
    zone = ZoneInfo(time_zone)
    aggregation = MetricAggregation(metric.aggregation)
    if aggregation not in (MetricAggregation.COUNT, MetricAggregation.SUM, MetricAggregation.MAX):
        raise ValueError(f"a {aggregation} metric cannot be split by the hour of the day")
    first_hour, last_hour = _ceil_hour(start), hour_of(end)
    whole_hours = all(
        (moment.astimezone(zone).utcoffset() or timedelta(0)).total_seconds() % 3600 == 0
        for moment in (start, end - timedelta(microseconds=1))
    )
    use_rollups = whole_hours and first_hour < last_hour
    raw_spans = [(start, first_hour), (last_hour, end)] if use_rollups else [(start, end)]
    peak_hours = sorted(hours)
    parts: list[tuple[Any, Any]] = []
    events = UsageEvent.objects.filter(customer=customer, metric=metric)
    for span_start, span_end in raw_spans:
        if span_start >= span_end:
            continue
        expression: Any = {
            MetricAggregation.COUNT: lambda q: Count("id", filter=q),
            MetricAggregation.SUM: lambda q: Sum("value", filter=q),
            MetricAggregation.MAX: lambda q: Max("value", filter=q),
        }[aggregation]
        parts.append(_split_by_hours(events.filter(occurred_at__gte=span_start, occurred_at__lt=span_end),
                                     "occurred_at", zone, peak_hours, expression))  # fmt: skip
    if use_rollups:
        rollup_expression: Any = {
            MetricAggregation.COUNT: lambda q: Sum("event_count", filter=q),
            MetricAggregation.SUM: lambda q: Sum("value_sum", filter=q),
            MetricAggregation.MAX: lambda q: Max("value_max", filter=q),
        }[aggregation]
        rollups = UsageRollup.objects.filter(customer=customer, metric=metric, hour__gte=first_hour, hour__lt=last_hour)
        parts.append(_split_by_hours(rollups, "hour", zone, peak_hours, rollup_expression))
    result: dict[str, Decimal] = {}
    for part in parts:
        for side, value in zip((PEAK, OFF_PEAK), part, strict=True):
            if value is None:
                continue
            value = Decimal(value)
            if side not in result:
                result[side] = value
            elif aggregation == MetricAggregation.MAX:
                result[side] = max(result[side], value)
            else:
                result[side] += value
    return result


@dataclass(frozen=True)
class HoursWindow:
    """One customer's use of one metric in [start, end), split by the local hour of the day in
    `time_zone` (`hours`: the peak hours): what `usage_aggregate_by_hours_many` is asked for."""

    customer_id: int
    metric: BillableMetric
    start: datetime
    end: datetime
    time_zone: str
    hours: frozenset[int]


def usage_aggregate_by_hours_many(windows: list[HoursWindow]) -> list[dict[str, Decimal]]:
    """`usage_aggregate_by_hours` of many windows at once, in their order, with the same results. On
    PostgreSQL in two statements for all of them (the raw events of the partial hours, or of the whole
    window in a time zone with a half-hour offset; the hourly rollups of the whole hours), each row
    counted on the peak side when its local hour is in the window's peak hours; elsewhere window by
    window."""
    if connection.vendor != "postgresql":
        return [
            usage_aggregate_by_hours(
                customer=Customer(pk=window.customer_id),
                metric=window.metric,
                start=window.start,
                end=window.end,
                time_zone=window.time_zone,
                hours=window.hours,
            )  # fmt: skip
            for window in windows
        ]
    results: list[dict[str, Decimal]] = [{} for _ in windows]
    raw: list[tuple[int, datetime, datetime]] = []
    hourly: list[tuple[int, datetime, datetime]] = []
    counted_raw: set[int] = set()  # count windows with a raw span: Count is 0, never empty, on both sides
    for index, window in enumerate(windows):
        start, end = clock.ensure_aware(window.start), clock.ensure_aware(window.end)
        if end <= start:
            continue
        aggregation = MetricAggregation(window.metric.aggregation)
        if aggregation not in (MetricAggregation.COUNT, MetricAggregation.SUM, MetricAggregation.MAX):
            raise ValueError(f"a {aggregation} metric cannot be split by the hour of the day")
        zone = ZoneInfo(window.time_zone)
        first_hour, last_hour = _ceil_hour(start), hour_of(end)
        whole_hours = all(
            (moment.astimezone(zone).utcoffset() or timedelta(0)).total_seconds() % 3600 == 0
            for moment in (start, end - timedelta(microseconds=1))
        )
        use_rollups = whole_hours and first_hour < last_hour
        window_spans = [(start, first_hour), (last_hour, end)] if use_rollups else [(start, end)]
        for span_start, span_end in window_spans:
            if span_start < span_end:
                raw.append((index, span_start, span_end))
                if aggregation == MetricAggregation.COUNT:
                    counted_raw.add(index)
        if use_rollups:
            hourly.append((index, first_hour, last_hour))
    sources = (
        (raw, UsageEvent._meta.db_table, "occurred_at", "COUNT(u.id)", "SUM(u.value)", "MAX(u.value)"),
        (hourly, UsageRollup._meta.db_table, "hour", "SUM(u.event_count)", "SUM(u.value_sum)", "MAX(u.value_max)"),
    )
    with connection.cursor() as cursor:
        for spans, table, at, count, total, highest in sources:
            if not spans:
                continue
            cursor.execute(
                f"""
                SELECT s.idx, p.peak, {count}, {total}, {highest}
                FROM unnest(%s::integer[], %s::bigint[], %s::bigint[], %s::timestamptz[], %s::timestamptz[],
                            %s::text[], %s::integer[])
                     AS s(idx, customer_id, metric_id, span_start, span_end, time_zone, peak_mask)
                JOIN {table} u ON u.customer_id = s.customer_id AND u.metric_id = s.metric_id
                              AND u.{at} >= s.span_start AND u.{at} < s.span_end
                CROSS JOIN LATERAL (
                    SELECT (s.peak_mask >> CAST(EXTRACT(HOUR FROM u.{at} AT TIME ZONE s.time_zone) AS integer)) & 1 = 1
                ) AS p(peak)
                GROUP BY s.idx, p.peak
                """,  # noqa: S608 - table and column names are ours, values are parameters
                [
                    [index for index, _, _ in spans],
                    [windows[index].customer_id for index, _, _ in spans],
                    [windows[index].metric.pk for index, _, _ in spans],
                    [span_start for _, span_start, _ in spans],
                    [span_end for _, _, span_end in spans],
                    [windows[index].time_zone for index, _, _ in spans],
                    [sum(1 << hour for hour in windows[index].hours) for index, _, _ in spans],
                ],
            )
            for index, peak, count_value, total_value, highest_value in cursor.fetchall():
                aggregation = windows[index].metric.aggregation
                value = _aggregated(aggregation, count_value, total_value, highest_value)
                if value is None:
                    continue
                value, side, result = Decimal(value), PEAK if peak else OFF_PEAK, results[index]
                if side not in result:
                    result[side] = value
                elif aggregation == MetricAggregation.MAX:
                    result[side] = max(result[side], value)
                else:
                    result[side] += value
    for index in counted_raw:
        for side in (PEAK, OFF_PEAK):
            results[index].setdefault(side, Decimal(0))
    return results


def _split_by_hours(queryset: QuerySet[Any], at: str, zone: ZoneInfo, peak_hours: list[int], expression: Any) -> Any:
    """(aggregate in the peak hours, aggregate in the others) of `queryset`, by the local hour of `at`."""
    in_peak = Q(local_hour__in=peak_hours)
    row = (
        queryset.order_by()
        .annotate(local_hour=ExtractHour(at, tzinfo=zone))
        .aggregate(peak=expression(in_peak), off_peak=expression(~in_peak))
    )
    return row["peak"], row["off_peak"]
