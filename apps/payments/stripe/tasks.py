"""Thin Celery interfaces to card collection: ids in, one service call each."""

from __future__ import annotations

import logging

from celery import shared_task

from apps.core.errors import ApplicationError

from .client import StripeUnavailable
from .collection import (
    COLLECT_MAX_RETRIES,
    COLLECT_RETRY_SECONDS,
    COLLECT_TIME_LIMIT_SECONDS,
    invoice_collect,
    invoice_pay_link_email_send,
    payment_action_email_send,
)
from .refunds import stripe_refund_execute

logger = logging.getLogger(__name__)

# A lost answer or a Stripe outage: the same attempt again (same idempotency key), a little later, up to
# COLLECT_MAX_RETRIES times (the attempt's send window, `collection.ATTEMPT_SEND_WINDOW`, counts them).


@shared_task(
    bind=True,
    name="apps.payments.stripe.tasks.invoice_collect_task",
    time_limit=COLLECT_TIME_LIMIT_SECONDS,
    soft_time_limit=COLLECT_TIME_LIMIT_SECONDS - 20,
)
def invoice_collect_task(self, invoice_id: int, attempt: int = 1) -> str | None:  # type: ignore[no-untyped-def]
    """Charge the invoice's customer (attempt `attempt`). Returns the payment's status."""
    try:
        payment = invoice_collect(invoice_id=invoice_id, attempt=attempt)
    except StripeUnavailable as error:
        if self.request.retries >= COLLECT_MAX_RETRIES:
            # The payment stays pending: a webhook still settles it if Stripe did charge.
            logger.error("invoice %s attempt %s: Stripe unavailable, giving up: %s", invoice_id, attempt, error)
            return None
        raise self.retry(exc=error, countdown=COLLECT_RETRY_SECONDS * 2**self.request.retries) from error
    except ApplicationError as error:  # not collectable (paid meanwhile, voided, nothing due)
        logger.info("invoice %s attempt %s not collected: %s", invoice_id, attempt, error.message)
        return None
    return str(payment.status)


@shared_task(name="apps.payments.stripe.tasks.payment_action_email_task", time_limit=120, soft_time_limit=110)
def payment_action_email_task(payment_id: int) -> bool:
    return payment_action_email_send(payment_id=payment_id)


@shared_task(name="apps.payments.stripe.tasks.invoice_pay_link_email_task", time_limit=120, soft_time_limit=110)
def invoice_pay_link_email_task(invoice_id: int) -> bool:
    return invoice_pay_link_email_send(invoice_id=invoice_id)


@shared_task(bind=True, name="apps.payments.stripe.tasks.stripe_refund_task", time_limit=300, soft_time_limit=280)
def stripe_refund_task(self, refund_id: int) -> str | None:  # type: ignore[no-untyped-def]
    """Carry out a pending refund of a card payment at Stripe. Returns the refund's status."""
    try:
        refund = stripe_refund_execute(refund_id=refund_id)
    except StripeUnavailable as error:
        if self.request.retries >= COLLECT_MAX_RETRIES:
            logger.error("refund %s: Stripe unavailable, giving up: %s", refund_id, error)
            return None
        raise self.retry(exc=error, countdown=COLLECT_RETRY_SECONDS * 2**self.request.retries) from error
    return str(refund.status)
