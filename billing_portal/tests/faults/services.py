"""Throwaway PostgreSQL clusters and Redis servers for the fault tests: each starts on a free port in a
temporary folder, and is stopped, crashed and restarted by the test that owns it (never the machine's
shared servers). Django processes (a billing run, a web server, a Celery worker) run against them as
subprocesses with their own environment."""

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection

POSTGRES_USER = "postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable, *, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def unavailable(reason: str) -> None:
    """Skip where the tools are missing; in CI that is a set-up error, so fail instead."""
    if os.environ.get("CI"):
        pytest.fail(f"fault test cannot run in CI: {reason}")
    pytest.skip(reason)


def postgres_bin_dir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    for candidate in reversed(candidates):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


class ThrowawayPostgres:
    """A PostgreSQL cluster of its own (initdb in a temporary folder, trust authentication, 127.0.0.1 and
    a free port). As root, it runs as the `postgres` system user (initdb refuses root)."""

    def __init__(self) -> None:
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            unavailable("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        self.bin_dir = bin_dir
        self.as_root = os.geteuid() == 0
        if self.as_root and shutil.which("runuser") is None:
            unavailable("runuser is needed to run PostgreSQL as a non-root user")
        self.port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="bp-fault-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"
        if self.as_root:
            try:
                shutil.chown(self.base, user=POSTGRES_USER)
            except LookupError:
                shutil.rmtree(self.base, ignore_errors=True)
                unavailable(f"there is no {POSTGRES_USER} system user to run PostgreSQL as")

    def _command(self, tool: str, *args: str) -> list[str]:
        command = [str(self.bin_dir / tool), *args]
        return ["runuser", "-u", POSTGRES_USER, "--", *command] if self.as_root else command

    def _run(self, tool: str, *args: str, timeout: float = 120) -> None:
        result = subprocess.run(self._command(tool, *args), capture_output=True, text=True, timeout=timeout)  # noqa: S603
        if result.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{tool} {' '.join(args)} failed: {result.stderr[-2000:]}\n{log}")

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", POSTGRES_USER, "-A", "trust", "-E", "UTF8", "--no-locale",
                  "--no-sync")  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """`immediate` is a crash: no checkpoint, clients cut off; the next start recovers from the WAL."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgres://{POSTGRES_USER}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres", **kwargs) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port, user=POSTGRES_USER, dbname=database, **kwargs)

    def load_schema_from_test_database(self, database: str) -> None:
        """Create `database` as a copy of the suite's migrated test database (pg_dump | psql): the same
        schema in seconds, instead of running every migration again."""
        with self.connect(autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{database}"')
        source = connection.settings_dict
        test_database = self._suite_test_database()
        environment = {**os.environ, "PGPASSWORD": source.get("PASSWORD") or ""}
        dump = subprocess.run(  # noqa: S603
            [str(self.bin_dir / "pg_dump"), "--no-owner", "--no-privileges", "--host", source["HOST"] or "127.0.0.1",
             "--port", str(source["PORT"] or 5432), "--username", source["USER"], test_database],
            capture_output=True, check=True, env=environment, timeout=120,
        )  # fmt: skip
        subprocess.run(  # noqa: S603
            [str(self.bin_dir / "psql"), "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port),
             "-U", POSTGRES_USER, "-d", database],
            input=dump.stdout, capture_output=True, check=True, timeout=120,
        )  # fmt: skip

    @staticmethod
    def _suite_test_database() -> str:
        """The migrated database pytest-django made: the connection names it once a test has used it;
        before that the connection still names the configured one, and the test one is test_<that>."""
        current = connection.settings_dict["NAME"]
        candidate = connection.creation._get_test_db_name()
        with connection._nodb_cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [candidate])
            return candidate if cursor.fetchone() else current

    def copy_database(self, template: str, database: str) -> None:
        with self.connect(autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{database}" TEMPLATE "{template}"')


class ThrowawayRedis:
    def __init__(self) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            unavailable("redis-server is not installed")
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603
            [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self.is_up, timeout=20, what="redis-server")

    def is_up(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
        return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.process = None

    def url(self, database: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{database}"


def django_environment(**overrides: str) -> dict[str, str]:
    """The environment of a Django subprocess: local settings (no eager Celery), plus `overrides`."""
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "billing_portal.settings.local",
        "DEBUG": "false",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CELERY_BROKER_URL": "memory://",
        "LOG_LEVEL": "WARNING",
    }
    environment.pop("CACHE_URL", None)
    environment.update(overrides)
    return environment


def run_django(args: list[str], environment: dict[str, str], *, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, *args], cwd=settings.BASE_DIR, env=environment, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


@contextlib.contextmanager
def django_process(args: list[str], environment: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen]:
    """A long-running Django subprocess in its own process group, stopped (with its children) on exit."""
    with log_path.open("w") as log:
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, *args], cwd=settings.BASE_DIR, env=environment, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            yield process
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=20)
            print(f"--- {log_path.name}\n{log_path.read_text()[-4000:]}")  # shown by pytest when the test fails


def http_port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False
