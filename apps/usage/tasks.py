"""Thin Celery interface of usage: the daily partition upkeep (CELERY_BEAT_SCHEDULE
`usage-partitions-ensure-daily`)."""

from celery import shared_task

from apps.core import clock

from .partitions import partitions_ensure


@shared_task(name="apps.usage.tasks.usage_partitions_ensure_task", time_limit=600, soft_time_limit=540)
def usage_partitions_ensure_task() -> list[str]:
    """Create the usage events' monthly partitions ahead of time (PostgreSQL; a no-op elsewhere) and
    move stray events out of the DEFAULT partition. Returns the months created."""
    return [str(month) for month in partitions_ensure(now=clock.now())]
