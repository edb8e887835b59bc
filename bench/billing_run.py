"""Benchmark: a billing run over 100,000 subscriptions through a real Celery worker pool.

Each subscription has a fixed monthly fee plus three usage charges (API calls: count, graduated;
storage: sum, per unit; seats: max, volume tiers), and a month of usage as hourly rollups (what
ingestion keeps next to the events), so every invoice has four lines and is taxed (UK VAT 20 %).
The fixtures are written once with COPY; later runs reset them (invoices truncated, subscriptions
moved back one period), so the script can be re-run.

The script starts `celery worker -Q billing` (prefork, `--concurrency`, production settings, its own
Redis database), then as the daily beat task does: `bill_due_subscriptions(fan_out=True)` splits the
due subscriptions into chunks, queues one task per chunk on the `billing` queue, and the last chunk
to finish closes the run. It waits for the run to finish and prints invoices/s end to end (from the
start of the run until its last chunk is done), the SQL statements per invoice (counted by the
chunks) and the CPU time of the worker's processes. Then it runs the same period again: nothing is
due any more, so no invoice is made.

Then the PostgreSQL floor: the rows the run wrote (invoices, lines, taxes, invoiced periods, events,
audit rows, the subscriptions' new periods; every table the run added rows to) are copied aside, taken
out, and written again by plain SQL — one `INSERT … SELECT` per table and one `UPDATE … FROM` for the
subscriptions, in one transaction on one connection, into the same tables with the same indexes,
foreign keys and triggers. The ratio of the run's time to that is what the engine costs above the
database's own cost of storing its result.

Targets: ≥ 2,000 invoices/s (100,000 in ≤ 50 s); the run within 2.0× of the floor; the re-run in
≤ 10 % of the first run's time.

`--meter` adds a fourth usage charge of one of the newer kinds to the plan, to see which path bills
it: `weighted_sum` (GB-hours), `percentile` (95th of 5-minute samples), `peak` (peak-hour prices),
`pooled` (a pooled allowance), `dimension` (a price per region), `unique_count` (distinct devices),
`latest` (the last seat count) and `percentage` (2.9 % + 0.30 per transaction). The charge has no usage
of its own (its read and its zero line are what it adds); the three others' usage is as above. Each meter needs
its own database (`--database-url`; by default bp_bench_billing_<meter>). The run prints how many
subscriptions the chunks billed in bulk and how many they left to the one-by-one path.
"""

import argparse
import os
import resource
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal

from common import ROOT, _server_environment, django_setup, verdict

TARGET_INVOICES_PER_SECOND = 2_000
TARGET_RERUN_SHARE = 0.10
TARGET_FLOOR_RATIO = 2.0
AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
PERIOD_START = datetime(2026, 10, 1, tzinfo=UTC)
BROKER_URL = "redis://127.0.0.1:6379/14"
PLAN_CODE = "bench-hybrid"
EXTRA_METERS = ("weighted_sum", "percentile", "peak", "pooled", "dimension", "unique_count", "latest", "percentage")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL database (created and migrated when missing; default: "
        "postgres://postgres@127.0.0.1:5432/bp_bench_billing, with _<meter> for --meter)",
    )
    parser.add_argument(
        "--meter",
        choices=["none", *EXTRA_METERS],
        default="none",
        help="a fourth usage charge of this kind on the plan (default: %(default)s)",
    )
    parser.add_argument(
        "--paths-only", action="store_true", help="write the fixtures, show the sample's paths, run nothing"
    )
    parser.add_argument("--broker-url", default=BROKER_URL, help="Redis database for the run (default: %(default)s)")
    parser.add_argument("--subscriptions", type=int, default=100_000, help="(default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes (default: %(default)s)")
    parser.add_argument("--chunk-size", type=int, default=500, help="subscriptions per chunk (default: %(default)s)")
    parser.add_argument(
        "--grace-hours",
        type=int,
        default=0,
        help="draft review period; 0 finalizes (numbers) every invoice in the run (default: %(default)s)",
    )
    options = parser.parse_args()
    if options.database_url is None:
        suffix = "" if options.meter == "none" else f"_{options.meter}"
        options.database_url = f"postgres://postgres@127.0.0.1:5432/bp_bench_billing{suffix}"

    os.environ["BILLING_RUN_CHUNK_SIZE"] = str(options.chunk_size)
    os.environ["INVOICE_DRAFT_GRACE_HOURS"] = str(options.grace_hours)
    os.environ["CELERY_BROKER_URL"] = options.broker_url
    django_setup(options.database_url)

    from apps.billing.services import bill_due_subscriptions
    from apps.invoices.models import Invoice, InvoiceLine

    print(f"fixtures: {options.subscriptions:,} subscriptions …", flush=True)
    started = time.perf_counter()
    _fixtures(options.subscriptions, options.meter)
    print(f"fixtures ready in {time.perf_counter() - started:.1f} s", flush=True)

    import redis

    in_bulk, one_by_one = _paths_sample()
    print(f"paths, on a sample of {in_bulk + one_by_one} subscriptions: {in_bulk} in bulk, {one_by_one} one by one")
    if options.paths_only:
        return
    redis.Redis.from_url(options.broker_url).flushdb()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    worker = _start_worker(options)
    try:
        high_water = _high_water_marks()
        started = time.perf_counter()
        run = bill_due_subscriptions(now=AS_OF, trigger="command", fan_out=True)
        run = _wait(run.pk)
        elapsed = time.perf_counter() - started
        invoices = Invoice.objects.count()
        lines = InvoiceLine.objects.count()
        rate = run.invoiced_count / elapsed
        print(
            f"first run: {run.due_count:,} due, {run.invoiced_count:,} invoices ({lines:,} lines), "
            f"{run.failed_count} failed, {run.chunk_count} chunks, {elapsed:.1f} s end to end "
            f"(run's own duration {run.duration_seconds:.1f} s)"
        )
        print(
            f"  {rate:,.0f} invoices/s; "
            f"{run.statement_count / max(1, run.invoiced_count):.3f} SQL statements per invoice"
        )
        if invoices != options.subscriptions:
            raise SystemExit(f"expected {options.subscriptions:,} invoices, found {invoices:,}")

        floor, written = _floor(high_water)
        ratio = elapsed / floor
        print(
            f"PostgreSQL floor: the same {written:,} rows written by plain SQL in {floor:.1f} s; "
            f"the run took {ratio:.2f}× that"
        )
        if Invoice.objects.count() != invoices or InvoiceLine.objects.count() != lines:
            raise SystemExit("the floor's rewrite did not restore the run's rows")

        started = time.perf_counter()
        rerun = bill_due_subscriptions(now=AS_OF, trigger="command", fan_out=True)
        rerun = _wait(rerun.pk)
        rerun_elapsed = time.perf_counter() - started
        print(
            f"re-run of the same period: {rerun.invoiced_count} new invoices, {rerun_elapsed:.2f} s "
            f"({rerun_elapsed / elapsed:.1%} of the first run)"
        )
        if Invoice.objects.count() != invoices:
            raise SystemExit("the re-run made invoices")
    finally:
        _stop_worker(worker)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    worker_cpu = (children.ru_utime + children.ru_stime) - (children_before.ru_utime + children_before.ru_stime)
    # The worker's processes (start-up and the re-run included; PostgreSQL's own time not): a figure
    # that load on a shared machine moves far less than the wall-clock one.
    print(f"worker CPU time: {worker_cpu:.1f} s, {1000 * worker_cpu / max(1, run.invoiced_count):.2f} ms per invoice")
    print(
        f"invoices/s: {rate:,.0f} (target ≥ {TARGET_INVOICES_PER_SECOND:,}) "
        f"{verdict(rate >= TARGET_INVOICES_PER_SECOND)}"
    )
    print(f"floor ratio: {ratio:.2f}× (target ≤ {TARGET_FLOOR_RATIO}×) {verdict(ratio <= TARGET_FLOOR_RATIO)}")
    share = rerun_elapsed / elapsed
    print(
        f"re-run: {rerun.invoiced_count} invoices in {share:.1%} of the first run's time "
        f"(target 0 in ≤ {TARGET_RERUN_SHARE:.0%}) {verdict(rerun.invoiced_count == 0 and share <= TARGET_RERUN_SHARE)}"
    )


def _high_water_marks() -> dict[str, int]:
    """Every table's highest id before the run (tables without an `id` column are not written by it)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND column_name = 'id' AND data_type IN ('integer', 'bigint') AND table_name IN "
            "(SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
            "AND table_type = 'BASE TABLE') ORDER BY table_name"
        )
        tables = [name for (name,) in cursor.fetchall()]
        marks = {}
        for table in tables:
            cursor.execute(f'SELECT COALESCE(MAX(id), 0) FROM "{table}"')  # noqa: S608 - catalog names
            marks[table] = cursor.fetchone()[0]
    return marks


def _floor(high_water: dict[str, int]) -> tuple[float, int]:
    """Seconds PostgreSQL takes to write the run's rows by plain SQL, and how many rows that is.

    The run's new rows (id above the mark) and its bench subscriptions are copied into temporary
    tables; the rows are taken out and the subscriptions put back to the period (triggers off, as the
    table owner, so the immutable-invoice guard lets the cleanup through); then, timed, one INSERT …
    SELECT per table and one UPDATE … FROM, in one transaction with every trigger and constraint on."""
    from django.db import connection, transaction

    from apps.invoices.models import Invoice
    from apps.subscriptions.models import Subscription

    subscriptions = Subscription._meta.db_table
    with connection.cursor() as cursor:
        written: dict[str, int] = {}
        for table, mark in high_water.items():
            cursor.execute(f'SELECT COUNT(*) FROM "{table}" WHERE id > %s', [mark])  # noqa: S608
            if count := cursor.fetchone()[0]:
                written[table] = count
        for table in written:
            cursor.execute(f'DROP TABLE IF EXISTS "floor_{table}"')
            cursor.execute(
                f'CREATE TEMPORARY TABLE "floor_{table}" AS SELECT * FROM "{table}" WHERE id > %s',  # noqa: S608
                [high_water[table]],
            )
        cursor.execute("DROP TABLE IF EXISTS floor_subscriptions")
        cursor.execute(
            f"CREATE TEMPORARY TABLE floor_subscriptions AS SELECT s.* FROM {subscriptions} s "  # noqa: S608
            "JOIN catalog_plan p ON p.id = s.plan_id WHERE p.code = %s",
            [PLAN_CODE],
        )
        columns = [column.column for column in Subscription._meta.concrete_fields if column.column != "id"]
        with transaction.atomic():
            cursor.execute("SET LOCAL session_replication_role = replica")
            for table in written:
                cursor.execute(f'DELETE FROM "{table}" WHERE id > %s', [high_water[table]])  # noqa: S608
            Subscription.objects.filter(plan__code=PLAN_CODE).update(
                current_period_start_at=PERIOD_START, current_period_end_at=AS_OF, next_billing_at=AS_OF
            )
        assignments = ", ".join(f'"{column}" = f."{column}"' for column in columns)
        started = time.perf_counter()
        # As the run does: an issued invoice's lines and taxes go in before the invoice (the database
        # refuses lines on an issued invoice; foreign keys are checked at commit).
        invoices = Invoice._meta.db_table
        order = sorted(written, key=lambda table: table == invoices)
        with transaction.atomic():
            for table in order:
                cursor.execute(f'INSERT INTO "{table}" SELECT * FROM "floor_{table}"')  # noqa: S608
            cursor.execute(
                f"UPDATE {subscriptions} s SET {assignments} FROM floor_subscriptions f WHERE s.id = f.id"  # noqa: S608
            )
        elapsed = time.perf_counter() - started
        for table in written:
            cursor.execute(f'DROP TABLE "floor_{table}"')
        cursor.execute("DROP TABLE floor_subscriptions")
    rows = sum(written.values()) + Subscription.objects.filter(plan__code=PLAN_CODE).count()
    print("  floor rows: " + ", ".join(f"{table} {count:,}" for table, count in sorted(written.items())))
    return elapsed, rows


def _wait(run_id: int, timeout: float = 900):
    from apps.invoices.models import BillingRun

    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        run = BillingRun.objects.get(pk=run_id)
        if run.finished_at is not None:
            return run
        if run.processed_count != last:
            print(f"  … {run.processed_count:,} / {run.due_count:,} processed", flush=True)
            last = run.processed_count
        time.sleep(0.5)
    raise SystemExit(f"billing run {run_id} did not finish in {timeout:.0f} s")


def _start_worker(options) -> subprocess.Popen:
    env = {
        **os.environ,
        **_server_environment(options.database_url),
        "CELERY_BROKER_URL": options.broker_url,
        "BILLING_RUN_CHUNK_SIZE": str(options.chunk_size),
        "INVOICE_DRAFT_GRACE_HOURS": str(options.grace_hours),
    }
    log = open("/tmp/bench-billing-worker.log", "wb")  # noqa: SIM115 - the process owns it
    process = subprocess.Popen(  # noqa: S603 - our own command line
        [
            sys.executable, "-m", "celery", "-A", "billing_portal", "worker", "-Q", "billing",
            "--concurrency", str(options.concurrency), "--without-gossip", "--without-mingle",
            "--without-heartbeat", "--loglevel", "WARNING",
        ],  # fmt: skip
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    from billing_portal.celery import app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=1.0)
        if len(replies) >= 1:
            time.sleep(1.0)  # let the pool's processes come up
            return process
        if process.poll() is not None:
            raise SystemExit("the Celery worker stopped; see /tmp/bench-billing-worker.log")
    _stop_worker(process)
    raise SystemExit("the Celery worker did not start; see /tmp/bench-billing-worker.log")


class _RolledBack(Exception):
    pass


def _paths_sample(size: int = 50) -> tuple[int, int]:
    """Which path the run's chunks take: a chunk of `size` due subscriptions billed and rolled back;
    how many it billed in bulk and how many it left to the one-by-one path."""
    from django.db import transaction

    from apps.billing.services.billing_chunk import billing_chunk_bill
    from apps.subscriptions.models import Subscription

    ids = list(Subscription.objects.filter(plan__code=PLAN_CODE).order_by("pk").values_list("pk", flat=True)[:size])
    try:
        with transaction.atomic():
            outcome = billing_chunk_bill(subscription_ids=ids, now=AS_OF)
            raise _RolledBack
    except _RolledBack:
        pass
    return len(outcome.billed_subscription_ids), len(outcome.one_by_one_ids)


def _stop_worker(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def _fixtures(count: int, meter: str = "none") -> None:
    """The plan, `count` customers with one subscription each and their usage rollups; or, when they
    exist, a reset of the previous run (invoices removed, subscriptions back to the period)."""
    from django.db import connection

    from apps.accounts.models import Customer
    from apps.billing.services.billing_chunk import _insert
    from apps.catalog.models import BillableMetric, Plan, PlanVersion
    from apps.catalog.tests.factories import PlanFactory, add_charge
    from apps.invoices.models import TaxRate
    from apps.subscriptions.models import Subscription
    from apps.usage.models import UsageRollup

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE invoices_invoiceevent, invoices_invoicetax, invoices_invoiceline, invoices_invoiceitem, "
            "invoices_invoice, invoices_billingrun, invoices_invoicenumbersequence CASCADE"
        )
    Subscription.objects.filter(plan__code=PLAN_CODE).update(
        current_period_start_at=PERIOD_START, current_period_end_at=AS_OF, next_billing_at=AS_OF
    )
    if Subscription.objects.filter(plan__code=PLAN_CODE).count() == count:
        return
    if Plan.objects.filter(code=PLAN_CODE).exists():
        raise SystemExit("the database holds fixtures of another size: drop it or pass another --database-url")

    metrics = {}
    for code, aggregation, field_name in (
        ("bench_api", "count", ""),
        ("bench_storage", "sum", "gb"),
        ("bench_seats", "max", "seats"),
    ):
        metrics[code], _ = BillableMetric.objects.get_or_create(
            code=code,
            defaults={"name": code.replace("_", " ").title(), "aggregation": aggregation, "field_name": field_name},
        )
    TaxRate.objects.get_or_create(name="VAT", country="GB", region="", defaults={"percentage": Decimal("20")})
    plan = PlanFactory(prices=[], name="Bench hybrid", code=PLAN_CODE)
    version = PlanVersion.objects.create(plan=plan, number=1)
    add_charge(version, name="Platform fee", price_model="flat", amount=Decimal("49"))
    add_charge(
        version, name="API calls", kind="usage", metric_code="bench_api", price_model="graduated",
        tiers=[("10000", "0", "0"), (None, "0.0004", "0")],
    )  # fmt: skip
    add_charge(
        version,
        name="Storage",
        kind="usage",
        metric_code="bench_storage",
        price_model="per_unit",
        amount=Decimal("0.023"),
    )
    add_charge(
        version, name="Seats", kind="usage", metric_code="bench_seats", price_model="volume",
        tiers=[("10", "8", "0"), (None, "6", "0")],
    )  # fmt: skip
    if meter != "none":
        _extra_charge(version, meter)

    written = datetime.now(UTC)
    customer_ids = _insert(
        Customer,
        [
            {"created_at": written, "updated_at": written, "external_id": f"bench_bill_{n:06d}",
             "name": f"Bench customer {n}", "email": f"bill{n}@customer.example", "country": "GB", "currency": "USD",
             "city": "London"}
            for n in range(count)
        ],
        returning_ids=True,
    )  # fmt: skip
    _insert(
        Subscription,
        [
            {"created_at": written, "updated_at": written, "customer_id": customer_id, "plan_id": plan.pk,
             "plan_version_id": version.pk, "quantity": 1, "currency": "USD", "status": "active",
             "billing_anchor_at": datetime(2026, 1, 1, tzinfo=UTC), "started_at": datetime(2026, 1, 1, tzinfo=UTC),
             "current_period_start_at": PERIOD_START, "current_period_end_at": AS_OF, "next_billing_at": AS_OF}
            for customer_id in customer_ids
        ],
    )  # fmt: skip
    # Usage: for each customer and metric, 6 hourly rollups spread over the month.
    rows = []
    for n, customer_id in enumerate(customer_ids):
        for day in range(0, 30, 10):
            for hour in (3, 15):
                at = PERIOD_START.replace(day=day + 1, hour=hour)
                calls = 100 + (n * 7 + day * 13 + hour) % 900
                rows.append(_rollup(customer_id, metrics["bench_api"].pk, at, calls, Decimal(calls), None))
                gb = Decimal(n % 50 + day) / 10
                rows.append(_rollup(customer_id, metrics["bench_storage"].pk, at, 1, gb, gb))
                seats = Decimal(1 + (n + day + hour) % 25)
                rows.append(_rollup(customer_id, metrics["bench_seats"].pk, at, 1, seats, seats))
        if len(rows) >= 200_000:
            _insert(UsageRollup, rows)
            rows = []
    _insert(UsageRollup, rows)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _extra_charge(version, meter: str) -> None:
    """A fourth usage charge of the kind `meter` (module docstring)."""
    from apps.catalog.models import BillableMetric, Charge, Price

    metric_fields = {
        "weighted_sum": {"aggregation": "weighted_sum", "field_name": "gb", "time_unit": "hour"},
        "percentile": {"aggregation": "percentile", "field_name": "mb", "percentile": 95, "interval_minutes": 5},
        "peak": {"aggregation": "sum", "field_name": "gb"},
        "pooled": {"aggregation": "sum", "field_name": "mb"},
        "dimension": {"aggregation": "sum", "field_name": "gb", "group_by": "region"},
        "unique_count": {"aggregation": "unique_count", "field_name": "device"},
        "latest": {"aggregation": "latest", "field_name": "seats"},
        "percentage": {"aggregation": "sum", "field_name": "amount"},
    }[meter]
    BillableMetric.objects.create(code=f"bench_{meter}", name=f"Bench {meter}", **metric_fields)
    charge_fields = {
        "peak": {"peak_start_hour": 9, "peak_end_hour": 18},
        "pooled": {"pooled_allowance": 500},
        "percentage": {"price_model": "percentage"},
    }
    charge = Charge.objects.create(
        plan_version=version, position=5, name=f"Extra {meter}", kind="usage",
        metric_code=f"bench_{meter}", **{"price_model": "per_unit", **charge_fields.get(meter, {})},
    )  # fmt: skip
    if meter == "percentage":
        Price.objects.create(
            charge=charge, currency="USD", amount=Decimal(0), percentage=Decimal("2.9"), fixed_fee=Decimal("0.30")
        )
    else:
        Price.objects.create(charge=charge, currency="USD", amount=Decimal("0.01"))
    if meter == "dimension":
        Price.objects.create(charge=charge, currency="USD", amount=Decimal("0.02"), dimension_values={"region": "eu"})
    if meter == "peak":
        Price.objects.create(charge=charge, currency="USD", amount=Decimal("0.02"), time_window="peak")


def _rollup(
    customer_id: int, metric_id: int, hour: datetime, count: int, total: Decimal, highest: Decimal | None
) -> dict:
    return {
        "customer_id": customer_id, "metric_id": metric_id, "group_key": "", "hour": hour, "event_count": count,
        "value_sum": total, "value_max": highest, "latest_at": hour, "latest_event_id": 0, "latest_value": highest,
    }  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
