"""Thin Celery interfaces to the reports' refresh."""

from datetime import datetime

from celery import shared_task

from .services import reports_refresh


@shared_task(name="apps.reports.tasks.reports_refresh_task", time_limit=1800, soft_time_limit=1700)
def reports_refresh_task(as_of: str | None = None, full: bool = False) -> int:
    """Refresh the summary tables as of `as_of` (ISO 8601, aware) or now; returns the ReportRefresh id.
    Idempotent: a second refresh finds nothing new and rewrites the same figures."""
    now = datetime.fromisoformat(as_of) if as_of else None
    return reports_refresh(full=full, now=now).pk
