from django.core.management.base import BaseCommand

from apps.core import clock
from apps.usage.partitions import MONTHS_AHEAD, is_partitioned, partitions, partitions_ensure


class Command(BaseCommand):
    help = (
        "Create the monthly partitions of the usage events from the oldest month still accepted to "
        "--months-ahead months ahead, and give each month found in the DEFAULT partition a partition of "
        "its own (PostgreSQL; nothing to do on other databases). Runs daily on Celery beat."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--months-ahead", type=int, default=MONTHS_AHEAD, help="months after the current one (default: %(default)s)"
        )

    def handle(self, *args, months_ahead: int, **options):
        if not is_partitioned():
            self.stdout.write("Usage events are one plain table on this database: no partitions to create.")
            return
        created = partitions_ensure(now=clock.now(), months_ahead=months_ahead)
        self.stdout.write(f"Created: {', '.join(map(str, created)) or 'none'}.")
        self.stdout.write(f"Partitions: {', '.join(map(str, partitions()))} (and the DEFAULT partition).")
