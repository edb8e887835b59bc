#!/usr/bin/env bash
# Every benchmark at a tiny size, as CI's smoke stage: a bench that no longer runs as documented fails
# CI. The figures at this size mean nothing and are not judged (MISS lines are expected); what fails
# is an error, a wrong count or a failed verification (each bench exits non-zero on those).
# Needs PostgreSQL and Redis (the billing-run bench starts a Celery worker); uses its own databases,
# dropped first so that every run starts empty.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
server=${BENCH_SMOKE_SERVER:-postgres://postgres@127.0.0.1:5432}

# One migrated, empty database; each bench gets a copy of it (migrating once saves a minute a bench).
template=bp_bench_smoke_template
psql "$server/postgres" -qc "DROP DATABASE IF EXISTS \"$template\" WITH (FORCE)" >/dev/null
psql "$server/postgres" -qc "CREATE DATABASE \"$template\"" >/dev/null
echo "== bench smoke: migrating an empty database"
DATABASE_URL="$server/$template" "$PY" manage.py migrate --noinput -v0

fresh() {  # a new database, migrated and empty; prints its URL
  psql "$server/postgres" -qc "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" >/dev/null
  psql "$server/postgres" -qc "CREATE DATABASE \"$1\" TEMPLATE \"$template\"" >/dev/null
  echo "$server/$1"
}

run() {
  local name=$1; shift
  echo "== bench smoke: $name"
  local started=$SECONDS
  "$PY" "$@"
  echo "== bench smoke: $name OK ($((SECONDS - started)) s)"
}

usage_db=$(fresh bp_bench_smoke)
run "usage ingest" bench/usage_ingest.py --database-url "$usage_db" --batches 4 --batch-size 100 --warmup 1 --customers 5
run "usage replay" bench/usage_replay.py --database-url "$usage_db" --batches 4 --batch-size 100 --customers 5
run "usage ingest breakdown" bench/usage_ingest_breakdown.py --database-url "$usage_db" --batches 2 --batch-size 100 --warmup 1 \
  --customers 5
run "usage preview" bench/usage_preview.py --database-url "$usage_db" --events 5000 --days 5 --iterations 5 --warmup 1
for aggregation in weighted_sum percentile; do
  run "usage preview ($aggregation)" bench/usage_preview.py --database-url "$usage_db" --events 5000 --days 5 \
    --iterations 5 --warmup 1 --aggregation "$aggregation"
done
run "PDF bills" bench/pdf_render.py --database-url "$usage_db" --bills 4 --workers 1
run "billing run" bench/billing_run.py --database-url "$(fresh bp_bench_smoke_billing)" --subscriptions 60 --chunk-size 20 --concurrency 1
profile_db=$(fresh bp_bench_smoke_profile)
run "billing run fixtures" bench/billing_run.py --database-url "$profile_db" --subscriptions 60 --paths-only
run "billing chunk profile" bench/billing_chunk_profile.py --database-url "$profile_db" --chunks 1 --chunk-size 20
run "entitlements" bench/entitlements.py --database-url "$(fresh bp_bench_smoke_entitlements)" --subscriptions 2 --features 6 --iterations 20 --warmup 2
run "reports dashboard" bench/reports_dashboard.py --database-url "$(fresh bp_bench_smoke_reports)" --subscriptions 60 --months 3 --requests 3
run "HTTP under load" bench/http_load.py --database-url "$(fresh bp_bench_smoke_http)" --subscriptions 60 --months 3 --portal-invoices 20 --requests 4 --clients 1,2
echo "bench smoke: every bench ran"
