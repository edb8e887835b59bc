"""Thin Celery interfaces for signing in to the portal: sign-in links and password resets, one service
call each, on the `email` queue (their names are the ones they had in apps.accounts, so that queued
tasks keep working). A mail server failure is retried as for every email to customer users."""

from celery import shared_task

from apps.accounts.tasks import EMAIL_MAX_RETRIES, email_send_or_retry
from apps.core.queue import enqueue

from . import services


@shared_task(name="apps.accounts.tasks.portal_login_link_request_task", time_limit=120, soft_time_limit=100)
def portal_login_link_request_task(email: str) -> int:
    """Someone asked for a sign-in link to `email`: queue one email per customer user with it (none
    for an unknown or staff address). Returns how many."""
    user_ids = services.portal_login_link_recipients(email=email)
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
    return email_send_or_retry(
        self, f"sign-in link to user {user_id}", lambda: services.portal_login_link_email_send(user_id=user_id)
    )


@shared_task(name="apps.accounts.tasks.portal_password_reset_request_task", time_limit=120, soft_time_limit=100)
def portal_password_reset_request_task(email: str, domain: str, protocol: str, language: str) -> int:
    """Someone asked to reset the password of `email`: queue one email per customer user with it."""
    user_ids = services.portal_password_reset_recipients(email=email)
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
    return email_send_or_retry(
        self,
        f"password reset of user {user_id}",
        lambda: services.portal_password_reset_email_send(
            user_id=user_id, domain=domain, protocol=protocol, language=language
        ),
    )
