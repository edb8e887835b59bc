from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.core.backup import backup_restore
from apps.core.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Replace the database and the media files with a backup made by `backup` (checked against its "
        "manifest first). Everything written since the backup is lost. See docs/backup.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("source", type=Path, help="The backup folder.")
        parser.add_argument("--database", default="default", help="Database alias (default: %(default)s).")
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")

    def handle(self, *args, source: Path, database: str, yes: bool, **options):
        if not yes:
            answer = input(f"Replace the database '{database}' and all media files with {source}? Type 'yes': ")
            if answer.strip() != "yes":
                raise CommandError("Restore cancelled.")
        try:
            manifest = backup_restore(source=source, alias=database)
        except (ApplicationError, RuntimeError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"Restored the backup of {manifest['created_at']} from {source}"))
