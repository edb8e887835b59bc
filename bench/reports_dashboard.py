"""Finance dashboard over 100,000 subscriptions and about 1,000,000 invoices.

    .venv/bin/python bench/reports_dashboard.py                 # build the data once, then measure
    .venv/bin/python bench/reports_dashboard.py --reuse          # measure again on the data already there
    .venv/bin/python bench/reports_dashboard.py --reuse --skip-rebuild   # the dashboard alone

Builds (COPY, one transaction) 100,000 customers, each with one subscription to one of six plans in
USD, EUR or GBP, started over the last 25 months, a fifth of them canceled since, and every period
they were billed as an issued invoice with one line, most of them paid by a manual payment allocated
to it (the recent ones often still open); then
rebuilds the reports' summary tables (`reports_refresh(full=True)`, what `manage.py reports_rebuild`
runs), times an incremental refresh, and times the dashboard view (`GET /admin/`, logged in, through
Django's test client with the production settings) for the default filters and filtered by product
and by plan. Prints p50/p95 and one TARGET line. See bench/README.md and docs/performance.md.
"""

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import percentile  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bp_bench_reports"
PREFIX = "bench-rep"
SEED = 20261205
# (product, plan code, interval, USD, EUR, GBP, weight)
PLANS = [
    ("hosting", "starter", "month", "29", "27", "23", 30),
    ("hosting", "pro", "month", "99", "92", "79", 30),
    ("hosting", "business", "month", "299", "279", "239", 12),
    ("hosting", "business-yearly", "year", "2990", "2790", "2390", 8),
    ("database", "standard", "month", "149", "139", "119", 15),
    ("support", "priority-yearly", "year", "1200", "1100", "950", 5),
]
CURRENCIES = [("USD", 60), ("EUR", 30), ("GBP", 10)]
TARGET_P95_MS = 300


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--subscriptions", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=25, help="history length (default: %(default)s)")
    parser.add_argument("--requests", type=int, default=200, help="timed dashboard requests per filter")
    parser.add_argument("--reuse", action="store_true", help="keep the data already loaded; only measure")
    parser.add_argument("--skip-rebuild", action="store_true", help="measure the dashboard on the tables as they are")
    args = parser.parse_args()

    from common import _create_database

    _create_database(args.database_url)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "billing_portal.settings.production",
            "SECRET_KEY": "bench-only-secret-key-not-for-production-use-0123456789",
            "ALLOWED_HOSTS": "testserver,127.0.0.1",
            "DATABASE_URL": args.database_url,
            "SECURE_SSL_REDIRECT": "false",
            # Production requires an explicit email backend; the benchmark sends no email.
            "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
        }
    )
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    from django.conf import settings

    settings.SECURE_SSL_REDIRECT = False
    # No collectstatic here: plain static URLs instead of the manifest's hashed names (same work per page).
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False

    from apps.accounts.models import Customer

    now = datetime.now(UTC)
    if Customer.objects.filter(external_id__startswith=f"{PREFIX}-").exists() and not args.reuse:
        raise SystemExit(f"{args.database_url} has bench data already: pass --reuse, or drop the database first")
    if not args.reuse:
        build(subscriptions=args.subscriptions, months=args.months, now=now)
    counts()
    if not args.skip_rebuild:
        refresh_timings(now)
    dashboard_timings(args.requests)


def counts() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM subscriptions_subscription")
        subscriptions = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM invoices_invoice")
        invoices = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM invoices_invoiceline")
        lines = cursor.fetchone()[0]
    print(f"database: {subscriptions:,} subscriptions, {invoices:,} invoices, {lines:,} invoice lines")


# --- The data -----------------------------------------------------------------------------------


def _catalog():
    from djmoney.money import Money

    from apps.catalog.models import Plan, Product
    from apps.catalog.services import plan_create, product_create

    products = {}
    for code in ("hosting", "database", "support"):
        full = f"{PREFIX}-{code}"
        products[code] = Product.objects.filter(code=full).first() or product_create(
            code=full, name=f"Bench {code.title()}"
        )
    plans = []
    for product, code, interval, usd, eur, gbp, weight in PLANS:
        full = f"{PREFIX}-{code}"
        plan = Plan.objects.filter(code=full).first() or plan_create(
            product=products[product], code=full, name=code.replace("-", " ").title(), interval=interval,
            prices=[Money(Decimal(usd), "USD"), Money(Decimal(eur), "EUR"), Money(Decimal(gbp), "GBP")],
        )  # fmt: skip
        version = plan.versions.get()
        charge = version.charges.get()
        prices = {price.currency: price.amount for price in charge.prices.all()}
        plans.append((plan, version, charge, prices, weight))
    return plans


def _months_later(moment: datetime, months: int) -> datetime:
    from apps.subscriptions.periods import add_months

    return add_months(moment, months)


def build(*, subscriptions: int, months: int, now: datetime, spread_created_at: bool = False) -> None:
    """`spread_created_at`: each invoice written at its issue time plus a few seconds (as billing runs
    write them) instead of all at one instant, for benches of lists ordered by creation."""
    from django.db import connection, transaction

    started = time.monotonic()
    rng = random.Random(SEED)
    plans = _catalog()
    plan_weights = [weight for *_, weight in plans]
    currency_codes = [code for code, _ in CURRENCIES]
    currency_weights = [weight for _, weight in CURRENCIES]
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM accounts_customer")
        customer_id = cursor.fetchone()[0]
        cursor.execute("SELECT coalesce(max(id), 0) FROM subscriptions_subscription")
        subscription_id = cursor.fetchone()[0]
        cursor.execute("SELECT coalesce(max(id), 0) FROM invoices_invoice")
        invoice_id = cursor.fetchone()[0]
        cursor.execute("SELECT coalesce(max(id), 0) FROM payments_payment")
        payment_id = cursor.fetchone()[0]
    customers, subs, invoices, lines, payments, allocations = [], [], [], [], [], []
    stamp = (now - timedelta(days=1)).isoformat()  # written yesterday: the incremental refresh skips them
    for number in range(subscriptions):
        customer_id += 1
        subscription_id += 1
        currency = rng.choices(currency_codes, currency_weights)[0]
        plan, version, charge, prices, _ = rng.choices(plans, plan_weights)[0]
        quantity = rng.choice((1, 1, 1, 2, 3))
        start = today - timedelta(days=rng.randint(0, months * 30))
        ended = None
        if rng.random() < 0.2 and (today - start).days > 2:
            ended = start + timedelta(days=rng.randint(1, (today - start).days - 1))
        step = 12 if plan.interval == "year" else 1
        fee = prices[currency] * quantity
        index = 0
        period_start = start
        while period_start < (ended or now):
            period_end = _months_later(start, step * (index + 1))
            invoice_id += 1
            age = (today - period_start).days
            status, paid_at, paid = "open", None, 0
            roll = rng.random()
            if age > 30 and roll < 0.93 or age <= 30 and roll < 0.5:
                status, paid = "paid", fee
                paid_at = (period_start + timedelta(days=rng.randint(1, min(12, max(age, 1))))).isoformat()
                payment_id += 1
                payments.append(
                    (payment_id, stamp, stamp, "manual", "bank_transfer", currency, fee, "succeeded",
                     f"BT-{payment_id}", "", "", "", "", "", paid_at, currency, 0, None, "", None, None, customer_id,
                     "{}")
                )  # fmt: skip
                allocations.append((currency, fee, stamp, invoice_id, payment_id))
            elif age > 90 and roll > 0.985:
                status = "uncollectible"
            issued = period_start.isoformat()
            due = (period_start + timedelta(days=14)).date().isoformat()
            written = (period_start + timedelta(seconds=invoice_id % 3600)).isoformat() if spread_created_at else stamp
            invoices.append(
                (invoice_id, written, written, status, f"BR-{invoice_id:08d}", issued, period_end.isoformat(), currency,
                 fee, currency, 0, currency, fee, "", due, issued, None, paid_at, None, None, "{}", "{}", "", "",
                 None, customer_id, subscription_id, "subscription_cycle", False, paid, currency, "send_invoice")
            )  # fmt: skip
            lines.append(
                (invoice_id, 1, f"{plan.name}", issued, period_end.isoformat(), quantity, currency,
                 prices[currency], currency, fee, charge.pk, "[]", "recurring")
            )  # fmt: skip
            index += 1
            period_start = period_end
        last_start = _months_later(start, step * max(index - 1, 0))
        last_end = _months_later(start, step * max(index, 1))
        customers.append(
            (customer_id, stamp, stamp, f"{PREFIX}-{customer_id:07d}", f"Bench customer {number}",
             f"c{customer_id}@bench.example", "", "", "", "", "", "US", currency, "", None, None, False, None,
             "", "", "", "send_invoice", "en", "UTC")
        )  # fmt: skip
        subs.append(
            (subscription_id, stamp, stamp, quantity, currency, "canceled" if ended else "active", start.isoformat(),
             start.isoformat(), last_start.isoformat(), last_end.isoformat(),
             None if ended else last_end.isoformat(), ended.isoformat() if ended else None,
             ended.isoformat() if ended else None, customer_id, plan.pk, False, "", None, version.pk, None, None)
        )  # fmt: skip
    generated = time.monotonic() - started
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")  # bulk fixture load: no triggers
        _copy(cursor, "accounts_customer", customers,
              "id, created_at, updated_at, external_id, name, email, address_line1, address_line2, city, "
              "postal_code, state, country, currency, tax_id, payment_terms_days, test_clock_id, tax_exempt, "
              "tax_id_checked_at, tax_id_status, tax_id_type, invoice_grouping, collection_method, "
              "preferred_language, time_zone")  # fmt: skip
        _copy(cursor, "subscriptions_subscription", subs,
              "id, created_at, updated_at, quantity, currency, status, billing_anchor_at, started_at, "
              "current_period_start_at, current_period_end_at, next_billing_at, canceled_at, ended_at, "
              "customer_id, plan_id, cancel_at_period_end, cancellation_reason, pending_plan_version_id, "
              "plan_version_id, paused_at, trial_end_at")  # fmt: skip
        _copy(cursor, "invoices_invoice", invoices,
              "id, created_at, updated_at, status, number, period_start_at, period_end_at, subtotal_currency, "
              "subtotal, tax_total_currency, tax_total, total_currency, total, memo, due_on, issued_at, "
              "auto_finalize_at, paid_at, voided_at, marked_uncollectible_at, seller_details, customer_details, "
              "pdf, pdf_sha256, pdf_rendered_at, customer_id, subscription_id, billing_reason, reverse_charge, "
              "amount_paid, amount_paid_currency, collection_method")  # fmt: skip
        _copy(cursor, "invoices_invoiceline", lines,
              "invoice_id, position, description, period_start_at, period_end_at, quantity, unit_amount_currency, "
              "unit_amount, amount_currency, amount, charge_id, explanation, kind")  # fmt: skip
        _copy(cursor, "payments_payment", payments,
              "id, created_at, updated_at, provider, method, amount_currency, amount, status, reference, "
              "provider_payment_id, idempotency_key, failure_code, failure_message, next_action_url, received_at, "
              "amount_refunded_currency, amount_refunded, reversed_at, reversal_reason, balance_item_id, "
              "created_by_id, customer_id, card")  # fmt: skip
        _copy(cursor, "payments_paymentallocation", allocations,
              "amount_currency, amount, created_at, invoice_id, payment_id")  # fmt: skip
        for table in ("accounts_customer", "subscriptions_subscription", "invoices_invoice", "payments_payment"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(
        f"built {len(subs):,} subscriptions, {len(invoices):,} invoices, {len(lines):,} lines and "
        f"{len(payments):,} payments in "
        f"{time.monotonic() - started:.1f} s ({generated:.1f} s generating, the rest COPY and ANALYZE)"
    )


def _copy(cursor, table: str, rows: list[tuple], columns: str) -> None:
    started = time.monotonic()
    with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    print(f"  COPY {table}: {len(rows):,} rows in {time.monotonic() - started:.1f} s")


# --- The measurements ---------------------------------------------------------------------------


def refresh_timings(now: datetime) -> None:
    from apps.reports.services import reports_refresh
    from apps.subscriptions.models import Subscription

    started = time.monotonic()
    full = reports_refresh(full=True, now=now)
    print(f"full rebuild of the summary tables: {time.monotonic() - started:.1f} s "
          f"({full.subscriptions_resegmented:,} subscriptions)")  # fmt: skip
    # Incremental: 100 subscriptions touched since (as a day of changes would), nothing else.
    ids = list(Subscription.objects.order_by("?").values_list("pk", flat=True)[:100])
    Subscription.objects.filter(pk__in=ids).update(updated_at=datetime.now(UTC))
    started = time.monotonic()
    incremental = reports_refresh(now=now)
    print(f"incremental refresh (100 subscriptions changed, revenue and cash from {incremental.from_month}): "
          f"{time.monotonic() - started:.1f} s")  # fmt: skip


def dashboard_timings(requests: int) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from apps.catalog.models import Plan, Product

    user, _ = get_user_model().objects.get_or_create(
        username="bench-reports", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    product = Product.objects.get(code=f"{PREFIX}-hosting")
    plan = Plan.objects.get(code=f"{PREFIX}-pro")
    variants = {
        "default (USD, last 12 months)": "",
        "EUR, 24 months": "?currency=EUR&first_month=" + (datetime.now(UTC) - timedelta(days=700)).strftime("%Y-%m"),
        "product filter": f"?currency=USD&product={product.pk}",
        "plan filter": f"?currency=GBP&product={product.pk}&plan={plan.pk}",
    }
    every: list[float] = []
    for name, query in variants.items():
        for _ in range(5):  # warm-up
            response = client.get(f"/admin/{query}")
            assert response.status_code == 200, response.status_code
            assert b'class="chart"' in response.content
        timings = []
        for _ in range(requests):
            started = time.perf_counter()
            response = client.get(f"/admin/{query}")
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        every.extend(timings)
        print(f"dashboard, {name}: p50 {percentile(timings, 0.5):.1f} ms, p95 {percentile(timings, 0.95):.1f} ms, "
              f"mean {statistics.fmean(timings):.1f} ms ({requests} requests)")  # fmt: skip
    p95 = percentile(every, 0.95)
    print(f"dashboard, all {len(every)} requests: p50 {percentile(every, 0.5):.1f} ms, p95 {p95:.1f} ms")
    print(f"TARGET dashboard p95 <= {TARGET_P95_MS} ms: {p95:.1f} ms {'PASS' if p95 <= TARGET_P95_MS else 'MISS'}")


if __name__ == "__main__":
    main()
