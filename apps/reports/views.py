"""The finance dashboard (the admin's landing page) and the CSV export of each of its reports."""

import csv
from decimal import Decimal

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from apps.core.money import quantize_amount

from . import charts
from .forms import ReportFilterForm
from .selectors import ReportFilters, aging_report, cash_report, last_refresh, mrr_report, revenue_report

PERMISSION = "reports.view_finance_reports"
EXPORTS = {
    "mrr": "MRR and movements",
    "cash": "Invoiced and collected",
    "aging": "Receivables aging",
    "revenue": "Revenue recognition",
}

COLORS = {
    "mrr": "#2563eb",
    "new": "#16a34a",
    "expansion": "#86efac",
    "reactivation": "#0ea5e9",
    "contraction": "#f59e0b",
    "churn": "#dc2626",
    "invoiced": "#6366f1",
    "collected": "#10b981",
    "credited": "#f43f5e",
    "recognized": "#2563eb",
    "deferred": "#f59e0b",
    "aging": "#64748b",
}
AGING_COLORS = ["#10b981", "#facc15", "#fb923c", "#f97316", "#dc2626"]


def _month_labels(months) -> list[str]:
    """ "Jan" under each bar, the year under the first month and every January."""
    return [
        month.strftime("%b\n%Y") if index == 0 or month.month == 1 else month.strftime("%b")
        for index, month in enumerate(months)
    ]


def _money(amount: Decimal | None, currency: str) -> str:
    return "" if amount is None else str(quantize_amount(Decimal(amount), currency))


def _shown(amount: Decimal | None, currency: str) -> str:
    """An amount as the dashboard shows it: thousands separators, the currency's decimals."""
    return "–" if amount is None else f"{quantize_amount(Decimal(amount), currency):,}"


def _percent(value: Decimal | None) -> str:
    return "–" if value is None else f"{value:.1f} %"


def _month_name(month) -> str:
    return month.strftime("%b %Y")


def finance_dashboard(request: HttpRequest) -> TemplateResponse:
    """The admin index: the finance dashboard for staff who may read it, then the admin's app list."""
    site = admin.site
    context = {
        **site.each_context(request),
        "title": "Finance dashboard",
        "subtitle": None,
        "app_list": site.get_app_list(request),
        "can_view_reports": request.user.has_perm(PERMISSION),
    }
    if context["can_view_reports"]:
        form = ReportFilterForm(request.GET or None)
        context["form"] = form
        if not request.GET or form.is_valid():
            if not request.GET:
                form = ReportFilterForm({})
                form.is_valid()
                context["form"] = form
            filters = form.filters()
            # Show the months and currency the figures are for (the defaults filled in).
            form.data = form.data.copy()
            form.data.update(
                {
                    "currency": filters.currency,
                    "first_month": f"{filters.first_month:%Y-%m}",
                    "last_month": f"{filters.last_month:%Y-%m}",
                }
            )
            context.update(_dashboard(filters, request))
    request.current_app = site.name
    return TemplateResponse(request, "reports/dashboard.html", context)


def _dashboard(filters: ReportFilters, request: HttpRequest) -> dict:
    currency = filters.currency
    labels = _month_labels(filters.months)
    mrr_rows = mrr_report(filters)
    cash_rows = cash_report(filters)
    revenue_rows = revenue_report(filters)
    aging = aging_report(filters)
    latest = mrr_rows[-1]
    query = request.GET.urlencode()
    exports = {key: f"{reverse('reports-export', args=[key])}{'?' + query if query else ''}" for key in EXPORTS}
    return {
        "filters": filters,
        "currency": currency,
        "refresh": last_refresh(),
        "exports": exports,
        "kpis": {
            "mrr": latest.mrr,
            "arr": latest.arr,
            "customers": latest.customers,
            "arpa": latest.arpa(currency),
            "logo_churn": latest.logo_churn,
            "revenue_churn": latest.revenue_churn,
            "nrr": latest.net_revenue_retention,
            "deferred": revenue_rows[-1].deferred,
            "month": latest.month,
            "net_new": latest.movements.net,
        },
        "aging": aging,
        "mrr_table": charts.table(
            caption="MRR per month",
            headers=["Month", "MRR", "ARR", "Customers", "ARPA", "Logo churn", "Revenue churn", "NRR"],
            rows=[
                [
                    _month_name(row.month),
                    _shown(row.mrr, currency),
                    _shown(row.arr, currency),
                    str(row.customers),
                    _shown(row.arpa(currency), currency),
                    _percent(row.logo_churn),
                    _percent(row.revenue_churn),
                    _percent(row.net_revenue_retention),
                ]  # fmt: skip
                for row in mrr_rows
            ],
        ),
        "movements_table": charts.table(
            caption="MRR movements per month",
            headers=[
                "Month",
                "New",
                "Expansion",
                "Reactivation",
                "Contraction",
                "Churn",
                "Net new",
                "New / reactivated / churned customers",
            ],  # fmt: skip
            rows=[
                [
                    _month_name(row.month),
                    _shown(m.new, currency),
                    _shown(m.expansion, currency),
                    _shown(m.reactivation, currency),
                    _shown(m.contraction, currency),
                    _shown(m.churn, currency),
                    _shown(m.net, currency),
                    f"{m.new_customers} / {m.reactivated_customers} / {m.churned_customers}",
                ]  # fmt: skip
                for row in mrr_rows
                for m in (row.movements,)
            ],
        ),
        "cash_table": charts.table(
            caption="Invoiced and collected per month",
            headers=["Month", "Invoiced", "Invoices", "Credited", "Collected", "Payments", "Refunded"],
            rows=[
                [
                    _month_name(row.month),
                    _shown(row.invoiced, currency),
                    str(row.invoice_count),
                    _shown(row.credited, currency),
                    _shown(row.collected, currency),
                    str(row.collected_count),
                    _shown(row.refunded, currency),
                ]  # fmt: skip
                for row in cash_rows
            ],
        ),
        "revenue_table": charts.table(
            caption="Recognized and deferred revenue per month",
            headers=["Month", "Recognized", "Deferred at month end"],
            rows=[
                [_month_name(row.month), _shown(row.recognized, currency), _shown(row.deferred, currency)]
                for row in revenue_rows
            ],
        ),
        "aging_table": charts.table(
            caption="Receivables by days past due",
            headers=["Days past due", "Amount due", "Invoices"],
            rows=[[label, _shown(amount, currency), str(count)] for _, label, amount, count in aging.buckets],
        ),
        "mrr_chart": charts.chart(
            title=f"MRR per month, {currency}",
            labels=labels,
            series=[charts.Series("MRR", [row.mrr for row in mrr_rows], COLORS["mrr"], kind="line")],
        ),
        "movements_chart": charts.chart(
            title=f"MRR movements per month, {currency}",
            labels=labels,
            stacked=True,
            series=[
                charts.Series("New", [row.movements.new for row in mrr_rows], COLORS["new"]),
                charts.Series("Expansion", [row.movements.expansion for row in mrr_rows], COLORS["expansion"]),
                charts.Series("Reactivation", [row.movements.reactivation for row in mrr_rows], COLORS["reactivation"]),
                charts.Series("Contraction", [-row.movements.contraction for row in mrr_rows], COLORS["contraction"]),
                charts.Series("Churn", [-row.movements.churn for row in mrr_rows], COLORS["churn"]),
                charts.Series("Net new MRR", [row.movements.net for row in mrr_rows], "#111827", kind="line"),
            ],
        ),
        "cash_chart": charts.chart(
            title=f"Invoiced and collected per month, {currency}",
            labels=labels,
            series=[
                charts.Series("Invoiced", [row.invoiced for row in cash_rows], COLORS["invoiced"]),
                charts.Series("Collected", [row.collected for row in cash_rows], COLORS["collected"]),
                charts.Series("Credited", [row.credited for row in cash_rows], COLORS["credited"]),
                charts.Series("Refunded", [row.refunded for row in cash_rows], "#a855f7"),
            ],
        ),
        "revenue_chart": charts.chart(
            title=f"Recognized revenue and deferred balance, {currency}",
            labels=labels,
            series=[
                charts.Series("Recognized", [row.recognized for row in revenue_rows], COLORS["recognized"]),
                charts.Series(
                    "Deferred at month end", [row.deferred for row in revenue_rows], COLORS["deferred"], kind="line"
                ),
            ],
        ),
        "aging_chart": charts.chart(
            title=f"Receivables by days past due, {currency}",
            labels=[label.replace(" (not yet due)", "") for _, label, _, _ in aging.buckets],
            stacked=True,
            legend=False,
            series=[
                charts.Series(
                    label,
                    [amount if position == index else Decimal(0) for position in range(len(aging.buckets))],
                    AGING_COLORS[index],
                )
                for index, (_, label, amount, _) in enumerate(aging.buckets)
            ],
        ),
    }


def report_export(request: HttpRequest, report: str) -> HttpResponse:
    """One report as CSV, for the same filters as the dashboard (amounts to the currency's minor unit)."""
    if report not in EXPORTS:
        raise Http404("No such report.")
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    form = ReportFilterForm(request.GET)
    if not form.is_valid():
        return HttpResponse(
            "\n".join(f"{field}: {' '.join(errors)}" for field, errors in form.errors.items()),
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    filters = form.filters()
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"{report}-{filters.currency}-{filters.first_month:%Y-%m}-{filters.last_month:%Y-%m}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    for row in EXPORT_WRITERS[report](filters):
        writer.writerow(row)
    return response


def _rate(value: Decimal | None) -> str:
    return "" if value is None else str(value)


def _scope_names(filters: ReportFilters) -> list[str]:
    return [
        filters.product.code if filters.product else (filters.plan.product.code if filters.plan else "all"),
        filters.plan.code if filters.plan else "all",
    ]


def _export_mrr(filters: ReportFilters):
    c = filters.currency
    yield [
        "month", "currency", "product", "plan", "mrr", "arr", "customers", "arpa", "new_mrr", "expansion_mrr",
        "reactivation_mrr", "contraction_mrr", "churned_mrr", "net_new_mrr", "new_customers",
        "reactivated_customers", "churned_customers", "logo_churn_percent", "revenue_churn_percent",
        "net_revenue_retention_percent",
    ]  # fmt: skip
    for row in mrr_report(filters):
        m = row.movements
        yield [
            f"{row.month:%Y-%m}", c, *_scope_names(filters), _money(row.mrr, c), _money(row.arr, c), row.customers,
            _money(row.arpa(c), c), _money(m.new, c), _money(m.expansion, c), _money(m.reactivation, c),
            _money(m.contraction, c), _money(m.churn, c), _money(m.net, c), m.new_customers,
            m.reactivated_customers, m.churned_customers, _rate(row.logo_churn), _rate(row.revenue_churn),
            _rate(row.net_revenue_retention),
        ]  # fmt: skip


def _export_cash(filters: ReportFilters):
    c = filters.currency
    yield ["month", "currency", "invoiced", "invoice_count", "credited", "collected", "payment_count", "refunded"]
    for row in cash_report(filters):
        yield [
            f"{row.month:%Y-%m}", c, _money(row.invoiced, c), row.invoice_count, _money(row.credited, c),
            _money(row.collected, c), row.collected_count, _money(row.refunded, c),
        ]  # fmt: skip


def _export_aging(filters: ReportFilters):
    c = filters.currency
    report = aging_report(filters)
    yield ["as_of", "currency", "bucket", "amount_due", "invoice_count"]
    for key, _, amount, count in report.buckets:
        yield [report.as_of.isoformat() if report.as_of else "", c, key, _money(amount, c), count]


def _export_revenue(filters: ReportFilters):
    c = filters.currency
    yield ["month", "currency", "product", "plan", "recognized", "deferred_at_month_end"]
    for row in revenue_report(filters):
        yield [f"{row.month:%Y-%m}", c, *_scope_names(filters), _money(row.recognized, c), _money(row.deferred, c)]


EXPORT_WRITERS = {"mrr": _export_mrr, "cash": _export_cash, "aging": _export_aging, "revenue": _export_revenue}
