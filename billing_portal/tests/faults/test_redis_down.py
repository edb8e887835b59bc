"""Redis (the Celery broker, and the shared cache the API's rate limits count in) goes down: the API
still ingests usage events and serves staff, a billing run still bills, and once Redis is back the
bills whose rendering could not be queued are rendered and emailed exactly once.

Runs its own redis-server on a free port (stopped and started by the test) and a throwaway PostgreSQL
cluster; the product runs in subprocesses: `manage.py billing_run`, the web server, a Celery worker."""

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import requests

from .services import (
    ThrowawayRedis,
    django_environment,
    django_process,
    free_port,
    http_port_open,
    run_django,
    wait_for,
)

pytestmark = [pytest.mark.faults]

SWEEP_TASK = "apps.invoices.tasks.invoice_render_missing_pdfs_task"


@pytest.fixture
def redis_server():
    server = ThrowawayRedis()  # not started: it is down at first
    yield server
    server.stop()


def _seed(environment: dict[str, str], *args: str) -> dict:
    result = run_django(["-m", "billing_portal.tests.faults.seed", *args], environment)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _events(postgres, database: str, event_type: str) -> list[int]:
    with postgres.connect(database) as conn:
        rows = conn.execute("SELECT invoice_id FROM invoices_invoiceevent WHERE type = %s", (event_type,)).fetchall()
    return sorted(row[0] for row in rows)


def _sweep(environment: dict[str, str]) -> None:
    result = run_django(["-m", "celery", "-A", "billing_portal", "call", SWEEP_TASK], environment, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]


def test_with_redis_down_the_api_ingests_and_bills_are_rendered_once_it_is_back(
    postgres, fault_database, media, redis_server
):
    environment = django_environment(
        DATABASE_URL=postgres.url(fault_database),
        MEDIA_ROOT=str(media),
        CELERY_BROKER_URL=redis_server.url(0),
        CACHE_URL=redis_server.url(1),
        BILLING_RUN_FAN_OUT="false",
        INVOICE_PDF_SWEEP_MIN_AGE_MINUTES="0",
        INVOICE_PDF_SWEEP_MAX_AGE_DAYS="3650",  # the run bills as of February 2026
        API_THROTTLE_USER_RATE="1000/minute",
    )
    seeded = _seed(environment, "ingestion")
    subscription_ids = _seed(environment, "subscriptions", "3")["subscription_ids"]

    # Redis is down. A billing run bills and finalizes; the bills cannot be queued (recorded as such).
    run = run_django(["manage.py", "billing_run", "--as-of", "2026-02-01T12:00:00+00:00"], environment)
    assert run.returncode == 0, run.stderr[-3000:]
    with postgres.connect(fault_database) as conn:
        invoices = conn.execute("SELECT id, pdf FROM invoices_invoice WHERE number IS NOT NULL ORDER BY id").fetchall()
    invoice_ids = [invoice_id for invoice_id, _ in invoices]
    assert len(invoice_ids) == len(subscription_ids)
    assert {pdf for _, pdf in invoices} == {""}
    assert _events(postgres, fault_database, "pdf_failed") == invoice_ids

    # The API still ingests usage events and serves staff (the rate limits let requests through).
    port = free_port()
    server_args = ["manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--nothreading"]
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    batch = {
        "events": [
            {"transaction_id": f"r-{n}", "external_customer_id": "acme", "metric_code": "api_calls",
             "timestamp": an_hour_ago}
            for n in range(25)
        ]
    }  # fmt: skip
    with django_process(server_args, environment, media / "server.log"):
        wait_for(lambda: http_port_open(port), timeout=60, what="the web server")
        ingested = requests.post(
            f"http://127.0.0.1:{port}/api/v1/events/batch", json=batch, timeout=30,
            headers={"Authorization": f"Bearer {seeded['api_key']}"},
        )  # fmt: skip
        staff = {"Authorization": f"Token {seeded['token']}"}
        listed = requests.get(f"http://127.0.0.1:{port}/api/v1/invoices", timeout=30, headers=staff)
    assert (ingested.status_code, ingested.json()) == (200, {"accepted": 25, "duplicates": 0, "rejected": []})
    assert listed.status_code == 200
    assert listed.json()["count"] == len(invoice_ids)
    with postgres.connect(fault_database) as conn:
        assert conn.execute("SELECT count(*) FROM usage_usageevent").fetchone() == (25,)

    # Redis is back: a worker, and the sweep (which beat sends every 10 minutes) renders each missing
    # bill and emails it; a second sweep finds nothing left to do.
    redis_server.start()
    worker_log = media / "worker.log"
    worker_args = ["-m", "celery", "-A", "billing_portal", "worker", "-Q", "pdf,email", "--concurrency", "1",
                   "--without-gossip", "--without-mingle", "--loglevel", "INFO"]  # fmt: skip
    with django_process(worker_args, {**environment, "LOG_LEVEL": "INFO"}, worker_log):
        _sweep(environment)
        wait_for(lambda: _events(postgres, fault_database, "emailed") == invoice_ids, timeout=120,
                 what="every bill rendered and emailed")  # fmt: skip
        _sweep(environment)
        wait_for(
            lambda: len(re.findall(rf"Task {SWEEP_TASK}\[[^\]]+\] succeeded", worker_log.read_text())) == 2,
            timeout=60,
            what="the second sweep",
        )

    assert _events(postgres, fault_database, "pdf_rendered") == invoice_ids  # once each
    assert _events(postgres, fault_database, "emailed") == invoice_ids
    with postgres.connect(fault_database) as conn:
        pdfs = conn.execute("SELECT pdf FROM invoices_invoice WHERE number IS NOT NULL").fetchall()
    assert all(pdf.startswith("invoices/") and (media / pdf).exists() for (pdf,) in pdfs)
    assert "succeeded in" in worker_log.read_text() and ": 0" in worker_log.read_text()
