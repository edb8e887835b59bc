import logging
import time
from contextlib import contextmanager

from django.core.management.base import BaseCommand, CommandError

from apps.demo.demo_data import DemoDataRefused, demo_data_load


class Command(BaseCommand):
    help = (
        "Load a demo catalog, twenty customers and a few months of billing history (invoices with their "
        "PDFs, payments, one void and one uncollectible bill; customers who upgrade, drop seats, leave and "
        "come back), and three usage-based sellers (a cloud host, an IoT connectivity seller, a CDN) with "
        "their customers' events and last month's invoices. Does nothing if the demo data is there."
    )

    def handle(self, *args, **options):
        started = time.monotonic()

        def progress(step: str) -> None:
            self.stdout.write(f"  [{time.monotonic() - started:5.0f} s] {step}…")
            self.stdout.flush()

        self.stdout.write("Loading the demo data (a minute or two: it replays months of daily billing runs).")
        try:
            with _quiet(enabled=options["verbosity"] < 2):
                summary = demo_data_load(progress=progress)
        except DemoDataRefused as exc:
            raise CommandError(str(exc)) from exc
        if not summary.created:
            self.stdout.write("Demo data is already present; nothing to do.")
            return
        by_status = ", ".join(f"{count} {status}" for status, count in sorted(summary.invoices_by_status.items()))
        total = sum(summary.invoices_by_status.values())
        self.stdout.write(
            self.style.SUCCESS(f"Demo data loaded in {summary.seconds:.1f} s.")
            + f"\n  customers:     {summary.customers}"
            + f"\n  subscriptions: {summary.subscriptions}"
            + f"\n  invoices:      {total} ({by_status})"
            + f"\n  billing runs:  {summary.billing_runs} (one a day, replayed)"
        )
        if summary.pdfs_rendered_at_the_end:
            self.stdout.write(f"  PDFs rendered after the replay: {summary.pdfs_rendered_at_the_end}")


# One log line per replayed billing run and per rendered PDF drowns the summary; -v 2 shows them.
NOISY_LOGGERS = ("apps.billing.services.billing", "celery.app.trace")


@contextmanager
def _quiet(*, enabled: bool):
    if not enabled:
        yield
        return
    loggers = [logging.getLogger(name) for name in NOISY_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
