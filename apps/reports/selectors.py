"""Reads behind the finance dashboard and its CSV exports: only the summary tables, a handful of
small indexed queries whatever the size of the billing history."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db.models import Sum

from apps.catalog.models import Plan, Product

from . import metrics
from .constants import ReportScope
from .models import CashMonth, MrrMonth, ReceivablesAging, ReportRefresh, RevenueMonth

ZERO = Decimal(0)


@dataclass(frozen=True)
class ReportFilters:
    currency: str
    first_month: date
    last_month: date
    product: Product | None = None
    plan: Plan | None = None

    @property
    def scope(self) -> tuple[str, int]:
        if self.plan is not None:
            return ReportScope.PLAN, self.plan.pk
        if self.product is not None:
            return ReportScope.PRODUCT, self.product.pk
        return ReportScope.ALL, 0

    @property
    def months(self) -> list[date]:
        return list(metrics.months_between(self.first_month, self.last_month))


@dataclass
class MrrRow:
    month: date
    mrr: Decimal
    customers: int
    movements: metrics.Movements

    @property
    def arr(self) -> Decimal:
        return self.mrr * 12

    @property
    def logo_churn(self) -> Decimal | None:
        return metrics.logo_churn_rate(self.movements)

    @property
    def revenue_churn(self) -> Decimal | None:
        return metrics.revenue_churn_rate(self.movements)

    @property
    def net_revenue_retention(self) -> Decimal | None:
        return metrics.net_revenue_retention(self.movements)

    def arpa(self, currency: str) -> Decimal | None:
        return metrics.arpa(self.mrr, self.customers, currency=currency)


def mrr_report(filters: ReportFilters) -> list[MrrRow]:
    """MRR, customers and movements per month of the period, for the filters' scope."""
    scope, scope_id = filters.scope
    stored = {
        row.month: row
        for row in MrrMonth.objects.filter(
            scope=scope,
            scope_id=scope_id,
            currency=filters.currency,
            month__gte=filters.first_month,
            month__lte=filters.last_month,
        )
    }
    # A month without a stored row had no MRR in this scope (before its first subscription, or after
    # the last refresh when the period reaches into the future).
    rows = []
    for month in filters.months:
        found = stored.get(month)
        if found is None:
            rows.append(MrrRow(month, ZERO, 0, metrics.Movements()))
            continue
        rows.append(
            MrrRow(
                month=month,
                mrr=found.mrr,
                customers=found.customers,
                movements=metrics.Movements(
                    start_mrr=found.start_mrr,
                    end_mrr=found.mrr,
                    new=found.new_mrr,
                    expansion=found.expansion_mrr,
                    contraction=found.contraction_mrr,
                    churn=found.churned_mrr,
                    reactivation=found.reactivation_mrr,
                    start_customers=found.start_customers,
                    end_customers=found.customers,
                    new_customers=found.new_customers,
                    churned_customers=found.churned_customers,
                    reactivated_customers=found.reactivated_customers,
                ),
            )
        )
    return rows


@dataclass
class CashRow:
    month: date
    invoiced: Decimal = ZERO
    invoice_count: int = 0
    credited: Decimal = ZERO
    collected: Decimal = ZERO
    collected_count: int = 0
    refunded: Decimal = ZERO


def cash_report(filters: ReportFilters) -> list[CashRow]:
    """Invoiced, credited and collected per month (a customer's money: not split by product or plan)."""
    stored = {
        row.month: row
        for row in CashMonth.objects.filter(
            currency=filters.currency, month__gte=filters.first_month, month__lte=filters.last_month
        )
    }
    rows = []
    for month in filters.months:
        found = stored.get(month)
        rows.append(
            CashRow(month)
            if found is None
            else CashRow(
                month,
                found.invoiced,
                found.invoice_count,
                found.credited,
                found.collected,
                found.collected_count,
                found.refunded,
            )
        )
    return rows


@dataclass
class RevenueRow:
    month: date
    recognized: Decimal = ZERO
    deferred: Decimal = ZERO


def revenue_report(filters: ReportFilters) -> list[RevenueRow]:
    """Recognized revenue per month and the deferred balance at each month end."""
    rows = RevenueMonth.objects.filter(
        currency=filters.currency, month__gte=filters.first_month, month__lte=filters.last_month
    )
    if filters.plan is not None:
        rows = rows.filter(plan=filters.plan)
    elif filters.product is not None:
        rows = rows.filter(product=filters.product)
    sums = {
        month: (recognized, deferred)
        for month, recognized, deferred in rows.values("month")
        .annotate(recognized=Sum("recognized"), deferred=Sum("deferred"))
        .values_list("month", "recognized", "deferred")
    }
    return [RevenueRow(month, *(Decimal(v) for v in sums.get(month, (ZERO, ZERO)))) for month in filters.months]


@dataclass
class AgingReport:
    as_of: date | None
    buckets: list[tuple[str, str, Decimal, int]] = field(default_factory=list)  # key, label, amount, count

    @property
    def total(self) -> Decimal:
        return sum((amount for _, _, amount, _ in self.buckets), ZERO)

    @property
    def invoice_count(self) -> int:
        return sum(count for _, _, _, count in self.buckets)


def aging_report(filters: ReportFilters) -> AgingReport:
    """Open invoices' amounts due by days past due, as of the last refresh."""
    stored = {row.bucket: row for row in ReceivablesAging.objects.filter(currency=filters.currency)}
    as_of = next((row.as_of for row in stored.values()), None)
    buckets = []
    for key in metrics.AGING_BUCKETS:
        row = stored.get(key)
        buckets.append(
            (key, metrics.AGING_LABELS[key], row.amount_due if row else ZERO, row.invoice_count if row else 0)
        )
    return AgingReport(as_of=as_of, buckets=buckets)


def report_currencies() -> list[str]:
    """Currencies with figures, the one with the most MRR first."""
    mrr_by_currency: dict[str, Decimal] = defaultdict(Decimal)
    latest = MrrMonth.objects.filter(scope=ReportScope.ALL).order_by("-month").values_list("month", flat=True).first()
    for currency, mrr in MrrMonth.objects.filter(scope=ReportScope.ALL, month=latest).values_list("currency", "mrr"):
        mrr_by_currency[currency] += mrr
    for currency in CashMonth.objects.values_list("currency", flat=True).distinct():
        mrr_by_currency.setdefault(currency, ZERO)
    return sorted(mrr_by_currency, key=lambda currency: (-mrr_by_currency[currency], currency))


def earliest_month(currency: str) -> date | None:
    """The first month with any figure in this currency."""
    months = [
        MrrMonth.objects.filter(currency=currency, scope=ReportScope.ALL)
        .order_by("month")
        .values_list("month", flat=True)
        .first(),
        CashMonth.objects.filter(currency=currency).order_by("month").values_list("month", flat=True).first(),
    ]
    found = [month for month in months if month is not None]
    return min(found) if found else None


def last_refresh() -> ReportRefresh | None:
    return ReportRefresh.objects.order_by("-started_at", "-id").first()
