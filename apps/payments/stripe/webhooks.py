"""Stripe events mapped onto our payments (connected to dj-stripe's webhook signals).

Our view (`views.py`) checks each event's size and signature and answers a replayed event id at
once; dj-stripe stores the event and syncs its object; then these handlers map the Stripe object to
our ids and call one of our services. Events can come late, twice under different ids, or out of
order, so a handler never trusts the event type alone: it reads the object's *current* state from
Stripe and brings our row in line with it, and every service it calls is idempotent. A handler that
fails makes dj-stripe answer 500, and Stripe delivers the event again later.
"""

from __future__ import annotations

import logging
from typing import Any

import stripe
from djstripe.event_handlers import djstripe_receiver

from apps.payments.models import Payment

from .client import object_id, request_options
from .collection import payment_apply_intent
from .refunds import charge_disputed_record, charge_refunds_sync

logger = logging.getLogger(__name__)


def _payment_for_intent(intent: Any) -> Payment | None:
    metadata = intent.get("metadata") or {}
    payment_id = metadata.get("payment_id")
    if payment_id and str(payment_id).isdigit():
        payment = Payment.objects.filter(pk=int(payment_id), provider="stripe").first()
        if payment is not None and payment.provider_payment_id in (None, "", intent["id"]):
            return payment
    return Payment.objects.filter(provider_payment_id=intent["id"]).first()


@djstripe_receiver(["payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.requires_action"])
def payment_intent_event(sender: Any, event: Any, **kwargs: Any) -> None:
    event_object = event.data["object"]
    payment = _payment_for_intent(event_object)
    if payment is None:
        logger.info("Stripe event %s: PaymentIntent %s is none of ours", event.id, event_object.get("id"))
        return
    intent = stripe.PaymentIntent.retrieve(event_object["id"], **request_options())
    payment_apply_intent(payment_id=payment.pk, intent=intent)


@djstripe_receiver("charge.refunded")
def charge_refunded_event(sender: Any, event: Any, **kwargs: Any) -> None:
    charge = stripe.Charge.retrieve(event.data["object"]["id"], expand=["refunds"], **request_options())
    charge_refunds_sync(charge=charge)


@djstripe_receiver("charge.dispute.created")
def charge_dispute_created_event(sender: Any, event: Any, **kwargs: Any) -> None:
    dispute = event.data["object"]
    charge_disputed_record(
        dispute_id=str(dispute["id"]),
        charge_id=object_id(dispute.get("charge")),
        payment_intent_id=object_id(dispute.get("payment_intent")),
        amount=int(dispute["amount"]),
        currency=str(dispute["currency"]),
        reason=str(dispute.get("reason") or ""),
    )
