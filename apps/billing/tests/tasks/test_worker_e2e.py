"""The whole monthly cycle through a real Celery worker process on Redis and PostgreSQL:
the scheduled billing task invoices due subscriptions, finalizes them, the worker renders each
PDF bill from a `pdf` queue task and then emails it once from an `email` queue task (the worker's
console email backend prints it)."""

import io
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection
from djmoney.money import Money
from pypdf import PdfReader

from apps.billing.tasks import billing_run_task
from apps.catalog.tests.factories import PlanFactory
from apps.invoices.constants import BillingRunStatus, InvoiceEventType, InvoiceStatus
from apps.invoices.models import BillingRun, Invoice, InvoiceEvent
from apps.subscriptions.periods import utc
from apps.subscriptions.tests.factories import make_subscription
from billing_portal.celery import app as celery_app

BROKER_URL = settings.E2E_CELERY_BROKER_URL
# Every broker key of this test process (and of the workers it starts) carries this prefix: parallel
# test workers and other runs on the machine share the Redis database but never a queue.
KEY_PREFIX = f"e2e-{os.getpid()}-{secrets.token_hex(4)}:"
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the worker process needs a shared PostgreSQL database"
    ),
]


def _empty_queues_or_skip() -> None:
    """Start with empty queues: delete this process's broker keys (nobody else's)."""
    client = redis.Redis.from_url(BROKER_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"Redis is not reachable at {BROKER_URL}")
    keys = list(client.scan_iter(match=f"{KEY_PREFIX}*"))
    if keys:
        client.delete(*keys)


def _broker():
    """A connection that publishes where the started workers consume (same Redis, same key prefix)."""
    return celery_app.connection_for_write(url=BROKER_URL, transport_options={"global_keyprefix": KEY_PREFIX})


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _start_worker(
    log_path: Path,
    *,
    queues: str = "celery,billing,pdf,email",
    concurrency: int = 2,
    database_url: str = "",
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen:
    env = {
        **os.environ,
        **(extra_env or {}),
        "DJANGO_SETTINGS_MODULE": "billing_portal.settings.local",
        "DATABASE_URL": database_url or _database_url(),
        "CELERY_BROKER_URL": BROKER_URL,
        "CELERY_BROKER_KEY_PREFIX": KEY_PREFIX,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "BILLING_RUN_CHUNK_SIZE": os.environ.get("E2E_CHUNK_SIZE", "500"),
    }
    return subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "billing_portal",
            "worker",
            "-Q",
            queues,
            "--concurrency",
            str(concurrency),
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ],  # fmt: skip
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: killing the group kills the pool too
    )


def _stop_worker(process: subprocess.Popen, log_path: Path) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    print(log_path.read_text()[-3000:])  # shown by pytest only when the test fails


@pytest.fixture
def worker(tmp_path):
    _empty_queues_or_skip()
    log_path = tmp_path / "worker.log"
    process = _start_worker(log_path)
    yield process
    _stop_worker(process, log_path)


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def test_monthly_cycle_runs_on_a_real_worker(worker):
    plan = PlanFactory(prices=[Money("49.00", "USD")])
    subscriptions = [make_subscription(plan=plan, quantity=q, started_at=utc(2026, 1, 31, 12)) for q in (1, 2)]

    with _broker() as broker:
        billing_run_task.apply_async(kwargs={"as_of": "2026-03-01T00:00:00+00:00"}, connection=broker)

    run = _wait_for(
        lambda: BillingRun.objects.filter(finished_at__isnull=False).first(), timeout=60, what="the billing run"
    )
    assert (run.status, run.due_count, run.invoiced_count) == (BillingRunStatus.SUCCEEDED, 2, 4)

    invoices = _wait_for(
        lambda: (rows := list(Invoice.objects.exclude(pdf=""))) and len(rows) == 4 and rows,
        timeout=60,
        what="four rendered PDF bills",
    )
    assert sorted(i.number for i in invoices) == [f"INV-2026-{n:06d}" for n in (1, 2, 3, 4)]
    for invoice in invoices:
        assert invoice.status == InvoiceStatus.OPEN
        assert invoice.subscription_id in {s.pk for s in subscriptions}
        text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(invoice.pdf.read())).pages)
        assert invoice.number in text
        assert f"{invoice.total.amount:,.2f}" in text
    assert {(i.period_start_at, i.period_end_at) for i in invoices} == {
        (utc(2026, 1, 31, 12), utc(2026, 2, 28, 12)),
        (utc(2026, 2, 28, 12), utc(2026, 3, 31, 12)),
    }

    emailed = _wait_for(
        lambda: (rows := list(InvoiceEvent.objects.filter(type=InvoiceEventType.EMAILED))) and len(rows) == 4 and rows,
        timeout=60,
        what="four bills emailed",
    )
    for event in emailed:
        assert event.data["recipients"] == [event.invoice.customer.email]
        assert event.data["pdf_sha256"] == event.invoice.pdf_sha256
    time.sleep(1)  # a duplicate send would have been recorded by now
    assert InvoiceEvent.objects.filter(type=InvoiceEventType.EMAILED).count() == 4


def test_a_worker_killed_mid_run_loses_nothing_and_a_rerun_bills_the_rest_once(tmp_path, monkeypatch):
    """SIGKILL the whole worker (pool included) while a fanned-out run is half done; a new worker and
    a new run bill what was left: every subscription exactly once, invoice numbers without a gap."""
    _empty_queues_or_skip()
    monkeypatch.setenv("E2E_CHUNK_SIZE", "10")
    plan = PlanFactory(prices=[Money("12.00", "USD")])
    subscriptions = [make_subscription(plan=plan, started_at=utc(2026, 2, 1, 12)) for _ in range(300)]

    first_log = tmp_path / "first.log"
    first = _start_worker(first_log, queues="billing", concurrency=2)
    try:
        with _broker() as broker:
            billing_run_task.apply_async(kwargs={"as_of": "2026-02-01T12:00:00+00:00"}, connection=broker)
        _wait_for(
            lambda: BillingRun.objects.filter(chunks_done__gte=2).exists(), timeout=120, what="a few chunks billed"
        )
        os.killpg(first.pid, signal.SIGKILL)  # no warm shutdown: tasks in flight die with their transaction
        first.wait(timeout=20)
    finally:
        _stop_worker(first, first_log)
    interrupted = BillingRun.objects.get()
    billed_before = Invoice.objects.count()
    assert interrupted.finished_at is None
    assert 0 < billed_before < len(subscriptions), "the kill came too late or too early to test anything"

    second_log = tmp_path / "second.log"
    second = _start_worker(second_log, queues="billing", concurrency=2)
    try:
        with _broker() as broker:
            billing_run_task.apply_async(kwargs={"as_of": "2026-02-01T12:00:00+00:00"}, connection=broker)
        rerun = _wait_for(
            lambda: BillingRun.objects.exclude(pk=interrupted.pk).filter(finished_at__isnull=False).first(),
            timeout=180,
            what="the re-run",
        )
        # Chunks of the first run still queued (never delivered to the dead worker) run too: whichever
        # chunk locks a subscription first bills it, the other skips it.
        _wait_for(lambda: Invoice.objects.count() >= len(subscriptions), timeout=120, what="every subscription billed")
        time.sleep(2)  # anything still in flight would show up as an extra invoice below
    finally:
        _stop_worker(second, second_log)

    assert rerun.failed_count == 0
    invoices = Invoice.objects.all()
    assert invoices.count() == len(subscriptions)
    assert sorted(invoices.values_list("subscription_id", flat=True)) == sorted(s.pk for s in subscriptions)
    numbers = sorted(invoices.values_list("number", flat=True))
    assert numbers == [f"INV-2026-{n:06d}" for n in range(1, len(subscriptions) + 1)]
    assert rerun.invoiced_count <= len(subscriptions) - billed_before
