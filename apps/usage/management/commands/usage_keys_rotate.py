from django.core.management.base import BaseCommand, CommandError

from apps.core import clock
from apps.usage.keys import KEYS_TABLE, RetentionTooShort, keys_rotate, retention_minimum, rotates


class Command(BaseCommand):
    help = (
        "Rotate the table of taken transaction ids (PostgreSQL): once per USAGE_EVENT_KEY_RETENTION_DAYS the "
        "current table becomes a generation and a new one starts, and generations rotated a retention ago are "
        "dropped. Idempotent; refused when the retention is shorter than ingestion and corrections need "
        "(docs/scaling.md). Nothing to do on other databases. Runs daily on Celery beat."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--check", action="store_true", help="only show the minimum retention and the generations, change nothing"
        )

    def handle(self, *args, check: bool, **options):
        minimum = retention_minimum()
        if check:
            self.stdout.write(f"Minimum retention: {minimum.days} days, because:\n  " + "\n  ".join(minimum.reasons))
            return
        try:
            result = keys_rotate(now=clock.now())
        except RetentionTooShort as exc:
            raise CommandError(exc.message) from exc
        if not rotates():
            self.stdout.write(f"Transaction ids are one table ({KEYS_TABLE}) on this database: nothing to rotate.")
            return
        self.stdout.write(str(result))
