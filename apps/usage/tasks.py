"""Thin Celery interface of usage: the daily partition upkeep (CELERY_BEAT_SCHEDULE
`usage-partitions-ensure-daily`) and the key table's rotation (`usage-keys-rotate-daily`)."""

from celery import shared_task

from apps.core import clock

from .keys import keys_rotate
from .partitions import partitions_ensure


@shared_task(name="apps.usage.tasks.usage_partitions_ensure_task", time_limit=600, soft_time_limit=540)
def usage_partitions_ensure_task() -> list[str]:
    """Create the usage events' monthly partitions ahead of time (PostgreSQL; a no-op elsewhere) and
    move stray events out of the DEFAULT partition. Returns the months created."""
    return [str(month) for month in partitions_ensure(now=clock.now())]


@shared_task(name="apps.usage.tasks.usage_keys_rotate_task", time_limit=300, soft_time_limit=240)
def usage_keys_rotate_task() -> str:
    """Rotate the transaction ids' key table when a retention has passed and drop expired generations
    (PostgreSQL; a no-op elsewhere). Refused, changing nothing, when the retention is too short.
    Returns what it did."""
    return str(keys_rotate(now=clock.now()))
