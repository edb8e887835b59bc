"""Benchmark: replaying usage events already stored, through POST /api/v1/events/batch.

The script sends N batches of fresh events once (untimed, they are stored), then sends the very same
batches again and times that. Every replayed event must come back as a duplicate and nothing may be
stored twice.

Target: at least 50,000 events/s (PostgreSQL, gunicorn, 2 cores, the client on the same machine).
"""

import argparse
import uuid

from common import Server, add_common_arguments, django_setup, fixtures, latency_summary, send_batches, verdict
from usage_ingest import make_bodies

TARGET_EVENTS_PER_SECOND = 50_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument("--batches", type=int, default=300, help="batches stored, then replayed (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=1000, help="events per request (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=2, help="client threads (default: %(default)s)")
    parser.add_argument("--customers", type=int, default=20, help="customers the events spread over")
    parser.add_argument("--seed", type=int, default=2)
    options = parser.parse_args()

    django_setup(options.database_url)
    from apps.usage.models import UsageEvent

    customers, api_key = fixtures(customers=options.customers)
    run = f"replay-{uuid.uuid4().hex[:10]}"
    bodies = make_bodies(
        run=run, batches=options.batches, batch_size=options.batch_size, customers=customers, seed=options.seed
    )
    server = Server(
        database_url=options.database_url, url=options.url, workers=options.gunicorn_workers, port=options.port
    )
    try:
        _, _, first = send_batches(url=server.url, api_key=api_key, bodies=bodies, concurrency=options.concurrency)
        elapsed, latencies, replayed = send_batches(
            url=server.url, api_key=api_key, bodies=bodies, concurrency=options.concurrency
        )
    finally:
        server.stop()

    sent = len(bodies) * options.batch_size
    first_accepted = sum(response["accepted"] for response in first)
    accepted = sum(response["accepted"] for response in replayed)
    duplicates = sum(response["duplicates"] for response in replayed)
    rejected = sum(len(response["rejected"]) for response in replayed)
    stored = UsageEvent.objects.filter(transaction_id__startswith=f"{run}-").count()
    events_per_second = sent / elapsed
    print(f"server: {server.url}" + ("" if options.url else f" (gunicorn --workers {options.gunicorn_workers})"))
    print(f"first delivery (untimed): {first_accepted} of {sent} accepted")
    print(f"replayed {len(bodies)} batches x {options.batch_size} events from {options.concurrency} client threads "
          f"in {elapsed:.2f} s")  # fmt: skip
    print(f"replay responses: accepted {accepted}, duplicates {duplicates}, rejected {rejected}")
    print(f"latency per request: {latency_summary(latencies)}")
    print(f"database: {stored} events of this run stored (expected {sent})")
    correct = first_accepted == sent and accepted == 0 and duplicates == sent and rejected == 0 and stored == sent
    print(f"verification: {'OK' if correct else 'FAILED'}")
    print(f"TARGET replay >= {TARGET_EVENTS_PER_SECOND:,} events/s: {events_per_second:,.0f} events/s "
          f"{verdict(correct and events_per_second >= TARGET_EVENTS_PER_SECOND)}")  # fmt: skip


if __name__ == "__main__":
    main()
