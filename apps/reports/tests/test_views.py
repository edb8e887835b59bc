"""The dashboard (the admin's landing page) and the CSV exports: who sees what, exact CSV contents,
bad filters refused with a form error, a constant number of queries."""

import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.core import clock
from apps.reports.models import MrrMonth, ReportRefresh
from apps.reports.services import reports_refresh

from .conftest import AS_OF

PERMISSION = "reports.view_finance_reports"
USD_JAN_APR = "?currency=USD&first_month=2026-01&last_month=2026-04"


@pytest.fixture
def refreshed(story):
    reports_refresh(full=True, now=AS_OF)
    return story


def _csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


# --- Who sees what -----------------------------------------------------------------------------


def test_anonymous_is_sent_to_the_login_page(client, db):
    for url in ("/admin/", "/admin/reports/export/mrr.csv"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


def test_staff_without_the_permission_gets_the_app_list_and_no_figures(client, make_staff, refreshed):
    client.force_login(make_staff("invoices.view_invoice"))
    response = client.get("/admin/" + USD_JAN_APR)
    assert response.status_code == 200
    body = response.content.decode()
    assert "You do not have permission to view the finance reports." in body
    assert 'class="chart"' not in body and "162.50" not in body
    assert "/admin/invoices/invoice/" in body  # the app list is still there
    assert client.get("/admin/reports/export/mrr.csv" + USD_JAN_APR).status_code == 403


@pytest.mark.parametrize("who", ["permitted staff", "superuser"])
def test_permitted_users_see_the_dashboard(client, make_staff, superuser, refreshed, who):
    user = make_staff(PERMISSION) if who == "permitted staff" else superuser
    client.force_login(user)
    with clock.frozen_at(AS_OF):
        response = client.get("/admin/" + USD_JAN_APR)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.count('class="chart"') == 5
    assert "162.50" in body  # April's MRR in the key figures
    assert 'href="/admin/reports/export/cash.csv' + USD_JAN_APR.replace("&", "&amp;") + '"' in body
    assert "Administration" in body


def test_the_admin_index_is_the_dashboard_and_breadcrumbs_lead_to_it(client, superuser, db):
    client.force_login(superuser)
    response = client.get("/admin/")
    assert response.status_code == 200
    assert response.templates[0].name == "reports/dashboard.html"
    assert "No figures yet" in response.content.decode()  # before the first refresh


# --- CSV exports ----------------------------------------------------------------------------------


def test_mrr_export(client, superuser, refreshed):
    client.force_login(superuser)
    response = client.get("/admin/reports/export/mrr.csv" + USD_JAN_APR)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="mrr-USD-2026-01-2026-04.csv"'
    rows = _csv(response)
    assert rows[0][:8] == ["month", "currency", "product", "plan", "mrr", "arr", "customers", "arpa"]
    # Figures of test_figures.py: MRR, ARR, customers, ARPA, movements and rates per month
    assert rows[1:] == [
        ["2026-01", "USD", "all", "all", "185.00", "2220.00", "4", "46.25", "185.00", "0.00", "0.00", "0.00",
         "0.00", "185.00", "4", "0", "0", "", "", ""],
        ["2026-02", "USD", "all", "all", "195.00", "2340.00", "3", "65.00", "0.00", "20.00", "0.00", "0.00",
         "10.00", "10.00", "0", "0", "1", "25.00", "5.41", "105.41"],
        ["2026-03", "USD", "all", "all", "152.50", "1830.00", "3", "50.83", "0.00", "0.00", "0.00", "42.50",
         "0.00", "-42.50", "0", "0", "0", "0.00", "21.79", "78.21"],
        ["2026-04", "USD", "all", "all", "162.50", "1950.00", "4", "40.63", "0.00", "0.00", "10.00", "0.00",
         "0.00", "10.00", "0", "1", "0", "0.00", "0.00", "100.00"],
    ]  # fmt: skip


def test_filtered_exports(client, superuser, refreshed):
    story = refreshed
    client.force_login(superuser)
    query = f"{USD_JAN_APR}&product={story.products['hosting'].pk}&plan={story.plans['pro'].pk}"
    rows = _csv(client.get("/admin/reports/export/mrr.csv" + query))
    assert [(row[2], row[3], row[4]) for row in rows[1:]] == [
        ("hosting", "pro", "45.00"), ("hosting", "pro", "75.00"), ("hosting", "pro", "52.50"),
        ("hosting", "pro", "52.50"),
    ]  # fmt: skip
    revenue = _csv(client.get(f"/admin/reports/export/revenue.csv{USD_JAN_APR}&plan={story.plans['annual'].pk}"))
    assert revenue[1:] == [
        ["2026-01", "USD", "hosting", "annual", "101.92", "1098.08"],
        ["2026-02", "USD", "hosting", "annual", "92.05", "1006.03"],
        ["2026-03", "USD", "hosting", "annual", "101.92", "904.11"],
        ["2026-04", "USD", "hosting", "annual", "98.63", "805.48"],
    ]


def test_cash_and_aging_exports(client, superuser, refreshed):
    client.force_login(superuser)
    assert _csv(client.get("/admin/reports/export/cash.csv" + USD_JAN_APR)) == [
        ["month", "currency", "invoiced", "invoice_count", "credited", "collected", "payment_count", "refunded"],
        ["2026-01", "USD", "1285.00", "5", "0.00", "1285.00", "5", "0.00"],
        ["2026-02", "USD", "85.00", "4", "0.00", "55.00", "2", "0.00"],
        ["2026-03", "USD", "62.50", "2", "0.00", "44.00", "2", "0.00"],
        ["2026-04", "USD", "62.50", "3", "0.00", "0.00", "0", "0.00"],
    ]
    assert _csv(client.get("/admin/reports/export/aging.csv?currency=EUR")) == [
        ["as_of", "currency", "bucket", "amount_due", "invoice_count"],
        ["2026-04-20", "EUR", "current", "0.00", "0"],
        ["2026-04-20", "EUR", "1_30", "9.00", "1"],
        ["2026-04-20", "EUR", "31_60", "9.00", "1"],
        ["2026-04-20", "EUR", "61_90", "9.00", "1"],
        ["2026-04-20", "EUR", "90_plus", "0.00", "0"],
    ]


# --- Bad filters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("?first_month=2026-13", "first_month", "Give a month as YYYY-MM"),
        ("?first_month=2026-04&last_month=2026-01", "first_month", "The first month comes after the last one."),
        ("?first_month=2020-01&last_month=2026-04", "first_month", "Choose at most 60 months."),
        ("?currency=XXX", "currency", "Select a valid choice."),
        ("?plan=999999", "plan", "Select a valid choice."),
    ],
)
def test_bad_filters_are_form_errors(client, superuser, refreshed, query, field, message):
    client.force_login(superuser)
    refreshes = ReportRefresh.objects.count()
    rows = MrrMonth.objects.count()
    response = client.get("/admin/" + query)
    assert response.status_code == 200
    assert message in response.context["form"].errors[field][0]
    assert 'class="chart"' not in response.content.decode()
    export = client.get("/admin/reports/export/mrr.csv" + query)
    assert export.status_code == 400
    assert message in export.content.decode()
    assert (ReportRefresh.objects.count(), MrrMonth.objects.count()) == (refreshes, rows)


def test_a_plan_of_another_product_is_refused(client, superuser, refreshed):
    story = refreshed
    client.force_login(superuser)
    response = client.get(f"/admin/?product={story.products['support'].pk}&plan={story.plans['pro'].pk}")
    assert response.context["form"].errors["plan"] == ["Pro is not a plan of Support."]


def test_unknown_report_is_404(client, superuser, db):
    client.force_login(superuser)
    assert client.get("/admin/reports/export/payroll.csv").status_code == 404


# --- Constant work -------------------------------------------------------------------------------


def test_the_dashboard_reads_a_fixed_number_of_queries(client, superuser, refreshed):
    client.force_login(superuser)
    client.get("/admin/" + USD_JAN_APR)  # session and content types cached
    with CaptureQueriesContext(connection) as all_months:
        assert client.get("/admin/" + USD_JAN_APR).status_code == 200
    with CaptureQueriesContext(connection) as one_month:
        assert client.get("/admin/?currency=USD&first_month=2026-04&last_month=2026-04").status_code == 200
    assert len(all_months) == len(one_month)
    # none of them reads the billing tables: only the summary tables (and the session, user, catalog lists)
    assert not any("invoices_invoice" in query["sql"] for query in all_months.captured_queries)
    assert not any("subscriptions_subscription" in query["sql"] for query in all_months.captured_queries)
