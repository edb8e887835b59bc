"""Thin Celery interfaces for the emails to customer users (invitations here; sign-in links and
password resets in apps.portal.tasks): ids in, one service call each, on the `email` queue.

A mail server failure (smtplib errors are OSErrors) is retried with growing delays; the request that
queued the email has long answered. Run eagerly (CELERY_TASK_ALWAYS_EAGER, development) the task runs
inside the request and there is no worker to retry later: the failure is logged, never raised."""

import logging
from typing import Any

from celery import shared_task

from .invitations import customer_invitation_email_send

logger = logging.getLogger(__name__)

EMAIL_MAX_RETRIES = 5


def email_send_or_retry(task: Any, what: str, send: Any) -> bool:
    try:
        return send()
    except OSError as exc:
        if task.app.conf.task_always_eager or task.request.retries >= task.max_retries:
            logger.error("%s not sent, giving up: %s: %s", what, type(exc).__name__, exc)
            return False
        logger.warning("%s not sent (will retry): %s: %s", what, type(exc).__name__, exc)
        raise task.retry(exc=exc, countdown=60 * 2**task.request.retries) from exc


@shared_task(
    name="apps.accounts.tasks.customer_invitation_send_task",
    bind=True,
    time_limit=120,
    soft_time_limit=100,
    max_retries=EMAIL_MAX_RETRIES,
)
def customer_invitation_send_task(self, invitation_id: int) -> bool:
    return email_send_or_retry(
        self,
        f"invitation {invitation_id}",
        lambda: customer_invitation_email_send(invitation_id=invitation_id),
    )
