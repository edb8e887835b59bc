"""Billing workers scale out as separate processes with separate connections, also behind a
connection pooler in transaction mode (PgBouncer `pool_mode = transaction`, fewer server connections
than worker processes, so consecutive transactions of one process land on different server
connections): a fanned-out billing run, started twice at once, bills every subscription exactly once
with gapless invoice numbers. Needs PostgreSQL, Redis and the `pgbouncer` program (Debian's package,
requirements/system-test.txt)."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from django.db import connection
from djmoney.money import Money

from apps.billing.tasks import billing_run_task
from apps.catalog.tests.factories import PlanFactory
from apps.invoices.models import BillingRun, Invoice, InvoicedPeriod
from apps.subscriptions.models import Subscription
from apps.subscriptions.periods import utc
from apps.subscriptions.tests.factories import make_subscription

from .test_worker_e2e import _broker, _empty_queues_or_skip, _start_worker, _stop_worker, _wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PgBouncer pools PostgreSQL connections"),
]

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
SUBSCRIPTIONS = 240


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def pgbouncer():
    """A PgBouncer in transaction mode in front of the test database: 2 server connections for every
    client. Yields the database URL through it. As root, it runs as the `postgres` system user
    (PgBouncer refuses root), from a folder of its own."""
    if not Path(PGBOUNCER).exists():
        if os.environ.get("CI"):
            raise AssertionError("pgbouncer is not installed (requirements/system-test.txt)")
        pytest.skip("pgbouncer is not installed")
    as_root = os.geteuid() == 0
    folder = Path(tempfile.mkdtemp(prefix="bp-pgbouncer-"))
    if as_root:
        shutil.chown(folder, user="postgres")
    db = connection.settings_dict
    port = _free_port()
    (folder / "users.txt").write_text(f'"{db["USER"]}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder / 'users.txt'}\n"
        "pool_mode = transaction\ndefault_pool_size = 2\nmax_client_conn = 100\n"
        f"logfile = {folder / 'pgbouncer.log'}\npidfile = {folder / 'pgbouncer.pid'}\n"
    )
    command = [PGBOUNCER, str(folder / "pgbouncer.ini")]
    process = subprocess.Popen(  # noqa: S603 - the pooler with our own configuration
        ["runuser", "-u", "postgres", "--", *command] if as_root else command,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        else:
            raise AssertionError("pgbouncer did not start")
        yield f"postgres://{db['USER']}@127.0.0.1:{port}/{db['NAME']}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
        log = folder / "pgbouncer.log"
        print(log.read_text()[-2000:] if log.exists() else "no pgbouncer log")  # shown when the test fails
        shutil.rmtree(folder, ignore_errors=True)


def test_two_workers_behind_pgbouncer_bill_every_subscription_once_with_gapless_numbers(tmp_path, pgbouncer):
    _empty_queues_or_skip()
    plan = PlanFactory(prices=[Money("12.00", "USD")])
    for _ in range(SUBSCRIPTIONS):
        make_subscription(plan=plan, started_at=utc(2026, 2, 1, 12))
    # Persistent connections as in production: psycopg would prepare statements on them.
    pooled = {"DATABASE_TRANSACTION_POOLING": "true", "BILLING_RUN_CHUNK_SIZE": "10", "CONN_MAX_AGE": "600"}
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    workers = [
        _start_worker(log, queues="celery,billing", concurrency=2, database_url=pgbouncer, extra_env=pooled)
        for log in logs
    ]
    try:
        _wait_for(lambda: all("ready." in log.read_text() for log in logs), timeout=60, what="both workers ready")
        # The daily run started twice at once (two schedulers, a retry): one bills, the other finds
        # nothing left or loses every subscription's lock.
        with _broker() as broker:
            for _ in range(2):
                billing_run_task.apply_async(kwargs={"as_of": "2026-02-01T12:00:00+00:00"}, connection=broker)
        _wait_for(
            lambda: BillingRun.objects.count() == 2 and not BillingRun.objects.filter(finished_at=None).exists(),
            timeout=240,
            what="both billing runs finished",
        )
        time.sleep(1)  # anything still in flight would show up as an extra invoice below
    finally:
        for process, log in zip(workers, logs, strict=True):
            _stop_worker(process, log)

    runs = list(BillingRun.objects.all())
    assert sum(run.failed_count for run in runs) == 0, [run.errors for run in runs]
    assert sum(run.invoiced_count for run in runs) == SUBSCRIPTIONS
    invoices = Invoice.objects.all()
    assert invoices.count() == SUBSCRIPTIONS
    assert sorted(invoices.values_list("subscription_id", flat=True)) == sorted(
        Subscription.objects.values_list("pk", flat=True)
    )
    assert InvoicedPeriod.objects.count() == SUBSCRIPTIONS
    numbers = sorted(invoices.values_list("number", flat=True))
    assert numbers == [f"INV-2026-{n:06d}" for n in range(1, SUBSCRIPTIONS + 1)]
    # Both workers' processes did some of the work (the run really was spread over them).
    worked = [log.read_text().count("succeeded") for log in logs]
    assert all(count > 0 for count in worked), worked
