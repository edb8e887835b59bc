"""Refunds of card payments through Stripe, and what Stripe tells us of refunds and disputes.

A refund of a Stripe payment (e.g. for a credit note refunding to the card) is created pending by
`refund_create`; once committed, `refund_created` brings it here: `stripe_refund_execute` asks Stripe
to refund (idempotency key `refund-<id>`, so a retry never refunds twice) and marks the refund
succeeded or failed. `charge.refunded` events settle refunds still pending and record refunds made
outside the product (in Stripe's dashboard); `charge.dispute.created` records the dispute.
"""

from __future__ import annotations

import logging
from typing import Any

import stripe
from django.db import transaction
from django.utils.translation import gettext

from apps.payments.constants import PaymentProvider, RefundStatus
from apps.payments.failures import stripe_status_text
from apps.payments.models import Payment, Refund
from apps.payments.services import refund_create, refund_mark_failed, refund_mark_succeeded

from .client import (
    RETRYABLE_ERRORS,
    StripeUnavailable,
    as_dict,
    error_message,
    money_from_stripe,
    object_id,
    request_options,
    stripe_amount,
    stripe_enabled,
)
from .models import StripeDispute

logger = logging.getLogger(__name__)


def stripe_refund_execute(*, refund_id: int) -> Refund:
    """Carry out a pending refund of a Stripe payment. Raises `StripeUnavailable` when Stripe could
    not be reached (run it again: same key)."""
    refund = Refund.objects.select_related("payment").get(pk=refund_id)
    payment = refund.payment
    if refund.status != RefundStatus.PENDING or payment.provider != PaymentProvider.STRIPE:
        return refund
    if not payment.provider_payment_id:
        return refund_mark_failed(
            refund_id=refund.pk,
            failure_code="no_payment_intent",
            failure_message="The payment has no Stripe PaymentIntent to refund.",
        )
    try:
        data = stripe.Refund.create(
            payment_intent=payment.provider_payment_id,
            amount=stripe_amount(refund.amount.amount, refund.currency),
            metadata={"refund_id": str(refund.pk), "payment_id": str(payment.pk)},
            **request_options(idempotency_key=f"refund-{refund.pk}"),
        )
    except RETRYABLE_ERRORS as error:
        raise StripeUnavailable(
            gettext("Stripe is unavailable: %(error)s") % {"error": error_message(error)}
        ) from error
    except stripe.StripeError as error:
        return refund_mark_failed(
            refund_id=refund.pk,
            failure_code=str(getattr(error, "code", None) or "stripe_error"),
            failure_message=error_message(error),
        )
    return _apply_refund(refund.pk, data)


def _apply_refund(refund_id: int, data: Any) -> Refund:
    data = as_dict(data)
    status = data.get("status")
    if status == "succeeded":
        return refund_mark_succeeded(refund_id=refund_id, provider_refund_id=str(data["id"]))
    if status in ("failed", "canceled"):
        return refund_mark_failed(
            refund_id=refund_id,
            failure_code=str(data.get("failure_reason") or status),
            failure_message=gettext("Stripe refund %(refund)s: %(status)s.")
            % {"refund": data["id"], "status": stripe_status_text(status)},
            provider_refund_id=str(data["id"]),
        )
    return Refund.objects.get(pk=refund_id)  # pending at Stripe: `charge.refunded` settles it


@transaction.atomic
def charge_refunds_sync(*, charge: Any) -> list[Refund]:
    """Bring our refunds of the charge's payment in line with the charge's refunds at Stripe."""
    charge = as_dict(charge)
    payment = Payment.objects.filter(
        provider=PaymentProvider.STRIPE, provider_payment_id=object_id(charge.get("payment_intent")) or "-"
    ).first()
    if payment is None:
        logger.info("Stripe charge %s: no payment of ours", charge.get("id"))
        return []
    refunds = (charge.get("refunds") or {}).get("data") or []
    settled = []
    for data in sorted(refunds, key=lambda item: (item.get("created") or 0, item["id"])):
        ours = Refund.objects.filter(provider_refund_id=data["id"]).first()
        metadata_id = (data.get("metadata") or {}).get("refund_id")
        if ours is None and metadata_id and str(metadata_id).isdigit():
            ours = Refund.objects.filter(pk=int(metadata_id), payment=payment).first()
        if ours is None:
            if data.get("status") != "succeeded":
                continue
            # Refunded outside the product (Stripe's dashboard): recorded, already done.
            ours = refund_create(
                payment_id=payment.pk,
                amount=money_from_stripe(int(data["amount"]), str(data["currency"])),
                reason="Refunded in Stripe",
            )
        settled.append(_apply_refund(ours.pk, data))
    return settled


@transaction.atomic
def charge_disputed_record(
    *,
    dispute_id: str,
    charge_id: str | None,
    payment_intent_id: str | None,
    amount: int,
    currency: str,
    reason: str,
) -> StripeDispute | None:
    """Record a dispute (chargeback) opened on one of our card payments, once per dispute."""
    payment = None
    if payment_intent_id:
        payment = Payment.objects.filter(provider_payment_id=payment_intent_id).first()
    if payment is None and charge_id and stripe_enabled():
        charge: dict[str, Any] | None = None
        try:
            charge = as_dict(stripe.Charge.retrieve(charge_id, **request_options()))
        except stripe.StripeError:
            charge = None
        intent_id = object_id(charge.get("payment_intent")) if charge else None
        payment = Payment.objects.filter(provider_payment_id=intent_id).first() if intent_id else None
    if payment is None:
        logger.info("Stripe dispute %s: no payment of ours", dispute_id)
        return None
    dispute, created = StripeDispute.objects.get_or_create(
        stripe_dispute_id=dispute_id,
        defaults={
            "payment": payment,
            "amount": money_from_stripe(amount, currency),
            "amount_currency": currency.upper(),
            "reason": reason[:64],
        },
    )
    if created:
        logger.warning("Payment %s disputed (%s): %s %s", payment.pk, reason, dispute.amount, currency.upper())
    return dispute


def refund_is_for_stripe(refund_id: int) -> bool:
    return Refund.objects.filter(
        pk=refund_id, status=RefundStatus.PENDING, payment__provider=PaymentProvider.STRIPE
    ).exists()
