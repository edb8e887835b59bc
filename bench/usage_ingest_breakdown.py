"""Where the time of one 1,000-event ingestion request goes, measured in process on the payloads of
bench/usage_ingest.py, and the floor: COPY of the same rows into the same tables.

For each timed batch, one after the other (no concurrency, no HTTP):

1. the whole request through Django and DRF (`django.test.Client`, the production middleware, the
   API key's authentication and throttle, the view, the rendered response), events stored;
2. another batch through the ingestion service alone (`usage_events_ingest`) with each stage timed:
   JSON parsing (the endpoint's parser), the look-up of transaction ids already taken (dedup), the
   customers, metrics and locks, the validation (Python), the insert of the keys and events (one
   statement), the rollup upsert, the commit;
3. the same rows as (2) once more, written three ways in transactions rolled back (foreign keys
   checked at once, as the commit would): the key insert and the event insert as two INSERTs reading
   arrays (`unnest`, the service's way before 2026-12-07), as two INSERTs reading one JSON text
   (`json_to_recordset`, the service's way since), then COPY of the same rows into the key table and
   the events table — the floor, what writing those rows costs at the least.

"DRF/Django overhead" is (1) minus the parse and the service of (2). Each stage: median and p95 of
wall time; CPU time of this process (Python) in the medians' column "cpu". The database's own time is
the wall time of the statements (the server runs on the same machine).

    .venv/bin/python bench/usage_ingest_breakdown.py --batches 40
"""

import argparse
import io
import statistics
import time
import uuid
from collections import defaultdict
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal

from common import METRIC_CODE, add_common_arguments, django_setup, fixtures, percentile
from usage_ingest import make_bodies


class Timings:
    def __init__(self) -> None:
        self.wall: dict[str, list[float]] = defaultdict(list)
        self.cpu: dict[str, list[float]] = defaultdict(list)
        self.current: dict[str, list[float]] = {}
        self.service_stages = False  # the service's own stages are timed only in (2)

    def start_batch(self) -> None:
        self.current = {}

    @contextmanager
    def stage(self, name: str):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            entry = self.current.setdefault(name, [0.0, 0.0])
            entry[0] += time.perf_counter() - wall
            entry[1] += time.process_time() - cpu

    def add(self, name: str, wall: float, cpu: float) -> None:
        entry = self.current.setdefault(name, [0.0, 0.0])
        entry[0] += wall
        entry[1] += cpu

    def end_batch(self) -> None:
        for name, (wall, cpu) in self.current.items():
            self.wall[name].append(wall * 1000)
            self.cpu[name].append(cpu * 1000)


def _timed(timings: Timings, name: str, function):
    def wrapper(*args, **kwargs):
        if not timings.service_stages:
            return function(*args, **kwargs)
        with timings.stage(name):
            return function(*args, **kwargs)

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument("--batches", type=int, default=40, help="timed batches (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=1000, help="events per batch (default: %(default)s)")
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args()

    django_setup(options.database_url)
    import gc

    from django.db import connection, transaction
    from django.test import Client

    from apps.accounts.models import Customer
    from apps.catalog.models import BillableMetric
    from apps.core import clock
    from apps.usage import services
    from apps.usage.api.parsers import EventBatchJSONParser
    from apps.usage.models import UsageEvent, UsageEventKey

    customers, api_key = fixtures(customers=options.customers)
    rounds = options.warmup + options.batches
    run = f"breakdown-{uuid.uuid4().hex[:10]}"
    # Three bodies per round: through Django (1), through the service (2), written three ways (3).
    bodies = make_bodies(
        run=run, batches=3 * rounds, batch_size=options.batch_size, customers=customers, seed=options.seed
    )
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {api_key}")
    customer_ids = dict(Customer.objects.filter(external_id__in=customers).values_list("external_id", "pk"))
    metric_id = BillableMetric.objects.get(code=METRIC_CODE).pk
    timings = Timings()

    # Stages of the service, timed where they are called.
    for name, stage in (
        ("_stored_transaction_ids", "dedup look-up (keys taken)"),
        ("usage_ingest_lock", "customer locks"),
        ("invoiced_spans", "invoiced spans, pools"),
        ("pool_members_by_metric", "invoiced spans, pools"),
        ("_insert_events", "key + event insert"),
        ("_rollups_add", "rollup upsert"),
        ("_late_events_record", "late events, signals"),
        ("usage_recorded_send_on_commit", "late events, signals"),
    ):
        setattr(services, name, _timed(timings, stage, getattr(services, name)))
    ingest = services.usage_events_ingest.__wrapped__  # without its transaction: the commit is timed apart

    event_fields = services._fields(UsageEvent, services._EVENT_COLUMNS)
    key_fields = services._fields(UsageEventKey, services._KEY_COLUMNS)
    quote = connection.ops.quote_name
    events_table, keys_table = quote(UsageEvent._meta.db_table), quote(UsageEventKey._meta.db_table)

    def rows_of(events: list[dict]) -> list[list]:
        now = datetime.now(UTC)
        return [
            [
                event["transaction_id"], customer_ids[event["external_customer_id"]], metric_id,
                datetime.fromisoformat(event["timestamp"]), services._PROPERTIES_ENCODER.encode(event["properties"]),
                Decimal(event["properties"]["gb"]), "", event["properties"]["region"], now,
            ]
            for event in events
        ]  # fmt: skip

    def unnest_insert(cursor, table, fields, rows) -> None:
        columns = ", ".join(quote(f.column) for f in fields)
        arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT * FROM unnest({arrays})",  # noqa: S608
            [list(column) for column in zip(*rows, strict=True)],
        )

    def copy_rows(cursor, table, fields, rows) -> None:
        columns = ", ".join(quote(f.column) for f in fields)
        with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:  # noqa: S608
            for row in rows:
                copy.write_row(row)

    def json_insert(cursor, table, fields, rows) -> None:
        columns = ", ".join(quote(f.column) for f in fields)
        source, parameter = services._json_rows(fields, rows)
        cursor.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {source}", [parameter])  # noqa: S608

    ways = [("INSERT (unnest)", unnest_insert), ("COPY", copy_rows)]
    if hasattr(services, "_json_rows"):
        ways.insert(1, ("INSERT (json_to_recordset)", json_insert))

    def written_three_ways(rows: list[list]) -> None:
        for label, write in ways:
            with connection.cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the foreign keys, checked as a commit would
                with timings.stage(f"{label}: keys"):
                    write(cursor, keys_table, key_fields, [row[:4] for row in rows])
                with timings.stage(f"{label}: events"):
                    write(cursor, events_table, event_fields, rows)
                cursor.execute("ROLLBACK")

    import json

    parser_ = EventBatchJSONParser()
    for round_number in range(rounds):
        via_django, via_service, three_ways = bodies[3 * round_number : 3 * round_number + 3]
        gc.collect()
        timings.start_batch()
        # (1) the whole request
        with timings.stage("request through Django + DRF"):
            response = client.post("/api/v1/events/batch", data=via_django, content_type="application/json")
        assert response.status_code == 200 and response.json()["accepted"] == options.batch_size, response.content
        # (2) the service, stage by stage
        timings.service_stages = True
        with timings.stage("JSON parsing"):
            data = parser_.parse(io.BytesIO(via_service), "application/json", {})
        with timings.stage("service total (with commit)"):
            with transaction.atomic():
                with timings.stage("service body (no commit)"):
                    result = ingest(events=data["events"], now=clock.now())
                commit = time.perf_counter(), time.process_time()
            timings.add("commit", time.perf_counter() - commit[0], time.process_time() - commit[1])
        timings.service_stages = False
        assert result.accepted == options.batch_size, result
        # (3) the same rows, INSERT vs COPY
        written_three_ways(rows_of(json.loads(three_ways)["events"]))
        current = timings.current
        db_stages = (
            "dedup look-up (keys taken)", "customer locks", "invoiced spans, pools", "key + event insert",
            "rollup upsert", "late events, signals",
        )  # fmt: skip
        for index in (0, 1):
            remainder = current["service body (no commit)"][index] - sum(
                current.get(s, [0, 0])[index] for s in db_stages
            )
            current.setdefault("validation + customer/metric look-ups", [0.0, 0.0])[index] = remainder
        for index in (0, 1):
            overhead = current["request through Django + DRF"][index] - (
                current["JSON parsing"][index] + current["service total (with commit)"][index]
            )
            current.setdefault("DRF/Django overhead (request - parse - service)", [0.0, 0.0])[index] = overhead
        if round_number >= options.warmup:
            timings.end_batch()

    order = [
        "request through Django + DRF",
        "JSON parsing",
        "validation + customer/metric look-ups",
        "dedup look-up (keys taken)",
        "customer locks",
        "invoiced spans, pools",
        "key + event insert",
        "rollup upsert",
        "late events, signals",
        "commit",
        "service total (with commit)",
        "DRF/Django overhead (request - parse - service)",
        "INSERT (unnest): keys",
        "INSERT (unnest): events",
        "INSERT (json_to_recordset): keys",
        "INSERT (json_to_recordset): events",
        "COPY: keys",
        "COPY: events",
    ]
    print(f"{options.batches} batches of {options.batch_size} events (after {options.warmup} untimed), in process")
    print(f"{'stage':<50} {'median ms':>10} {'p95 ms':>8} {'cpu ms':>8}")
    for name in order:
        if name not in timings.wall:
            continue
        wall, cpu = timings.wall[name], timings.cpu[name]
        print(
            f"{name:<50} {statistics.median(wall):>10.1f} {percentile(wall, 0.95):>8.1f} {statistics.median(cpu):>8.1f}"
        )
    insert = statistics.median(timings.wall["INSERT (unnest): keys"]) + statistics.median(
        timings.wall["INSERT (unnest): events"]
    )
    floor = statistics.median(timings.wall["COPY: keys"]) + statistics.median(timings.wall["COPY: events"])
    print(
        f"floor: COPY of the same {options.batch_size} rows into the key table and the events table {floor:.1f} ms, "
        f"against {insert:.1f} ms as two INSERT … unnest (rolled back, foreign keys checked)"
    )
    if "INSERT (json_to_recordset): keys" in timings.wall:
        json_wall = statistics.median(timings.wall["INSERT (json_to_recordset): keys"]) + statistics.median(
            timings.wall["INSERT (json_to_recordset): events"]
        )
        print(f"and {json_wall:.1f} ms as two INSERT … json_to_recordset")


if __name__ == "__main__":
    main()
