from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.core.backup import backup_create
from apps.core.errors import ApplicationError


class Command(BaseCommand):
    help = "Back up the database and the media files (PDF bills) into a new folder. See docs/backup.md."

    def add_arguments(self, parser):
        parser.add_argument("destination", type=Path, help="A new (or empty) folder for the backup.")
        parser.add_argument("--database", default="default", help="Database alias (default: %(default)s).")

    def handle(self, *args, destination: Path, database: str, **options):
        try:
            result = backup_create(destination=destination, alias=database)
        except (ApplicationError, RuntimeError) as exc:
            raise CommandError(str(exc)) from exc
        for name, sha256 in result.files.items():
            self.stdout.write(f"{name}  sha256 {sha256}")
        self.stdout.write(self.style.SUCCESS(f"Backup written to {result.path}"))
