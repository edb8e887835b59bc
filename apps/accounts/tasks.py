"""Thin Celery interfaces for the portal's emails: ids in, one service call each, on the `email` queue.

A mail server failure (smtplib errors are OSErrors) is retried with growing delays; the request that
queued the email has long answered. Run eagerly (CELERY_TASK_ALWAYS_EAGER, development) the task runs
inside the request and there is no worker to retry later: the failure is logged, never raised."""

import logging
from typing import Any

from celery import shared_task

from apps.core.queue import enqueue

from .invitations import customer_invitation_email_send
from .services import (
    portal_login_link_email_send,
    portal_login_link_recipients,
    portal_password_reset_email_send,
    portal_password_reset_recipients,
)

logger = logging.getLogger(__name__)

EMAIL_MAX_RETRIES = 5


def _send_or_retry(task: Any, what: str, send: Any) -> bool:
    try:
        return send()
    except OSError as exc:
        if task.app.conf.task_always_eager or task.request.retries >= task.max_retries:
            logger.error("%s not sent, giving up: %s: %s", what, type(exc).__name__, exc)
            return False
        logger.warning("%s not sent (will retry): %s: %s", what, type(exc).__name__, exc)
        raise task.retry(exc=exc, countdown=60 * 2**task.request.retries) from exc


@shared_task(name="apps.accounts.tasks.portal_login_link_request_task", time_limit=120, soft_time_limit=100)
def portal_login_link_request_task(email: str) -> int:
    """Someone asked for a sign-in link to `email`: queue one email per customer user with it (none
    for an unknown or staff address). Returns how many."""
    user_ids = portal_login_link_recipients(email=email)
    for user_id in user_ids:
        enqueue(portal_login_link_email_task, user_id)
    return len(user_ids)


@shared_task(
    name="apps.accounts.tasks.portal_login_link_email_task",
    bind=True,
    time_limit=120,
    soft_time_limit=100,
    max_retries=EMAIL_MAX_RETRIES,
)
def portal_login_link_email_task(self, user_id: int) -> bool:
    return _send_or_retry(
        self, f"sign-in link to user {user_id}", lambda: portal_login_link_email_send(user_id=user_id)
    )


@shared_task(
    name="apps.accounts.tasks.customer_invitation_send_task",
    bind=True,
    time_limit=120,
    soft_time_limit=100,
    max_retries=EMAIL_MAX_RETRIES,
)
def customer_invitation_send_task(self, invitation_id: int) -> bool:
    return _send_or_retry(
        self,
        f"invitation {invitation_id}",
        lambda: customer_invitation_email_send(invitation_id=invitation_id),
    )


@shared_task(name="apps.accounts.tasks.portal_password_reset_request_task", time_limit=120, soft_time_limit=100)
def portal_password_reset_request_task(email: str, domain: str, protocol: str, language: str) -> int:
    """Someone asked to reset the password of `email`: queue one email per customer user with it."""
    user_ids = portal_password_reset_recipients(email=email)
    for user_id in user_ids:
        enqueue(portal_password_reset_email_task, user_id, domain, protocol, language)
    return len(user_ids)


@shared_task(
    name="apps.accounts.tasks.portal_password_reset_email_task",
    bind=True,
    time_limit=120,
    soft_time_limit=100,
    max_retries=EMAIL_MAX_RETRIES,
)
def portal_password_reset_email_task(self, user_id: int, domain: str, protocol: str, language: str) -> bool:
    return _send_or_retry(
        self,
        f"password reset of user {user_id}",
        lambda: portal_password_reset_email_send(user_id=user_id, domain=domain, protocol=protocol, language=language),
    )
