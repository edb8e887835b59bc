from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.core import clock
from apps.usage.partitions import Month
from apps.usage.retention import ArchiveRefused, usage_month_archive, usage_month_archive_refusals


class Command(BaseCommand):
    help = (
        "Archive one month of usage events (PostgreSQL): export its partition to a gzip-compressed CSV file "
        "at the path given, then detach and drop the partition. Refused while the month's usage is still "
        "accepted, unbilled, in an open period or inside a lateness window (docs/scaling.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("month", help="the month to archive, YYYY-MM (UTC), e.g. 2026-09")
        parser.add_argument("--to", dest="path", help="the file to write, e.g. /archive/usage-2026-09.csv.gz")
        parser.add_argument(
            "--check", action="store_true", help="only say whether the month can be archived now, change nothing"
        )

    def handle(self, *args, month: str, path: str | None, check: bool, **options):
        try:
            chosen = Month.parse(month)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        now = clock.now()
        if check:
            reasons = usage_month_archive_refusals(month=chosen, now=now)
            if reasons:
                raise CommandError(f"{chosen} cannot be archived now:\n  " + "\n  ".join(reasons))
            self.stdout.write(f"{chosen} can be archived now.")
            return
        if not path:
            raise CommandError("--to is required: the file to write the month's events to (e.g. usage-2026-09.csv.gz).")
        try:
            result = usage_month_archive(month=chosen, path=Path(path), now=now)
        except ArchiveRefused as exc:
            raise CommandError(f"{chosen} not archived:\n  " + "\n  ".join(exc.reasons)) from exc
        self.stdout.write(
            f"{result.month}: {result.rows} events written to {result.path} ({result.size_bytes:,} bytes); "
            f"partition detached and dropped."
        )
