"""Usage per day, for people: what the admin charts show."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Max, Sum
from django.db.models.functions import TruncDate

from apps.accounts.models import Customer
from apps.catalog.models import BillableMetric

from .models import UsageRollup
from .selectors import usage_aggregate

ROLLED_UP = {"count": ("event_count", Sum), "sum": ("value_sum", Sum), "max": ("value_max", Max)}


@dataclass(frozen=True)
class DailyUsage:
    metric: BillableMetric
    days: list[tuple[datetime, Decimal]]  # (day start, aggregate over all groups) oldest first

    @property
    def peak(self) -> Decimal:
        return max((value for _, value in self.days), default=Decimal(0))


def usage_daily(*, customer: Customer, now: datetime, days: int = 30) -> list[DailyUsage]:
    """The customer's usage per metric and UTC day over the last `days` days (today included)."""
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    first = today - timedelta(days=days - 1)
    day_starts = [first + timedelta(days=n) for n in range(days)]
    metric_ids = UsageRollup.objects.filter(customer=customer, hour__gte=first).values("metric_id").distinct()
    result = []
    for metric in BillableMetric.objects.filter(pk__in=metric_ids).order_by("code"):
        if metric.aggregation in ROLLED_UP:
            column, function = ROLLED_UP[metric.aggregation]
            rows = (
                UsageRollup.objects.filter(customer=customer, metric=metric, hour__gte=first)
                .annotate(day=TruncDate("hour"))
                .values("day")
                .annotate(value=function(column))
            )
            by_day = {row["day"]: Decimal(row["value"] or 0) for row in rows}
            values = [by_day.get(day.date(), Decimal(0)) for day in day_starts]
        else:
            values = []
            for day in day_starts:
                groups = usage_aggregate(customer=customer, metric=metric, start=day, end=day + timedelta(days=1))
                values.append(sum(groups.values(), Decimal(0)))
        result.append(DailyUsage(metric=metric, days=list(zip(day_starts, values, strict=True))))
    return result
