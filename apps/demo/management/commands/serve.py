"""`make run`'s server: the web server and the scheduler together, so that the embedded default does
what production does with separate processes (`make worker`, `make beat`): the daily billing run,
draft finalization, dunning, webhook delivery, missing PDFs and report refreshes happen on their
own. Locally Celery runs tasks in the calling process (CELERY_TASK_ALWAYS_EAGER), so the scheduler
runs each job itself when it falls due; its log goes to `.scheduler.log`.

"Serving on …" is printed once the port answers; Ctrl-C stops both."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

SCHEDULER_LOG = Path(settings.BASE_DIR) / ".scheduler.log"
WAIT_FOR_PORT_SECONDS = 120


def _port_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Command(BaseCommand):
    help = "Serve the site and run its scheduled jobs (the embedded default of `make run`)."

    def add_arguments(self, parser):
        parser.add_argument("address", nargs="?", default="127.0.0.1:8000", help="host:port to serve on")
        parser.add_argument("--no-scheduler", action="store_true", help="serve only; run no scheduled job")
        parser.add_argument("--banner", default="", help="printed after the address once the port answers")

    def handle(self, *args, address: str, no_scheduler: bool, banner: str, **options):
        host, _, port_text = address.rpartition(":")
        host, port = host or "127.0.0.1", int(port_text)
        if _port_answers(host, port):
            raise CommandError(f"Something already answers on {host}:{port}: stop it, or pass another PORT.")
        if not settings.CELERY_TASK_ALWAYS_EAGER and not no_scheduler:
            self.stdout.write(
                "CELERY_TASK_ALWAYS_EAGER is off: scheduled jobs go to the broker; run `make worker` and `make beat`."
            )
            no_scheduler = True
        children: list[subprocess.Popen] = []
        manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
        try:
            if not no_scheduler:
                log = SCHEDULER_LOG.open("ab")
                children.append(
                    subprocess.Popen(  # noqa: S603 - our own scheduler
                        [
                            sys.executable,
                            "-m",
                            "celery",
                            "-A",
                            "billing_portal",
                            "beat",
                            "--loglevel",
                            "INFO",
                            "--scheduler",
                            settings.CELERY_BEAT_SCHEDULER,
                        ],
                        cwd=settings.BASE_DIR,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=os.environ.copy(),
                    )  # fmt: skip
                )
            server = subprocess.Popen([*manage, "runserver", f"{host}:{port}"], cwd=settings.BASE_DIR)  # noqa: S603
            children.append(server)
            deadline = time.monotonic() + WAIT_FOR_PORT_SECONDS
            while not _port_answers(host, port):
                if server.poll() is not None:
                    raise CommandError("The web server stopped before it served (see above).")
                if time.monotonic() > deadline:
                    raise CommandError(f"The web server did not answer on {host}:{port} within a few minutes.")
                time.sleep(0.2)
            self.stdout.write(
                self.style.SUCCESS(f"Serving on http://{host}:{port}/") + (f"  {banner}" if banner else "")
            )
            if not no_scheduler:
                self.stdout.write(
                    f"  Scheduled jobs run in the background (log: {SCHEDULER_LOG.name}); "
                    "the admin lists them under Periodic tasks with their last and next run."
                )
            self.stdout.write("  Stop with Ctrl-C.")
            while True:
                for child in children:
                    if child.poll() is not None:
                        raise CommandError(f"{' '.join(child.args[-3:])} stopped (exit {child.returncode}).")
                time.sleep(0.5)
        except KeyboardInterrupt:
            self.stdout.write("Stopping.")
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGINT)
            for child in children:
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
