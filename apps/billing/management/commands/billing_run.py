from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from apps.billing.services import bill_due_subscriptions
from apps.invoices.constants import BillingRunTrigger


class Command(BaseCommand):
    help = "Invoice every subscription period that has begun (as of now, or --as-of), then finalize due drafts."

    def add_arguments(self, parser):
        parser.add_argument(
            "--as-of",
            help="ISO 8601 moment with a UTC offset, e.g. 2026-12-01T00:00:00+00:00 (default: now).",
        )

    def handle(self, *args, as_of: str | None = None, **options):
        now = None
        if as_of:
            try:
                now = datetime.fromisoformat(as_of)
            except ValueError as exc:
                raise CommandError(f"--as-of {as_of!r} is not an ISO 8601 datetime") from exc
            if now.tzinfo is None:
                raise CommandError("--as-of needs a UTC offset, e.g. 2026-12-01T00:00:00+00:00")
        run = bill_due_subscriptions(now=now, trigger=BillingRunTrigger.COMMAND)
        self.stdout.write(
            f"Billing run {run.pk} as of {run.as_of.isoformat()}: {run.due_count} due, "
            f"{run.invoiced_count} invoiced, {run.skipped_count} skipped, {run.failed_count} failed, "
            f"{run.finalized_count} drafts finalized in {run.duration_seconds:.2f}s."
        )
        for error in run.errors:
            self.stderr.write(f"  failed: {error}")
        if run.failed_count:
            raise CommandError(f"{run.failed_count} item(s) failed; see the billing run in the admin.")
