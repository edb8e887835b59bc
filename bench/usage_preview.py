"""Benchmark: the upcoming-invoice preview of a subscription whose customer has 1,000,000 usage events
in the current period, for a metric of the aggregation chosen with --aggregation: `sum` (the default,
the bench_gb metric), `weighted_sum` (bench_gauge_gb: each event a new level of GB stored, in
GB-months) or `percentile` (bench_mbps: the 95th percentile of 5-minute sums).

The events are loaded with one INSERT … SELECT from generate_series, and their hourly rollups with one
INSERT … SELECT … GROUP BY over them, computed exactly as ingestion keeps them (count, sum, max and the
latest event by (occurred_at, id) per customer, metric, group and hour; for a weighted sum also the
hour's first event and level-seconds; for a percentile the per-interval sums); the script then checks once
that the rollups and the raw events give the same usage for the period. It times
`apps.invoices.services.subscription_upcoming_invoice` (what GET /api/v1/subscriptions/{id}/upcoming-invoice
calls) in this process, against PostgreSQL, with the production settings.

Target: p99 at most 100 ms.
"""

import argparse
import statistics
import time
import uuid
from datetime import timedelta
from decimal import Decimal

from common import METRIC_CODE, django_setup, fixtures, percentile, verdict

TARGET_P99_MS = 100
# --aggregation → the metric's code and settings (sum: the common fixtures' bench_gb).
METRICS: dict[str, tuple[str, dict]] = {
    "sum": (METRIC_CODE, {}),
    "weighted_sum": ("bench_gauge_gb", {"time_unit": "month"}),
    "percentile": ("bench_mbps", {"percentile": 95, "interval_minutes": 5}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/bp_bench", help="(default: %(default)s)"
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the period (default: %(default)s)")
    parser.add_argument("--days", type=int, default=20, help="days of the period elapsed (default: %(default)s)")
    parser.add_argument("--iterations", type=int, default=300, help="timed previews (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed previews first (default: %(default)s)")
    parser.add_argument(
        "--aggregation", choices=sorted(METRICS), default="sum", help="the metric's aggregation (default: %(default)s)"
    )
    options = parser.parse_args()

    django_setup(options.database_url)
    from django.db import connection

    from apps.accounts.models import Customer
    from apps.billing.services import subscription_start, subscription_upcoming_invoice
    from apps.catalog.models import BillableMetric, PlanVersion
    from apps.catalog.services import billable_metric_create
    from apps.catalog.tests.factories import PlanFactory, add_charge
    from apps.core import clock
    from apps.usage.models import UsageEvent, UsageEventKey, UsageIntervalRollup, UsageRollup
    from apps.usage.selectors import usage_aggregate

    fixtures(customers=0)
    code, settings = METRICS[options.aggregation]
    if not BillableMetric.objects.filter(code=code).exists():
        billable_metric_create(code=code, name=f"Bench {options.aggregation}", field_name="gb", group_by="region",
                               aggregation=options.aggregation, **settings)  # fmt: skip
    metric = BillableMetric.objects.get(code=code)
    weighted, percentile_metric = options.aggregation == "weighted_sum", options.aggregation == "percentile"
    run = uuid.uuid4().hex[:10]
    customer = Customer.objects.create(
        external_id=f"bench_preview_{run}", name="Bench preview customer", email="preview@customer.example",
        country="GB", currency="USD",
    )  # fmt: skip
    plan = PlanFactory(
        prices=[], name=f"Bench storage {run}", code=f"bench-storage-{run}", product__code=f"bench-preview-{run}"
    )
    version = PlanVersion.objects.create(plan=plan, number=1)
    add_charge(version, name="Platform fee", price_model="flat", amount=Decimal("10"))
    add_charge(
        version, name="Storage", kind="usage", metric_code=code, price_model="graduated",
        tiers=[("1000", "0", "0"), ("100000", "0.05", "0"), (None, "0.01", "0")],
    )  # fmt: skip
    now = clock.now()
    subscription = subscription_start(customer=customer, plan=plan, now=now - timedelta(days=options.days))
    start, end = subscription.current_period_start_at, min(now, subscription.current_period_end_at)

    events_table, rollups_table = UsageEvent._meta.db_table, UsageRollup._meta.db_table
    intervals_table = UsageIntervalRollup._meta.db_table
    # Weighted sums: each hour's first event and Σ value × seconds until the hour's next event (or its
    # end), exactly as ingestion keeps them.
    gauge_columns, gauge_values = (
        (
            ", first_at, level_seconds",
            ", min(occurred_at), sum(coalesce(value, 0) * extract(epoch from "
            "coalesce(next_at, date_trunc('hour', occurred_at, 'UTC') + interval '1 hour') - occurred_at))",
        )
        if weighted
        else ("", "")
    )
    loading = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {events_table}
                (transaction_id, customer_id, metric_id, occurred_at, properties, value, distinct_value,
                 group_key, received_at)
            SELECT 'preview-{run}-' || n, %(customer)s, %(metric)s,
                   %(start)s + (%(end)s - %(start)s) * ((n - 1)::float8 / %(count)s),
                   jsonb_build_object('region', region, 'gb', amount::text), amount, '', region, %(end)s
            FROM (
                SELECT n, (ARRAY['eu', 'us', 'ap', 'sa'])[1 + n %% 4] AS region,
                       ((n %% 997) + 1)::numeric / 100 AS amount
                FROM generate_series(1, %(count)s) AS n
            ) AS generated
            ORDER BY n
            """,  # noqa: S608 - table names from the models
            {"customer": customer.pk, "metric": metric.pk, "start": start, "end": end, "count": options.events},
        )
        # Each stored event's transaction id is taken in the key table, as ingestion leaves it.
        cursor.execute(
            f"INSERT INTO {UsageEventKey._meta.db_table} (transaction_id, customer_id, metric_id, occurred_at) "  # noqa: S608
            f"SELECT transaction_id, customer_id, metric_id, occurred_at FROM {events_table} WHERE customer_id = %s",
            [customer.pk],
        )
        cursor.execute(
            f"""
            INSERT INTO {rollups_table}
                (customer_id, metric_id, group_key, hour, event_count, value_sum, value_max, latest_at,
                 latest_event_id, latest_value{gauge_columns})
            SELECT customer_id, metric_id, group_key, date_trunc('hour', occurred_at, 'UTC'), count(*),
                   coalesce(sum(value), 0), max(value),
                   (array_agg(occurred_at ORDER BY occurred_at DESC, id DESC))[1],
                   (array_agg(id ORDER BY occurred_at DESC, id DESC))[1],
                   (array_agg(value ORDER BY occurred_at DESC, id DESC))[1]{gauge_values}
            FROM (
                SELECT *, lead(occurred_at) OVER (
                    PARTITION BY customer_id, metric_id, group_key, date_trunc('hour', occurred_at, 'UTC')
                    ORDER BY occurred_at, id
                ) AS next_at
                FROM {events_table}
                WHERE customer_id = %s
            ) AS events
            GROUP BY customer_id, metric_id, group_key, date_trunc('hour', occurred_at, 'UTC')
            """,  # noqa: S608 - table names from the models
            [customer.pk],
        )
        if percentile_metric:
            cursor.execute(
                f"""
                INSERT INTO {intervals_table}
                    (customer_id, metric_id, group_key, interval_start, event_count, value_sum)
                SELECT customer_id, metric_id, group_key, date_bin(%s, occurred_at, '2000-01-01T00:00:00Z'),
                       count(*), coalesce(sum(value), 0)
                FROM {events_table}
                WHERE customer_id = %s
                GROUP BY customer_id, metric_id, group_key, date_bin(%s, occurred_at, '2000-01-01T00:00:00Z')
                """,  # noqa: S608 - table names from the models
                [timedelta(minutes=metric.interval_minutes), customer.pk, timedelta(minutes=metric.interval_minutes)],
            )
            cursor.execute(f"ANALYZE {intervals_table}")
        cursor.execute(f"ANALYZE {events_table}")
        cursor.execute(f"ANALYZE {rollups_table}")
    loaded_in = time.perf_counter() - loading

    stored = UsageEvent.objects.filter(customer=customer, occurred_at__gte=start, occurred_at__lt=end).count()
    rollup_rows = UsageRollup.objects.filter(customer=customer).count()
    checking = time.perf_counter()
    raw = usage_aggregate(customer=customer, metric=metric, start=start, end=end, source="raw")
    raw_in = time.perf_counter() - checking
    rolled_up = usage_aggregate(customer=customer, metric=metric, start=start, end=end, source="rollup")
    consistent = raw == rolled_up and stored == options.events

    for _ in range(options.warmup):
        subscription_upcoming_invoice(subscription_id=subscription.pk)
    timings = []
    for _ in range(options.iterations):
        began = time.perf_counter()
        preview = subscription_upcoming_invoice(subscription_id=subscription.pk)
        timings.append((time.perf_counter() - began) * 1000)

    print(f"loaded {options.events:,} events and {rollup_rows:,} rollup rows in {loaded_in:.1f} s "
          f"(period {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC)")  # fmt: skip
    print(f"events in the period: {stored:,}; usage from raw events ({raw_in * 1000:.0f} ms): "
          f"{ {key: str(value) for key, value in sorted(raw.items())} }")  # fmt: skip
    print(f"rollups equal raw events: {'yes' if raw == rolled_up else 'NO'}")
    print(f"preview: {len(preview.lines)} lines, total {preview.total}")
    print(f"{options.iterations} previews: p50 {percentile(timings, 0.5):.1f} ms, p95 {percentile(timings, 0.95):.1f} "
          f"ms, p99 {percentile(timings, 0.99):.1f} ms, mean {statistics.fmean(timings):.1f} ms, "
          f"max {max(timings):.1f} ms")  # fmt: skip
    p99 = percentile(timings, 0.99)
    print(f"verification: {'OK' if consistent else 'FAILED'}")
    print(f"TARGET preview p99 <= {TARGET_P99_MS} ms with {options.events:,} events ({options.aggregation}): "
          f"{p99:.1f} ms "
          f"{verdict(consistent and p99 <= TARGET_P99_MS)}")  # fmt: skip


if __name__ == "__main__":
    main()
