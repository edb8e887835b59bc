"""Profile: where one chunk of the billing run spends its time, per 1,000 invoices.

Run after `bench/billing_run.py` has written its fixtures (the same database; `--paths-only` is
enough). Bills chunks of due subscriptions in this process, as a worker does, and rolls each back
(the deferred foreign-key checks run first, as at commit), so the fixtures stay due and runs can
repeat. For each step of the bulk path it prints, per 1,000 invoices: this process's CPU time, the
CPU time of the PostgreSQL backend serving it (read from /proc, so the database must run on this
machine) and the wall time. CPU times hardly move with the load of a shared machine; wall times do.

    .venv/bin/python bench/billing_chunk_profile.py --database-url postgres://…/bp_bench_billing
    .venv/bin/python bench/billing_chunk_profile.py --cprofile 30      # and the 30 costliest functions
"""

import argparse
import cProfile
import pstats
import sys
import time
from collections import defaultdict
from contextlib import contextmanager

from common import django_setup

AS_OF_DEFAULT = "2026-11-01T00:00:00+00:00"
TICKS = 100  # clock ticks per second of /proc/<pid>/stat (os.sysconf("SC_CLK_TCK") on Linux)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bp_bench_billing")
    parser.add_argument("--chunks", type=int, default=4, help="chunks billed and rolled back (default: %(default)s)")
    parser.add_argument("--chunk-size", type=int, default=500, help="(default: %(default)s)")
    parser.add_argument("--cprofile", type=int, default=0, help="also print the N costliest functions (cumulative)")
    parser.add_argument(
        "--dump", default="", help="write every row the chunks wrote (ids and write times left out) to this file"
    )
    options = parser.parse_args()
    django_setup(options.database_url)

    import os
    from datetime import datetime

    from django.db import connection, transaction

    from apps.billing.services import billing_chunk
    from apps.subscriptions.models import Subscription

    global TICKS
    TICKS = os.sysconf("SC_CLK_TCK")
    now = datetime.fromisoformat(AS_OF_DEFAULT)
    ids = list(
        Subscription.objects.due_for_billing(now)
        .order_by("pk")
        .values_list("pk", flat=True)[: options.chunks * options.chunk_size]
    )
    if not ids:
        raise SystemExit("no due subscriptions: run bench/billing_run.py --paths-only first")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]

    steps: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])

    @contextmanager
    def step(name: str):
        # Steps named "(Python)" send nothing to the database: its CPU time is not read for them.
        database = not name.endswith("(Python)")
        wall, cpu, db = time.perf_counter(), time.process_time(), _backend_cpu(backend) if database else 0.0
        try:
            yield
        finally:
            totals = steps[name]
            totals[0] += time.process_time() - cpu
            totals[1] += _backend_cpu(backend) - db if database else 0.0
            totals[2] += time.perf_counter() - wall

    def timed(name, function):
        def wrapper(*args, **kwargs):
            label = name(*args, **kwargs) if callable(name) else name
            with step(label):
                return function(*args, **kwargs)

        return wrapper

    patches = {
        "_load_versions": "read: plan versions",
        "_load_metrics": "read: metrics",
        "_with_waiting_work": "read: waiting work (one by one?)",
        "usage_billing_lock_many": "read: usage locks",
        "usage_aggregate_many": "read: usage",
        "usage_aggregate_by_hours_many": "read: usage by hours",
        "active_tax_rates": "read: tax rates",
        "_compute": "compute: usage and tax-rate reads, lines, taxes, totals",
        "invoice_numbers_allocate": "write: invoice numbers",
        "_issue": "write: issue fields (Python)",
        "_advance_periods": "write: subscriptions UPDATE",
    }
    for attribute, label in patches.items():
        setattr(billing_chunk, attribute, timed(label, getattr(billing_chunk, attribute)))
    writer = "_insert_rows" if hasattr(billing_chunk, "_insert_rows") else "_insert"
    original_insert = getattr(billing_chunk, writer)
    setattr(billing_chunk, writer, timed(lambda model, *a, **k: f"write: COPY {model._meta.db_table}", original_insert))
    original_allocate = billing_chunk._allocate_ids
    billing_chunk._allocate_ids = timed("write: ids from sequence", original_allocate)

    profiler = cProfile.Profile() if options.cprofile else None
    invoices = 0
    dumped: list[str] = []

    class RolledBack(Exception):
        pass

    with step("whole chunk"):
        for start in range(0, len(ids), options.chunk_size):
            chunk = ids[start : start + options.chunk_size]
            try:
                with transaction.atomic():
                    if profiler:
                        profiler.enable()
                    with step("bulk path (billing_chunk_bill)"):
                        outcome = billing_chunk.billing_chunk_bill(subscription_ids=chunk, now=now)
                    with step("commit: deferred foreign keys"):
                        with connection.cursor() as cursor:
                            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                    if profiler:
                        profiler.disable()
                    invoices += len(outcome.invoice_ids)
                    if options.dump:
                        dumped += _written_rows(outcome.invoice_ids)
                    if outcome.one_by_one_ids or outcome.errors:
                        print(f"  chunk left {len(outcome.one_by_one_ids)} one by one, {len(outcome.errors)} errors")
                    raise RolledBack
            except RolledBack:
                pass
    if options.dump:
        with open(options.dump, "w") as out:
            out.write("\n".join(dumped) + "\n")
        print(f"{len(dumped):,} rows written to {options.dump}")
    # The compute step's own Python work: without the reads it makes (each timed on its own).
    reads = ("read: usage", "read: usage by hours", "read: tax rates")
    compute = steps.pop("compute: usage and tax-rate reads, lines, taxes, totals")
    steps["compute: lines, taxes, totals (Python)"] = [
        compute[0] - sum(steps[name][0] for name in reads if name in steps),
        compute[1] - sum(steps[name][1] for name in reads if name in steps),
        compute[2] - sum(steps[name][2] for name in reads if name in steps),
    ]
    per = 1000 / max(1, invoices)
    print(f"{invoices:,} invoices in {len(ids) // options.chunk_size} chunks; ms per 1,000 invoices:")
    print(f"{'step':46} {'Python CPU':>11} {'PG CPU':>9} {'wall':>9}")
    for name, (cpu, db, wall) in sorted(steps.items(), key=lambda item: -item[1][2]):
        print(f"{name:46} {cpu * 1000 * per:11.0f} {db * 1000 * per:9.0f} {wall * 1000 * per:9.0f}")
    if profiler:
        profiler.dump_stats("/tmp/billing_chunk.prof")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(options.cprofile)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(options.cprofile)


def _written_rows(invoice_ids: list[int]) -> list[str]:
    """The rows written for these invoices, as text, keyed by subscription (not by id), without the
    columns that differ from one run to the next (ids, write times)."""
    from django.db import connection

    queries = {
        "invoice": "SELECT i.subscription_id, to_jsonb(i) - 'id' - 'created_at' - 'updated_at' "
        "FROM invoices_invoice i WHERE i.id = ANY(%s)",
        "line": "SELECT i.subscription_id, to_jsonb(l) - 'id' - 'invoice_id' FROM invoices_invoiceline l "
        "JOIN invoices_invoice i ON i.id = l.invoice_id WHERE i.id = ANY(%s)",
        "tax": "SELECT i.subscription_id, to_jsonb(t) - 'id' - 'invoice_id' FROM invoices_invoicetax t "
        "JOIN invoices_invoice i ON i.id = t.invoice_id WHERE i.id = ANY(%s)",
        "period": "SELECT i.subscription_id, to_jsonb(p) - 'id' - 'invoice_id' - 'created_at' - 'updated_at' "
        "FROM invoices_invoicedperiod p JOIN invoices_invoice i ON i.id = p.invoice_id WHERE i.id = ANY(%s)",
        "event": "SELECT i.subscription_id, to_jsonb(e) - 'id' - 'invoice_id' - 'created_at' - 'updated_at' "
        "FROM invoices_invoiceevent e JOIN invoices_invoice i ON i.id = e.invoice_id WHERE i.id = ANY(%s)",
        "subscription": "SELECT s.id, to_jsonb(s) - 'updated_at' FROM subscriptions_subscription s "
        "JOIN invoices_invoice i ON i.subscription_id = s.id WHERE i.id = ANY(%s)",
    }
    rows = []
    with connection.cursor() as cursor:
        for name, sql in queries.items():
            cursor.execute(sql, [list(invoice_ids)])
            rows += [f"{name} {subscription_id} {value}" for subscription_id, value in cursor.fetchall()]
    return sorted(rows)


def _backend_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


if __name__ == "__main__":
    sys.exit(main())
