"""HTTP latency under load: the staff API, the admin, the portal and usage ingestion through gunicorn
with the production settings, at 1, 4 and 16 concurrent clients.

    .venv/bin/python bench/http_load.py                       # build the data once (about 1,000,000 invoices)
    .venv/bin/python bench/http_load.py --reuse               # measure again on the data already there
    .venv/bin/python bench/http_load.py --reuse --only staff  # the calls whose name starts with "staff"

Data: the finance-dashboard bench's history (bench/reports_dashboard.py: 100,000 subscriptions, each
billed every period for up to 25 months, about 1,000,000 invoices with their lines and payments),
written as billing runs write it (each invoice created at its issue time), plus one portal customer
with 500 invoices. Then, for each call and each concurrency, `--requests` requests from that many
threads (one keep-alive connection each) and the p50/p99 latency. The targets (issue: HTTP latency
under load) are judged at the highest concurrency: p99 ≤ 100 ms for every API call, ≤ 300 ms for
admin and portal pages; each prints PASS or MISS, and the script ends with a summary.

Deep pages: the staff API walks by cursor (`?cursor=`, keyset pagination), the way the API documents
for large lists; page numbers are measured too, for comparison (they count every matching row). The
admin counts up to 10,000 rows (apps/core/admin.py) and its deepest page is the 100th.
"""

import argparse
import base64
import http.client
import json
import os
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Server, add_common_arguments, django_setup, fixtures, percentile, verdict  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bp_bench_http"
PORTAL_EXTERNAL_ID = "bench-http-portal"
API_TARGET_MS = 100
PAGE_TARGET_MS = 300


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.set_defaults(database_url=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--subscriptions", type=int, default=100_000, help="history size (default: %(default)s)")
    parser.add_argument("--months", type=int, default=25, help="history length (default: %(default)s)")
    parser.add_argument("--portal-invoices", type=int, default=500)
    parser.add_argument("--clients", default="1,4,16", help="concurrency levels (default: %(default)s)")
    parser.add_argument("--requests", type=int, default=160, help="requests per call and level")
    parser.add_argument("--batch-size", type=int, default=100, help="events per usage batch")
    parser.add_argument("--reuse", action="store_true", help="keep the data already loaded; only measure")
    parser.add_argument("--only", default="", help="measure only the calls whose name starts with this")
    args = parser.parse_args()
    levels = [int(level) for level in args.clients.split(",")]

    django_setup(args.database_url)
    from apps.accounts.models import Customer

    if not args.reuse:
        if Customer.objects.filter(external_id=PORTAL_EXTERNAL_ID).exists():
            raise SystemExit(f"{args.database_url} has bench data already: pass --reuse, or drop the database")
        import reports_dashboard

        reports_dashboard.build(
            subscriptions=args.subscriptions, months=args.months, now=datetime.now(UTC), spread_created_at=True
        )
        _portal_customer(args.portal_invoices)
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)  # production's hashed static files
    calls = _calls(args.batch_size)
    if args.only:
        calls = [call for call in calls if call.name.startswith(args.only)]
    _counts()

    server = Server(database_url=args.database_url, url=args.url, workers=args.gunicorn_workers, port=args.port)
    results: list[tuple[str, bool]] = []
    try:
        for call in calls:
            call.check(server.url)
            for level in levels:
                latencies = _run(server.url, call, concurrency=level, requests=args.requests)
                milliseconds = [value * 1000 for value in latencies]
                p50, p99 = percentile(milliseconds, 0.50), percentile(milliseconds, 0.99)
                line = f"{call.name:<44} {level:>2} clients: p50 {p50:7.1f} ms, p99 {p99:7.1f} ms"
                if level == max(levels):
                    passed = p99 <= call.target_ms
                    results.append((call.name, passed))
                    line += f"  TARGET p99 <= {call.target_ms} ms {verdict(passed)}"
                print(line, flush=True)
    finally:
        server.stop()
    missed = [name for name, passed in results if not passed]
    print(f"summary: {len(results) - len(missed)} of {len(results)} calls within target at {max(levels)} clients")
    for name in missed:
        print(f"  MISS {name}")


class Call:
    def __init__(self, name: str, path: str, headers: dict[str, str], *, target_ms: int, body=None) -> None:
        self.name, self.path, self.headers, self.target_ms, self.body = name, path, headers, target_ms, body

    def request(self, connection: http.client.HTTPConnection, index: int) -> tuple[int, bytes]:
        body = self.body(index) if callable(self.body) else None
        connection.request("POST" if body is not None else "GET", self.path, body=body, headers=self.headers)
        response = connection.getresponse()
        return response.status, response.read()

    def check(self, url: str) -> None:
        """One request before timing: a call that does not answer 200 is a broken bench, not a figure."""
        parts = urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        status, payload = self.request(connection, -1)
        connection.close()
        if status != 200:
            raise SystemExit(f"{self.name}: GET {self.path} answered {status}: {payload[:300]!r}")


def _run(url: str, call: Call, *, concurrency: int, requests: int) -> list[float]:
    parts = urlsplit(url)
    latencies: list[float] = []
    counter = iter(range(requests))
    lock = threading.Lock()
    errors: list[str] = []

    def work() -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                break
            started = time.perf_counter()
            status, payload = call.request(connection, index)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if status != 200:
                    errors.append(f"HTTP {status}: {payload[:200]!r}")
        connection.close()

    threads = [threading.Thread(target=work) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise SystemExit(f"{call.name}: {len(errors)} of {requests} requests failed, first: {errors[0]}")
    return latencies


# --- The data and the calls ---------------------------------------------------------------------


def _portal_customer(invoices: int) -> None:
    """A bench customer (with a subscription) renamed for the portal, given `invoices` invoices: copies
    of one of its own, numbered apart, each a month before the previous."""
    from django.db import transaction

    with transaction.atomic():
        _portal_invoices(invoices)


def _portal_invoices(invoices: int) -> None:
    from django.db import connection

    from apps.subscriptions.models import Subscription

    subscription = Subscription.objects.filter(status="active").order_by("id").first()
    customer = subscription.customer
    customer.external_id = PORTAL_EXTERNAL_ID
    customer.save(update_fields=["external_id"])
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(id) FROM invoices_invoice WHERE customer_id = %s", [customer.pk])
        (template,) = cursor.fetchone()
        cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'invoices_invoice' "
            "AND column_name NOT IN ('id', 'number', 'created_at', 'updated_at')"
        )
        columns = [row[0] for row in cursor.fetchall()]
        shifted = {"period_start_at", "period_end_at", "issued_at", "due_on", "paid_at"}  # a month earlier each
        values = ", ".join(f"{name} - g * interval '31 days'" if name in shifted else name for name in columns)
        cursor.execute("SET LOCAL session_replication_role = replica")  # a fixture load: no triggers
        cursor.execute(
            f"INSERT INTO invoices_invoice (number, created_at, updated_at, {', '.join(columns)}) "
            f"SELECT 'PT-' || lpad(g::text, 6, '0'), now() - g * interval '31 days', now() - g * interval '31 days', "
            f"{values} FROM invoices_invoice, generate_series(1, %s) AS g WHERE id = %s",
            [invoices, template],
        )
        cursor.execute("ANALYZE invoices_invoice")
    print(f"portal customer {PORTAL_EXTERNAL_ID}: {invoices} more invoices")


def _counts() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = 'invoices_invoice'")
        (invoices,) = cursor.fetchone()
    print(f"database: about {invoices:,} invoices")


def _session_cookie(user) -> str:
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


def _cursor_at(created_at: datetime) -> str:
    """The API's cursor for the page after `created_at` (rest_framework's encoding: position, no offset)."""
    return base64.b64encode(urlencode({"p": str(created_at)}).encode()).decode()


def _calls(batch_size: int) -> list[Call]:
    from django.contrib.auth import get_user_model

    from apps.accounts.credentials import portal_token_create, user_token_create
    from apps.accounts.models import Customer, CustomerMembership
    from apps.invoices.models import Invoice
    from apps.subscriptions.models import Subscription

    staff, _ = get_user_model().objects.get_or_create(
        username="bench-http-staff", defaults={"is_staff": True, "is_superuser": True, "email": "staff@bench.example"}
    )
    _, token = user_token_create(user_id=staff.pk, name="http bench")
    api = {"Authorization": f"Token {token}", "Accept": "application/json"}
    admin = {"Cookie": _session_cookie(staff)}

    portal_customer = Customer.objects.get(external_id=PORTAL_EXTERNAL_ID)
    member, _ = get_user_model().objects.get_or_create(
        username="bench-http-member", defaults={"email": "member@bench.example"}
    )
    membership, _ = CustomerMembership.objects.get_or_create(
        user=member, customer=portal_customer, defaults={"role": "owner"}
    )
    portal = {"Cookie": _session_cookie(member)}
    _, member_token = portal_token_create(membership_id=membership.pk, name=f"http bench {time.time_ns()}")
    portal_api = {"Authorization": f"Bearer {member_token}", "Accept": "application/json"}

    # The 1,000th page of 50 (or the last, on a small database), by cursor and by number.
    total = Invoice.objects.count()
    deep_page = max(1, min(1_000, total // 50))
    admin_page = max(1, min(100, total // 100))  # 100 a page, counted up to 10,000
    deep = Invoice.objects.order_by("-created_at", "-id").values_list("created_at", flat=True)
    deep_cursor = _cursor_at(deep[(deep_page - 1) * 50 - 1]) if deep_page > 1 else ""
    some = Invoice.objects.exclude(number=None).order_by("-id").values("number", "customer_id", "subscription_id")[0]
    customer = Customer.objects.get(pk=some["customer_id"])
    subscription = Subscription.objects.filter(status="active").order_by("-id").first()
    issued_after = (datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%dT00:00:00Z")

    external_ids, api_key = fixtures(customers=20)
    ingest = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    run = int(time.time())

    def batch(index: int) -> bytes:
        events = [
            {"transaction_id": f"http-{run}-{index}-{n}", "customer": external_ids[n % len(external_ids)],
             "code": "bench_gb", "timestamp": stamp, "properties": {"gb": "1.5", "region": "eu"}}
            for n in range(batch_size)
        ]  # fmt: skip
        return json.dumps({"events": events}).encode()

    invoices = "/api/v1/invoices"
    return [
        Call("staff API invoices, first page (cursor)", f"{invoices}?cursor=", api, target_ms=API_TARGET_MS),
        Call("staff API invoices, first page (count)", invoices, api, target_ms=API_TARGET_MS),
        Call(
            f"staff API invoices, page {deep_page:,} (cursor)",
            f"{invoices}?{urlencode({'cursor': deep_cursor})}",
            api,
            target_ms=API_TARGET_MS,
        ),  # fmt: skip
        Call(
            f"staff API invoices, page {deep_page:,} (page=)",
            f"{invoices}?page={deep_page}",
            api,
            target_ms=API_TARGET_MS,
        ),  # fmt: skip
        Call("staff API invoices, status=open", f"{invoices}?cursor=&status=open", api, target_ms=API_TARGET_MS),
        Call(
            "staff API invoices, customer=",
            f"{invoices}?cursor=&customer={customer.pk}",
            api,
            target_ms=API_TARGET_MS,
        ),  # fmt: skip
        Call(
            "staff API invoices, subscription=",
            f"{invoices}?cursor=&subscription={subscription.pk}",
            api,
            target_ms=API_TARGET_MS,
        ),  # fmt: skip
        Call(
            "staff API invoices, issued in 30 days",
            f"{invoices}?cursor=&issued_at_after={issued_after}",
            api,
            target_ms=API_TARGET_MS,
        ),  # fmt: skip
        Call(
            "staff API invoices, search=number",
            f"{invoices}?cursor=&search={some['number'][-6:]}",
            api,
            target_ms=API_TARGET_MS,
        ),  # fmt: skip
        Call(
            "staff API upcoming invoice",
            f"/api/v1/subscriptions/{subscription.pk}/upcoming-invoice",
            api,
            target_ms=API_TARGET_MS,
        ),  # fmt: skip
        Call("admin invoices, first page", "/admin/invoices/invoice/", admin, target_ms=PAGE_TARGET_MS),
        Call(
            f"admin invoices, page {admin_page + 1}",
            f"/admin/invoices/invoice/?p={admin_page}",
            admin,
            target_ms=PAGE_TARGET_MS,
        ),  # fmt: skip
        Call(
            "admin invoices, status=paid",
            "/admin/invoices/invoice/?status__exact=paid",
            admin,
            target_ms=PAGE_TARGET_MS,
        ),  # fmt: skip
        Call(
            "admin invoices, search customer",
            f"/admin/invoices/invoice/?q={customer.external_id}",
            admin,
            target_ms=PAGE_TARGET_MS,
        ),  # fmt: skip
        Call("portal dashboard (500 invoices)", "/portal/", portal, target_ms=PAGE_TARGET_MS),
        Call("portal invoices page", "/portal/invoices/", portal, target_ms=PAGE_TARGET_MS),
        Call("portal API invoices", "/api/v1/portal/invoices", portal_api, target_ms=API_TARGET_MS),
        Call(
            f"usage batch of {batch_size} events",
            "/api/v1/events/batch",
            ingest,
            target_ms=API_TARGET_MS,
            body=batch,
        ),  # fmt: skip
    ]


if __name__ == "__main__":
    main()
