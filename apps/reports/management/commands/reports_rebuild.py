from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from apps.reports.services import reports_refresh


class Command(BaseCommand):
    help = "Rebuild every summary table of the finance reports from scratch (or refresh them incrementally)."

    def add_arguments(self, parser):
        parser.add_argument("--as-of", help="Business time of the figures (ISO 8601, aware); default now.")
        parser.add_argument("--incremental", action="store_true", help="Only what changed since the last refresh.")

    def handle(self, *args, **options):
        now = None
        if options["as_of"]:
            try:
                now = datetime.fromisoformat(options["as_of"])
            except ValueError as exc:
                raise CommandError(f"--as-of: {exc}") from exc
            if now.tzinfo is None:
                raise CommandError("--as-of needs a time zone, e.g. 2026-12-01T00:00:00+00:00")
        refresh = reports_refresh(full=not options["incremental"], now=now)
        self.stdout.write(
            self.style.SUCCESS(
                f"Reports {'rebuilt' if refresh.full else 'refreshed'} as of {refresh.as_of:%Y-%m-%d %H:%M} UTC "
                f"in {refresh.duration_ms / 1000:.1f} s ({refresh.subscriptions_resegmented} subscriptions)."
            )
        )
