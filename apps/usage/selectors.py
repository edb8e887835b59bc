"""Usage aggregation: how much of a metric a customer used in a window [start, end).

Windows are half-open: an event at exactly `end` belongs to the next window. The rollup source reads
hourly rollups for the whole hours of the window and raw events for the partial hours at either end,
so any window gives the same result from either source (tested with random event streams).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from django.db.models import Aggregate, Count, F, Max, QuerySet, Sum, Window
from django.db.models.functions import RowNumber

from apps.accounts.models import Customer
from apps.catalog.constants import MetricAggregation
from apps.catalog.models import BillableMetric
from apps.core import clock

from .models import UsageDistinctValue, UsageEvent, UsageRollup
from .services import hour_of

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
