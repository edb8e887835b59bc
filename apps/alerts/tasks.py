"""Thin Celery interfaces: ids in, one service call each."""

from celery import shared_task

from . import services


@shared_task(name="apps.alerts.tasks.alerts_evaluate_customers_task", time_limit=600, soft_time_limit=570)
def alerts_evaluate_customers_task(customer_ids: list[int]) -> int:
    """Evaluate these customers' alerts (one task per ingested batch, however many customers it names).
    Each customer's pending mark goes first: usage recorded from then on asks for another evaluation,
    usage recorded before is committed and read by this one."""
    recorded = 0
    for customer_id in customer_ids:
        services.alerts_evaluation_pending_clear(customer_id=customer_id)
        recorded += len(services.alerts_evaluate_customer(customer_id=customer_id))
    return recorded


@shared_task(name="apps.alerts.tasks.alerts_evaluate_all_task", time_limit=1800, soft_time_limit=1750)
def alerts_evaluate_all_task() -> int:
    """The sweep: every customer with an active alert, in case an evaluation was lost (a broker that
    was down) or spend moved without usage (a plan change)."""
    return sum(
        len(services.alerts_evaluate_customer(customer_id=customer_id))
        for customer_id in services.alerts_watched_customer_ids()
    )


@shared_task(
    bind=True,
    name="apps.alerts.tasks.alert_crossing_notify_task",
    time_limit=120,
    soft_time_limit=100,
    max_retries=5,
    default_retry_delay=60,
)
def alert_crossing_notify_task(self, crossing_id: int) -> bool:
    try:
        return services.alert_crossing_notify(crossing_id=crossing_id)
    except OSError as exc:  # the mail server: retried, bounded
        raise self.retry(exc=exc) from exc
