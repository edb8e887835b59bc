"""PostgreSQL crashes (`pg_ctl stop -m immediate`) and comes back during a billing run and during usage
ingestion: after the retry nothing is lost and nothing is counted or billed twice.

Each test runs a throwaway PostgreSQL cluster of its own (never the machine's shared server) and the
product in subprocesses against it: `manage.py billing_run`, and the web server for the API."""

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from .services import (
    django_environment,
    django_process,
    free_port,
    http_port_open,
    run_django,
    wait_for,
)

pytestmark = [pytest.mark.faults]

AS_OF = "2026-02-01T12:00:00+00:00"
SUBSCRIPTIONS = 120


def _environment(postgres, database: str, media, **overrides: str) -> dict[str, str]:
    return django_environment(DATABASE_URL=postgres.url(database), MEDIA_ROOT=str(media), **overrides)


def _seed(environment: dict[str, str], *args: str) -> dict:
    result = run_django(["-m", "billing_portal.tests.faults.seed", *args], environment)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _one(postgres, database: str, sql: str, params=()):
    with postgres.connect(database) as conn:
        return conn.execute(sql, params).fetchone()


def test_a_billing_run_cut_off_by_a_database_crash_bills_everything_once_after_a_rerun(postgres, fault_database, media):
    environment = _environment(postgres, fault_database, media, BILLING_RUN_FAN_OUT="false",
                               BILLING_RUN_CHUNK_SIZE="5")  # fmt: skip
    subscription_ids = _seed(environment, "subscriptions", str(SUBSCRIPTIONS))["subscription_ids"]
    assert len(subscription_ids) == SUBSCRIPTIONS

    with django_process(["manage.py", "billing_run", "--as-of", AS_OF], environment, media / "run1.log") as first:
        wait_for(
            lambda: (_one(postgres, fault_database, "SELECT max(chunks_done) FROM invoices_billingrun")[0] or 0) >= 2,
            timeout=120,
            what="a few chunks billed",
        )
        # Hold the invoice number counter: the chunk in progress waits for it, mid-run, with its
        # invoices written but not committed. Then the database crashes under it.
        holder = postgres.connect(fault_database)
        holder.execute("SELECT 1 FROM invoices_invoicenumbersequence FOR UPDATE").fetchall()
        time.sleep(0.5)
        postgres.stop("immediate")
        first.wait(timeout=60)
    assert first.returncode != 0  # the run died with its database
    postgres.start()

    committed = _one(postgres, fault_database, "SELECT count(*) FROM invoices_invoice")[0]
    assert 0 < committed < SUBSCRIPTIONS, "the crash came too late or too early to test anything"
    interrupted = _one(postgres, fault_database, "SELECT finished_at FROM invoices_billingrun")
    assert interrupted == (None,)

    rerun = run_django(["manage.py", "billing_run", "--as-of", AS_OF], environment)
    assert rerun.returncode == 0, rerun.stderr[-3000:]

    with postgres.connect(fault_database) as conn:
        invoices = conn.execute("SELECT subscription_id, number FROM invoices_invoice ORDER BY number").fetchall()
        periods = conn.execute(
            "SELECT subscription_id, count(*) FROM invoices_invoicedperiod GROUP BY subscription_id"
        ).fetchall()
    assert sorted(subscription for subscription, _ in invoices) == sorted(subscription_ids)  # each once
    assert [number for _, number in invoices] == [f"INV-2026-{n:06d}" for n in range(1, SUBSCRIPTIONS + 1)]
    assert sorted(periods) == sorted((subscription, 1) for subscription in subscription_ids)


def _batch(number: int, size: int = 50) -> dict:
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    return {
        "events": [
            {
                "transaction_id": f"b{number}-{index}",
                "external_customer_id": "acme",
                "metric_code": "api_calls",
                "timestamp": an_hour_ago,
                "properties": {},
            }
            for index in range(size)
        ]
    }


def test_events_sent_while_the_database_restarts_are_stored_once_after_retries(postgres, fault_database, media):
    environment = _environment(postgres, fault_database, media, CONN_MAX_AGE="60")  # persistent, as in production
    api_key = _seed(environment, "ingestion")["api_key"]
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/v1/events/batch"
    headers = {"Authorization": f"Bearer {api_key}"}
    batches = 12
    outcomes: dict[int, list[int]] = {n: [] for n in range(batches)}

    server_args = ["manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--nothreading"]
    with django_process(server_args, environment, media / "server.log"):
        wait_for(lambda: http_port_open(port), timeout=60, what="the web server")

        def send(number: int) -> int:
            try:
                status = requests.post(url, json=_batch(number), headers=headers, timeout=30).status_code
            except requests.ConnectionError:
                status = 0
            outcomes[number].append(status)
            return status

        for number in range(4):
            assert send(number) == 200
        postgres.stop("immediate")
        for number in range(4, 8):
            assert send(number) == 503  # refused, nothing stored; the sender retries later
        postgres.start()
        for number in range(4, batches):
            wait_for(lambda n=number: send(n) == 200, timeout=60, what=f"batch {number} accepted", interval=0.5)
        # A sender that never saw its answers retries everything: all duplicates now.
        replays = [requests.post(url, json=_batch(n), headers=headers, timeout=30).json() for n in range(batches)]

    with postgres.connect(fault_database) as conn:
        stored = conn.execute("SELECT count(*), count(DISTINCT transaction_id) FROM usage_usageevent").fetchone()
        rolled_up = conn.execute("SELECT coalesce(sum(event_count), 0) FROM usage_usagerollup").fetchone()[0]
    assert stored == (batches * 50, batches * 50)
    assert rolled_up == batches * 50  # the hourly rollups count each event once
    assert all(reply == {"accepted": 0, "duplicates": 50, "rejected": []} for reply in replays)
    assert [outcomes[n][-1] for n in range(batches)] == [200] * batches
