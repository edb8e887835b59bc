from celery import shared_task

from . import services


@shared_task(name="apps.webhooks.tasks.webhook_events_collect_task", time_limit=600, soft_time_limit=570)
def webhook_events_collect_task() -> int:
    return services.webhook_events_collect()


@shared_task(name="apps.webhooks.tasks.webhook_delivery_attempt_task", time_limit=120, soft_time_limit=100)
def webhook_delivery_attempt_task(delivery_id: int) -> int | None:
    attempt = services.webhook_delivery_attempt(delivery_id=delivery_id)
    return attempt.response_status if attempt is not None else None


@shared_task(name="apps.webhooks.tasks.webhook_deliveries_requeue_due_task", time_limit=120, soft_time_limit=100)
def webhook_deliveries_requeue_due_task() -> int:
    return services.webhook_deliveries_requeue_due()
