"""The finance dashboard (the admin's landing page) and the CSV export of each of its reports."""

import csv
from decimal import Decimal

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from apps.core.money import quantize_amount

from . import charts
from .forms import ReportFilterForm
from .selectors import ReportFilters, aging_report, cash_report, last_refresh, mrr_report, revenue_report

PERMISSION = "reports.view_finance_reports"
EXPORTS = {
    "mrr": gettext_lazy("MRR and movements"),
    "cash": gettext_lazy("Invoiced and collected"),
    "aging": gettext_lazy("Receivables aging"),
    "revenue": gettext_lazy("Revenue recognition"),
}
# Receivables aging buckets as the dashboard names them (in the chart: without "(not yet due)").
AGING_LABELS = {
    "current": (gettext_lazy("Current (not yet due)"), gettext_lazy("Current")),
    "1_30": (gettext_lazy("1–30 days"), gettext_lazy("1–30 days")),
    "31_60": (gettext_lazy("31–60 days"), gettext_lazy("31–60 days")),
    "61_90": (gettext_lazy("61–90 days"), gettext_lazy("61–90 days")),
    "90_plus": (gettext_lazy("90+ days"), gettext_lazy("90+ days")),
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


def _chinese() -> bool:
    return (get_language() or "").lower().startswith("zh")


def _month_labels(months) -> list[str]:
    """ "Jan" under each bar, the year under the first month and every January ("1月", "2026年" in Chinese)."""
    if _chinese():
        return [
            f"{month.month}月\n{month.year}年" if index == 0 or month.month == 1 else f"{month.month}月"
            for index, month in enumerate(months)
        ]
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
    """ "Jan 2026"; "2026年1月" in Chinese."""
    return f"{month.year}年{month.month}月" if _chinese() else month.strftime("%b %Y")


def finance_dashboard(request: HttpRequest) -> TemplateResponse:
    """The admin index: the finance dashboard for staff who may read it, then the admin's app list."""
    site = admin.site
    context = {
        **site.each_context(request),
        "title": _("Finance dashboard"),
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
            caption=_("MRR per month"),
            headers=[_("Month"), "MRR", "ARR", _("Customers"), "ARPA", _("Logo churn"), _("Revenue churn"), "NRR"],
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
            caption=_("MRR movements per month"),
            headers=[
                _("Month"),
                _("New"),
                _("Expansion"),
                _("Reactivation"),
                _("Contraction"),
                _("Churn"),
                _("Net new"),
                _("New / reactivated / churned customers"),
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
            caption=_("Invoiced and collected per month"),
            headers=[
                _("Month"),
                _("Invoiced"),
                _("Invoices"),
                _("Credited"),
                _("Collected"),
                _("Payments"),
                _("Refunded"),
            ],
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
            caption=_("Recognized and deferred revenue per month"),
            headers=[_("Month"), _("Recognized"), _("Deferred at month end")],
            rows=[
                [_month_name(row.month), _shown(row.recognized, currency), _shown(row.deferred, currency)]
                for row in revenue_rows
            ],
        ),
        "aging_table": charts.table(
            caption=_("Receivables by days past due"),
            headers=[_("Days past due"), _("Amount due"), _("Invoices")],
            rows=[
                [str(AGING_LABELS[key][0]), _shown(amount, currency), str(count)]
                for key, _label, amount, count in aging.buckets
            ],
        ),
        "mrr_chart": charts.chart(
            title=_("MRR per month, %(currency)s") % {"currency": currency},
            labels=labels,
            series=[charts.Series("MRR", [row.mrr for row in mrr_rows], COLORS["mrr"], kind="line")],
        ),
        "movements_chart": charts.chart(
            title=_("MRR movements per month, %(currency)s") % {"currency": currency},
            labels=labels,
            stacked=True,
            series=[
                charts.Series(_("New"), [row.movements.new for row in mrr_rows], COLORS["new"]),
                charts.Series(_("Expansion"), [row.movements.expansion for row in mrr_rows], COLORS["expansion"]),
                charts.Series(
                    _("Reactivation"), [row.movements.reactivation for row in mrr_rows], COLORS["reactivation"]
                ),
                charts.Series(
                    _("Contraction"), [-row.movements.contraction for row in mrr_rows], COLORS["contraction"]
                ),
                charts.Series(_("Churn"), [-row.movements.churn for row in mrr_rows], COLORS["churn"]),
                charts.Series(_("Net new MRR"), [row.movements.net for row in mrr_rows], "#111827", kind="line"),
            ],
        ),
        "cash_chart": charts.chart(
            title=_("Invoiced and collected per month, %(currency)s") % {"currency": currency},
            labels=labels,
            series=[
                charts.Series(_("Invoiced"), [row.invoiced for row in cash_rows], COLORS["invoiced"]),
                charts.Series(_("Collected"), [row.collected for row in cash_rows], COLORS["collected"]),
                charts.Series(_("Credited"), [row.credited for row in cash_rows], COLORS["credited"]),
                charts.Series(_("Refunded"), [row.refunded for row in cash_rows], "#a855f7"),
            ],
        ),
        "revenue_chart": charts.chart(
            title=_("Recognized revenue and deferred balance, %(currency)s") % {"currency": currency},
            labels=labels,
            series=[
                charts.Series(_("Recognized"), [row.recognized for row in revenue_rows], COLORS["recognized"]),
                charts.Series(
                    _("Deferred at month end"), [row.deferred for row in revenue_rows], COLORS["deferred"], kind="line"
                ),
            ],
        ),
        "aging_chart": charts.chart(
            title=_("Receivables by days past due, %(currency)s") % {"currency": currency},
            labels=[str(AGING_LABELS[key][1]) for key, _label, _amount, _count in aging.buckets],
            stacked=True,
            legend=False,
            series=[
                charts.Series(
                    str(AGING_LABELS[key][0]),
                    [amount if position == index else Decimal(0) for position in range(len(aging.buckets))],
                    AGING_COLORS[index],
                )
                for index, (key, _label, amount, _count) in enumerate(aging.buckets)
            ],
        ),
    }


def report_export(request: HttpRequest, report: str) -> HttpResponse:
    """One report as CSV, for the same filters as the dashboard (amounts to the currency's minor unit)."""
    if report not in EXPORTS:
        raise Http404(_("No such report."))
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


# The CSV columns: machine names in English (what scripts read); in the staff user's language otherwise.
CSV_COLUMNS = {
    "month": gettext_lazy("month"),
    "currency": gettext_lazy("currency"),
    "product": gettext_lazy("product"),
    "plan": gettext_lazy("plan"),
    "mrr": gettext_lazy("MRR"),
    "arr": gettext_lazy("ARR"),
    "customers": gettext_lazy("customers"),
    "arpa": gettext_lazy("ARPA"),
    "new_mrr": gettext_lazy("new MRR"),
    "expansion_mrr": gettext_lazy("expansion MRR"),
    "reactivation_mrr": gettext_lazy("reactivation MRR"),
    "contraction_mrr": gettext_lazy("contraction MRR"),
    "churned_mrr": gettext_lazy("churned MRR"),
    "net_new_mrr": gettext_lazy("net new MRR"),
    "new_customers": gettext_lazy("new customers"),
    "reactivated_customers": gettext_lazy("reactivated customers"),
    "churned_customers": gettext_lazy("churned customers"),
    "logo_churn_percent": gettext_lazy("logo churn (%)"),
    "revenue_churn_percent": gettext_lazy("revenue churn (%)"),
    "net_revenue_retention_percent": gettext_lazy("net revenue retention (%)"),
    "invoiced": gettext_lazy("invoiced"),
    "invoice_count": gettext_lazy("invoice count"),
    "credited": gettext_lazy("credited"),
    "collected": gettext_lazy("collected"),
    "payment_count": gettext_lazy("payment count"),
    "refunded": gettext_lazy("refunded"),
    "as_of": gettext_lazy("as of"),
    "bucket": gettext_lazy("bucket"),
    "amount_due": gettext_lazy("amount due"),
    "recognized": gettext_lazy("recognized"),
    "deferred_at_month_end": gettext_lazy("deferred at month end"),
}


def _csv_header(columns: list[str]) -> list[str]:
    if not _chinese():
        return columns
    return [str(CSV_COLUMNS[column]) for column in columns]


def _rate(value: Decimal | None) -> str:
    return "" if value is None else str(value)


def _scope_names(filters: ReportFilters) -> list[str]:
    return [
        filters.product.code if filters.product else (filters.plan.product.code if filters.plan else "all"),
        filters.plan.code if filters.plan else "all",
    ]


def _export_mrr(filters: ReportFilters):
    c = filters.currency
    yield _csv_header([
        "month", "currency", "product", "plan", "mrr", "arr", "customers", "arpa", "new_mrr", "expansion_mrr",
        "reactivation_mrr", "contraction_mrr", "churned_mrr", "net_new_mrr", "new_customers",
        "reactivated_customers", "churned_customers", "logo_churn_percent", "revenue_churn_percent",
        "net_revenue_retention_percent",
    ])  # fmt: skip
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
    yield _csv_header(
        ["month", "currency", "invoiced", "invoice_count", "credited", "collected", "payment_count", "refunded"]
    )
    for row in cash_report(filters):
        yield [
            f"{row.month:%Y-%m}", c, _money(row.invoiced, c), row.invoice_count, _money(row.credited, c),
            _money(row.collected, c), row.collected_count, _money(row.refunded, c),
        ]  # fmt: skip


def _export_aging(filters: ReportFilters):
    c = filters.currency
    report = aging_report(filters)
    yield _csv_header(["as_of", "currency", "bucket", "amount_due", "invoice_count"])
    for key, _label, amount, count in report.buckets:
        yield [report.as_of.isoformat() if report.as_of else "", c, key, _money(amount, c), count]


def _export_revenue(filters: ReportFilters):
    c = filters.currency
    yield _csv_header(["month", "currency", "product", "plan", "recognized", "deferred_at_month_end"])
    for row in revenue_report(filters):
        yield [f"{row.month:%Y-%m}", c, *_scope_names(filters), _money(row.recognized, c), _money(row.deferred, c)]


EXPORT_WRITERS = {"mrr": _export_mrr, "cash": _export_cash, "aging": _export_aging, "revenue": _export_revenue}
