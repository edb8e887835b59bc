"""Benchmark: batch ingestion of fresh usage events through POST /api/v1/events/batch.

Target: at least 40,000 events/s durably committed and deduplicated, p95 at most 100 ms per
1,000-event request (PostgreSQL, gunicorn, 2 cores, the client on the same machine).

Besides wall-clock figures it prints the CPU time the server used per 1,000 events (gunicorn's
processes, and the PostgreSQL backends of its connections), which varies much less than wall time on
a machine that other work shares. `bench/usage_ingest_breakdown.py` shows where the time of one
request goes.
"""

import argparse
import json
import random
import uuid
from datetime import UTC, datetime, timedelta

from common import (
    METRIC_CODE,
    Server,
    add_common_arguments,
    cpu_seconds,
    cpu_used,
    database_backend_pids,
    django_setup,
    fixtures,
    latency_summary,
    percentile,
    send_batches,
    verdict,
)

TARGET_EVENTS_PER_SECOND = 40_000
TARGET_P95_MS = 100
REGIONS = ["eu", "us", "ap", "sa"]


def make_bodies(*, run: str, batches: int, batch_size: int, customers: list[str], seed: int) -> list[bytes]:
    """`batches` JSON bodies of `batch_size` fresh events (transaction ids `<run>-<batch>-<n>`), dated over
    the last six hours."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    bodies = []
    for batch in range(batches):
        events = [
            {
                "transaction_id": f"{run}-{batch}-{number}",
                "external_customer_id": rng.choice(customers),
                "metric_code": METRIC_CODE,
                "timestamp": (now - timedelta(seconds=rng.randrange(6 * 3600))).isoformat().replace("+00:00", "Z"),
                "properties": {"region": rng.choice(REGIONS), "gb": f"{rng.randrange(1, 10_000) / 100:.2f}"},
            }
            for number in range(batch_size)
        ]
        bodies.append(json.dumps({"events": events}).encode())
    return bodies


def alerts_set(customers: list[str], *, active: bool) -> None:
    """One spend alert per bench customer (a threshold never reached), active or not."""
    from apps.accounts.models import Customer
    from apps.alerts.models import Alert

    for customer in Customer.objects.filter(external_id__in=customers):
        Alert.objects.update_or_create(
            customer=customer,
            name="bench",
            defaults={"kind": "spend", "thresholds": ["1000000000"], "is_active": active},
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument("--batches", type=int, default=300, help="requests to send (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=1000, help="events per request (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=2, help="client threads (default: %(default)s)")
    parser.add_argument("--customers", type=int, default=20, help="customers the events spread over")
    parser.add_argument("--warmup", type=int, default=8, help="untimed batches sent first (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--alerts", action=argparse.BooleanOptionalAction, default=False,
        help="give every bench customer an active spend alert, so that each batch queues alert evaluations "
        "(docs/alerts.md); --no-alerts turns them off (default: %(default)s)",
    )  # fmt: skip
    options = parser.parse_args()

    django_setup(options.database_url)
    from apps.usage.models import UsageEvent, UsageRollup

    customers, api_key = fixtures(customers=options.customers)
    alerts_set(customers, active=options.alerts)
    run = f"ingest-{uuid.uuid4().hex[:10]}"
    bodies = make_bodies(
        run=run, batches=options.warmup + options.batches, batch_size=options.batch_size, customers=customers,
        seed=options.seed,
    )  # fmt: skip
    server = Server(
        database_url=options.database_url, url=options.url, workers=options.gunicorn_workers, port=options.port
    )
    try:
        send_batches(url=server.url, api_key=api_key, bodies=bodies[: options.warmup], concurrency=options.concurrency)
        timed = bodies[options.warmup :]
        server_pids, database_pids = server.pids(), database_backend_pids(options.database_url)
        cpu_before = cpu_seconds(server_pids), cpu_seconds(database_pids)
        elapsed, latencies, responses = send_batches(
            url=server.url, api_key=api_key, bodies=timed, concurrency=options.concurrency
        )
        cpu_after = cpu_seconds(server_pids), cpu_seconds(database_pids)
    finally:
        server.stop()

    sent = len(timed) * options.batch_size
    accepted = sum(response["accepted"] for response in responses)
    duplicates = sum(response["duplicates"] for response in responses)
    rejected = sum(len(response["rejected"]) for response in responses)
    stored = UsageEvent.objects.filter(transaction_id__startswith=f"{run}-").count()
    expected_stored = (options.warmup + options.batches) * options.batch_size
    bench_events = UsageEvent.objects.filter(customer__external_id__in=customers).count()
    rolled_up = sum(
        UsageRollup.objects.filter(customer__external_id__in=customers).values_list("event_count", flat=True)
    )
    events_per_second = sent / elapsed
    p95_ms = percentile(latencies, 0.95) * 1000
    print(f"server: {server.url} (gunicorn --workers {options.gunicorn_workers}, production settings)"
          if not options.url else f"server: {options.url}")  # fmt: skip
    print(f"alerts: {'every bench customer has an active spend alert' if options.alerts else 'none active'}")
    print(f"sent {len(timed)} batches x {options.batch_size} events from {options.concurrency} client threads "
          f"in {elapsed:.2f} s")  # fmt: skip
    print(f"responses: accepted {accepted}, duplicates {duplicates}, rejected {rejected}")
    print(f"latency per request: {latency_summary(latencies)}")
    thousands = sent / 1000
    gunicorn_cpu, database_cpu = cpu_used(cpu_before[0], cpu_after[0]), cpu_used(cpu_before[1], cpu_after[1])
    print(f"server CPU per 1,000 events: gunicorn {gunicorn_cpu / thousands * 1000:.1f} ms"
          f"{' (not measured: --url)' if options.url else ''}, PostgreSQL backends "
          f"{database_cpu / thousands * 1000:.1f} ms ({len(cpu_before[1])} connections)")  # fmt: skip
    print(f"database: {stored} events of this run stored (expected {expected_stored}); bench customers' events "
          f"{bench_events}, rollup event_count total {rolled_up}")  # fmt: skip
    correct = accepted == sent and duplicates == 0 and rejected == 0 and stored == expected_stored
    correct = correct and bench_events == rolled_up
    print(f"verification: {'OK' if correct else 'FAILED'}")
    print(f"TARGET throughput >= {TARGET_EVENTS_PER_SECOND:,} events/s: {events_per_second:,.0f} events/s "
          f"{verdict(correct and events_per_second >= TARGET_EVENTS_PER_SECOND)}")  # fmt: skip
    print(f"TARGET p95 <= {TARGET_P95_MS} ms per {options.batch_size}-event request: {p95_ms:.1f} ms "
          f"{verdict(correct and p95_ms <= TARGET_P95_MS)}")  # fmt: skip


if __name__ == "__main__":
    main()
