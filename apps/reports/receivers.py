"""After a billing run closes, refresh the reports (a Celery task, queued once the run committed)."""

from typing import Any

from django.conf import settings
from django.dispatch import receiver

from apps.billing.services.billing import billing_run_completed
from apps.core.queue import enqueue


@receiver(billing_run_completed, dispatch_uid="reports_refresh_after_billing_run")
def refresh_after_billing_run(sender: Any, run_id: int, as_of: str, **kwargs: Any) -> None:
    if not settings.REPORTS_REFRESH_AFTER_BILLING_RUN:
        return
    from .tasks import reports_refresh_task

    enqueue(reports_refresh_task)  # the 10-minute refresh catches up if the broker is down
