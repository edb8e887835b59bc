"""What the usage benchmarks share: the database, the fixtures, the gunicorn server and the client.

Every script runs from the repository root as `python bench/<script>.py`; see bench/README.md.
"""

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bp_bench"
METRIC_CODE = "bench_gb"


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="PostgreSQL database to use; created and migrated when missing (default: %(default)s)",
    )
    parser.add_argument(
        "--url",
        default="",
        help="target a running server (e.g. http://127.0.0.1:8000) instead of starting gunicorn; it must use "
        "the same database",
    )
    parser.add_argument(
        "--gunicorn-workers", type=int, default=2, help="sync workers when starting gunicorn (default: %(default)s)"
    )
    parser.add_argument("--port", type=int, default=0, help="port for the gunicorn started here (default: a free one)")


def django_setup(database_url: str) -> None:
    """Create the database when missing, point Django's production settings at it, migrate."""
    _create_database(database_url)
    os.environ.update(_server_environment(database_url))
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def _create_database(database_url: str) -> None:
    import psycopg

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    admin_url = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as connection:
        if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            connection.execute(f'CREATE DATABASE "{name}"')


def _server_environment(database_url: str) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "billing_portal.settings.production",
        "SECRET_KEY": "bench-only-secret-key-not-for-production-use-0123456789",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database_url,
        # Production requires an explicit email backend; the benchmarks send no email.
        "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
        # The client speaks plain HTTP to the local gunicorn (no TLS-terminating proxy in front).
        "SECURE_SSL_REDIRECT": "false",
    }


def fixtures(*, customers: int) -> tuple[list[str], str]:
    """`customers` customers (external IDs bench_cus_000…), the metric bench_gb (sum of `gb` per region)
    and a new API key. Returns the external IDs and the raw key."""
    from apps.accounts.credentials import api_key_create
    from apps.accounts.models import Customer
    from apps.catalog.models import BillableMetric
    from apps.catalog.services import billable_metric_create

    if not BillableMetric.objects.filter(code=METRIC_CODE).exists():
        billable_metric_create(
            code=METRIC_CODE, name="Bench storage", aggregation="sum", field_name="gb", group_by="region"
        )
    external_ids = []
    for number in range(customers):
        external_id = f"bench_cus_{number:03d}"
        Customer.objects.get_or_create(
            external_id=external_id,
            defaults={"name": f"Bench customer {number}", "email": f"bench{number}@customer.example",
                      "country": "GB", "currency": "USD"},
        )  # fmt: skip
        external_ids.append(external_id)
    _, raw_key = api_key_create(name="usage benchmark")
    return external_ids, raw_key


class Server:
    """gunicorn serving the app with the production settings, or an already running server (--url)."""

    def __init__(self, *, database_url: str, url: str, workers: int, port: int) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        if url:
            self.url = url
            return
        port = port or _free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = open("/tmp/bench-gunicorn.log", "ab")  # noqa: SIM115 - closed in stop()
        command = [
            sys.executable, "-m", "gunicorn", "billing_portal.wsgi", "--bind", f"127.0.0.1:{port}",
            "--workers", str(workers), "--worker-class", "sync", "--backlog", "2048", "--timeout", "120",
        ]  # fmt: skip
        self.process = subprocess.Popen(  # noqa: S603 - our own command line
            command, cwd=ROOT, env={**os.environ, **_server_environment(database_url)}, stdout=self.log,
            stderr=self.log, start_new_session=True,
        )  # fmt: skip
        self._wait_ready(port)

    def _wait_ready(self, port: int) -> None:
        deadline = time.monotonic() + 120  # a loaded machine can take that long to boot the workers
        while time.monotonic() < deadline:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/api/v1/events/batch")
                connection.getresponse().read()
                return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("gunicorn did not start; see /tmp/bench-gunicorn.log")

    def pids(self) -> list[int]:
        """The gunicorn master and its workers (none for a server given by --url)."""
        if self.process is None:
            return []
        return [self.process.pid, *child_pids(self.process.pid)]

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
            self.log.close()


def child_pids(parent: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                children.append(int(entry.name))
    return children


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU time of each process (Linux /proc), by pid; processes gone are left out."""
    ticks = os.sysconf("SC_CLK_TCK")
    times = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        times[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return times


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two `cpu_seconds` snapshots by the processes in both."""
    return sum(after[pid] - before[pid] for pid in before if pid in after)


def database_backend_pids(database_url: str) -> list[int]:
    """The PostgreSQL backends connected to the bench database (the server's persistent connections)."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'"
        ).fetchall()
    return [pid for (pid,) in rows]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def send_batches(
    *, url: str, api_key: str, bodies: list[bytes], concurrency: int
) -> tuple[float, list[float], list[dict]]:
    """POST each body to /api/v1/events/batch from `concurrency` threads, one keep-alive connection each.
    Returns the wall time, each request's latency (seconds) and each response."""
    parts = urlsplit(url)
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    latencies: list[float] = [0.0] * len(bodies)
    responses: list[dict] = [{}] * len(bodies)
    next_index = iter(range(len(bodies)))
    lock = threading.Lock()
    errors: list[str] = []

    def work() -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        while True:
            with lock:
                index = next(next_index, None)
            if index is None:
                break
            started = time.perf_counter()
            connection.request("POST", "/api/v1/events/batch", body=bodies[index], headers=headers)
            response = connection.getresponse()
            payload = response.read()
            latencies[index] = time.perf_counter() - started
            if response.status != 200:
                errors.append(f"HTTP {response.status}: {payload[:300]!r}")
                continue
            responses[index] = json.loads(payload)
        connection.close()

    threads = [threading.Thread(target=work) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"{len(errors)} requests failed, first: {errors[0]}")
    return elapsed, latencies, responses


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(round(fraction * len(ordered) + 0.5)) - 1))]


def latency_summary(latencies: list[float]) -> str:
    milliseconds = [value * 1000 for value in latencies]
    return (
        f"p50 {percentile(milliseconds, 0.50):.1f} ms, p95 {percentile(milliseconds, 0.95):.1f} ms, "
        f"p99 {percentile(milliseconds, 0.99):.1f} ms, mean {statistics.fmean(milliseconds):.1f} ms, "
        f"max {max(milliseconds):.1f} ms"
    )


def verdict(passed: bool) -> str:
    return "PASS" if passed else "MISS"
