"""Thin Celery interface of dunning: the periodic run (CELERY_BEAT_SCHEDULE `dunning-run-hourly`)."""

from datetime import datetime

from celery import shared_task

from .services import dunning_run_due


@shared_task(name="apps.payments.dunning.tasks.dunning_run_task", time_limit=1800, soft_time_limit=1700)
def dunning_run_task(as_of: str | None = None) -> int:
    """Start the dunnings whose moment came and run every due action once (customers on test clocks
    are left to their clocks). Returns how many actions ran."""
    return dunning_run_due(now=datetime.fromisoformat(as_of) if as_of else None)
