"""An open invoice paid now by the customer, from the portal, with one of their saved cards.

Unlike `invoice_collect` (off-session attempts numbered for dunning), the customer is present: the
PaymentIntent is confirmed on session, and a bank's 3-D Secure challenge is passed in the browser
(Stripe.js `confirmCardPayment` with the intent's client secret, see `payment_client_secret`); the
webhook or `payment_refresh` then settles the payment. Each submission of the pay form carries a
key of its own, so a double click charges once. The same submission is sent again only within
`ATTEMPT_SEND_WINDOW` of its payment's creation (Stripe forgets keys after about a day); past it, the
payment is looked up at Stripe instead (`pending_attempt_reconcile`).
"""

from __future__ import annotations

import logging
from typing import Any

import stripe
from django.db import transaction
from django.utils.translation import gettext

from apps.accounts.models import Customer
from apps.core.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from apps.invoices.constants import InvoiceStatus
from apps.invoices.models import Invoice
from apps.payments.constants import PaymentStatus
from apps.payments.models import Payment
from apps.payments.services import payment_create_pending

from .client import error_message, request_options
from .collection import (
    _card_payments_of,
    _send_window_passed,
    _waiting_attempts_cancel,
    payment_apply_intent,
    payment_intent_confirm,
    pending_attempt_reconcile,
)
from .customers import stripe_customer_ensure, stripe_payment_methods_list

logger = logging.getLogger(__name__)


def invoice_pay_now_key(*, invoice_id: int, request_key: str) -> str:
    return f"invoice-{invoice_id}-portal-{request_key}"


@transaction.atomic
def _pending(*, customer_id: int, invoice_id: int, key: str) -> Payment:
    # The payments' lock order: the customer, then its invoices.
    Customer.objects.select_for_update().filter(pk=customer_id).first()
    invoice = Invoice.objects.select_for_update().filter(pk=invoice_id, customer_id=customer_id).first()
    if invoice is None:
        raise NotFound(gettext("No such invoice."))
    existing = Payment.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return existing
    in_progress = _card_payments_of(invoice.pk).filter(status__in=[PaymentStatus.PENDING, PaymentStatus.PROCESSING])
    if in_progress.exists():  # its charge may have gone through: another would charge twice
        raise Conflict(
            gettext("A card payment of this invoice is still being processed; try again in a moment."),
            fields={"invoice": [gettext("A payment is in progress.")]},
        )
    if invoice.status != InvoiceStatus.OPEN or invoice.amount_due.amount <= 0:
        raise InvalidTransition(
            gettext("Nothing is due on this invoice."), fields={"invoice": [gettext("Nothing is due.")]}
        )
    return payment_create_pending(
        customer_id=customer_id, invoice_ids=[invoice.pk], amount=invoice.amount_due.amount, provider="stripe",
        method="card", idempotency_key=key,
    )  # fmt: skip


def _stale_attempts_reconcile(*, customer_id: int, invoice_id: int, key: str) -> None:
    """Before a new submission: the customer's earlier card payments of the invoice left `pending` past
    their send window are looked up at Stripe (found: recorded, so nothing more is charged; never
    sent: canceled), so that they no longer hold the invoice up with a 409."""
    stale = (
        _card_payments_of(invoice_id)
        .filter(customer_id=customer_id, status=PaymentStatus.PENDING)
        .exclude(idempotency_key=key)
        .order_by("pk")
    )
    for payment in stale:
        if _send_window_passed(payment):
            pending_attempt_reconcile(payment_id=payment.pk)


def invoice_pay_now(
    *, customer_id: int, invoice_id: int, request_key: str, payment_method_id: str | None = None
) -> Payment:
    """Charge what is due on one of the customer's open invoices to one of its cards (the default one
    unless `payment_method_id` names another of its cards). Returns the payment: `succeeded`,
    `failed` (declined: code and message recorded), or `requires_action` (3-D Secure, in the browser)."""
    if not request_key.strip():
        raise ValidationFailed(gettext("A request key is needed."), fields={"request_key": [gettext("Missing.")]})
    cards = {card.id: card for card in stripe_payment_methods_list(customer_id=customer_id)}
    if payment_method_id is None:
        payment_method_id = next((card.id for card in cards.values() if card.is_default), None)
        if payment_method_id is None:
            raise ValidationFailed(
                gettext("Add a card first."), fields={"payment_method": [gettext("No card on file.")]}
            )
    elif payment_method_id not in cards:
        raise NotFound(gettext("No such card."), fields={"payment_method": [gettext("Not found.")]})
    key = invoice_pay_now_key(invoice_id=invoice_id, request_key=request_key.strip())
    _stale_attempts_reconcile(customer_id=customer_id, invoice_id=invoice_id, key=key)
    payment = _pending(customer_id=customer_id, invoice_id=invoice_id, key=key)
    if payment.provider_payment_id or payment.status != PaymentStatus.PENDING:  # this submission had its answer
        return payment
    if _send_window_passed(payment):
        # The same submission long after (its answer lost): Stripe may have forgotten the key, and sending
        # it again could charge twice. It is looked up at Stripe instead, like a collection attempt.
        return pending_attempt_reconcile(payment_id=payment.pk)
    _waiting_attempts_cancel(invoice_id=invoice_id)  # an earlier one waiting for 3-D Secure: not both
    link = stripe_customer_ensure(customer_id=customer_id)
    return payment_intent_confirm(
        payment=payment,
        stripe_customer_id=link.stripe_customer_id,
        payment_method_id=payment_method_id,
        off_session=False,
        metadata={"payment_id": str(payment.pk), "invoice_id": str(invoice_id), "attempt": "portal"},
    )


def payment_client_secret(*, payment: Payment) -> str:
    """The client secret of a payment's PaymentIntent, for Stripe.js to pass 3-D Secure in the browser."""
    if not payment.provider_payment_id:
        raise NotFound(gettext("This payment has no PaymentIntent."))
    try:
        intent: Any = stripe.PaymentIntent.retrieve(payment.provider_payment_id, **request_options())
    except stripe.StripeError as error:
        raise NotFound(gettext("PaymentIntent not found: %(error)s") % {"error": error_message(error)}) from error
    return str(intent["client_secret"])


def payment_refresh(*, payment: Payment) -> Payment:
    """Read the payment's PaymentIntent again and apply its status (after 3-D Secure in the browser,
    without waiting for the webhook)."""
    if not payment.provider_payment_id:
        return payment
    try:
        intent = stripe.PaymentIntent.retrieve(payment.provider_payment_id, **request_options())
    except stripe.StripeError as error:
        logger.warning("PaymentIntent %s not read: %s", payment.provider_payment_id, error_message(error))
        return payment
    return payment_apply_intent(payment_id=payment.pk, intent=intent)
