"""Collecting open invoices by card: one off-session PaymentIntent per attempt.

`invoice_collect(invoice_id=…, attempt=n)` is the one way a card is charged for an invoice (on
finalization with `attempt=1`, by dunning retries with the next numbers, by staff "charge now").
Every attempt has its own `Payment` row and its own idempotency key, `invoice-<id>-attempt-<n>`,
sent to Stripe with the PaymentIntent: the same attempt run again — a Celery retry after a timeout,
a redelivered task, a second click — sends the same request with the same key, and Stripe answers
with the PaymentIntent it already made instead of charging again.

The pending payment is committed *before* Stripe is called: whatever happens to this process after
Stripe charged, the webhook finds the payment (its id is in the PaymentIntent's metadata).

An attempt is sent under its key only by its own collection task, within `ATTEMPT_SEND_WINDOW` of its
payment's creation. Stripe forgets idempotency keys after about a day, so an attempt still `pending`
later (dunning retries come days later) is never sent again: it is looked up at Stripe instead
(`pending_attempt_reconcile`), by the payment id in its PaymentIntent's metadata.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import stripe
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string, select_template
from django.utils import timezone, translation
from django.utils.translation import gettext
from djstripe import models as djstripe_models

from apps.accounts.models import Customer
from apps.accounts.selectors import customer_invoice_recipients
from apps.core.errors import ApplicationError, Conflict, InvalidTransition, NotFound, ValidationFailed
from apps.core.queue import enqueue
from apps.invoices.constants import InvoiceStatus
from apps.invoices.models import Invoice
from apps.payments.constants import PaymentProvider, PaymentStatus
from apps.payments.models import Payment
from apps.payments.services import (
    payment_cancel,
    payment_create_pending,
    payment_mark_failed,
    payment_mark_processing,
    payment_mark_requires_action,
    payment_mark_succeeded,
    payment_mark_succeeded_after_cancel,
)

from .client import (
    RETRYABLE_ERRORS,
    StripeUnavailable,
    as_dict,
    error_message,
    request_options,
    stripe_amount,
    stripe_card_amount_refusal,
    stripe_enabled,
)
from .customers import stripe_customer_ensure, stripe_customer_get

logger = logging.getLogger(__name__)

# Settled for good: no later answer from Stripe moves these (a failed payment may still succeed, when
# its PaymentIntent is confirmed again, e.g. by the customer in the portal).
SETTLED = {PaymentStatus.SUCCEEDED, PaymentStatus.CANCELED, PaymentStatus.REVERSED}

# The collection task's retries of one attempt, under the attempt's own key (`tasks.invoice_collect_task`).
COLLECT_MAX_RETRIES = 5
COLLECT_RETRY_SECONDS = 60
COLLECT_TIME_LIMIT_SECONDS = 300
# How long after its payment was created an attempt may still be on its way to Stripe: every wait and
# run of its task's retries, with a margin for a busy queue. Past it, the attempt is never sent again.
ATTEMPT_SEND_WINDOW = (
    timedelta(seconds=COLLECT_RETRY_SECONDS * (2**COLLECT_MAX_RETRIES - 1))  # the waits between runs
    + timedelta(seconds=COLLECT_TIME_LIMIT_SECONDS * (COLLECT_MAX_RETRIES + 1))  # the runs
    + timedelta(minutes=30)
)
# How far the clocks of our hosts (the one that wrote the payment, the one reconciling it) may differ.
CLOCK_SKEW = timedelta(minutes=5)
# The sender checks the window immediately before `PaymentIntent.create`, but its request may still reach
# Stripe a while after that check: the rest of its run (a task is killed at its time limit), every
# network try of the request (Stripe's timeout, times the client's retries plus the first try), and the
# hosts' clock skew. The reconciler cancels an attempt Stripe does not know only once the window *and*
# this margin are over: before that, the sender may still be on its way and a new key could charge twice.
ATTEMPT_CANCEL_MARGIN = (
    timedelta(seconds=COLLECT_TIME_LIMIT_SECONDS)
    + timedelta(seconds=settings.STRIPE_TIMEOUT_SECONDS * (settings.STRIPE_MAX_NETWORK_RETRIES + 1))
    + CLOCK_SKEW
)
# Stripe's clock and the app host's may differ (a fast app clock would hide the PaymentIntent from a
# tight lookup): the lookup starts a day before the payment was created, and ends a day after the attempt
# could last have reached Stripe (its send window and cancel margin), which also bounds the paging.
LOOKUP_MARGIN = timedelta(days=1)


def invoice_attempt_key(*, invoice_id: int, attempt: int) -> str:
    return f"invoice-{invoice_id}-attempt-{attempt}"


def invoice_pay_link(*, invoice_id: int) -> str:
    """Where the customer pays an invoice (or authenticates a card payment) in the portal."""
    return f"{settings.PORTAL_BASE_URL.rstrip('/')}/portal/invoices/{invoice_id}/pay/"


@transaction.atomic
def _attempt_start(*, invoice_id: int, attempt: int) -> Payment:
    """The attempt's payment: the existing one (a retry of the same attempt), or a new pending one
    for what is due now."""
    key = invoice_attempt_key(invoice_id=invoice_id, attempt=attempt)
    customer_id = Invoice.objects.filter(pk=invoice_id).values_list("customer_id", flat=True).first()
    if customer_id is None:
        raise NotFound(gettext("Invoice %(invoice_id)s does not exist.") % {"invoice_id": invoice_id})
    # The payments' lock order: the customer, then its invoices.
    Customer.objects.select_for_update().get(pk=customer_id)
    invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
    existing = Payment.objects.filter(idempotency_key=key).first()
    if existing is None or existing.status != PaymentStatus.PENDING:
        pass
    elif invoice.status != InvoiceStatus.OPEN or invoice.amount_due < existing.amount:
        # Paid (or voided, or partly paid) meanwhile: sending it again could charge what is not due.
        raise InvalidTransition(
            gettext(
                "Invoice %(invoice)s is %(invoice_status)s with %(amount_due)s due: card payment "
                "#%(existing_pk)s is not sent again (Stripe's webhook, or a lookup at Stripe, settles it)."
            )
            % {
                "invoice": invoice,
                "invoice_status": invoice.get_status_display().lower(),
                "amount_due": invoice.amount_due,
                "existing_pk": existing.pk,
            },
            fields={"invoice": [gettext("The invoice is no longer open with this amount due.")]},
        )
    if existing is not None:
        return existing
    in_progress = _card_payments_of(invoice.pk).filter(status__in=[PaymentStatus.PENDING, PaymentStatus.PROCESSING])
    if first := in_progress.order_by("pk").first():
        # Its charge may have gone through (an answer not known yet): another would charge twice.
        raise Conflict(
            gettext(
                "Card payment #%(first_pk)s of invoice %(invoice)s is still %(first_status)s: its outcome "
                "comes first (run its own attempt again, or wait for Stripe's webhook)."
            )
            % {"first_pk": first.pk, "invoice": invoice, "first_status": first.get_status_display().lower()},
            fields={
                "invoice": [
                    gettext("A card payment of this invoice is still %(first_status)s.")
                    % {"first_status": first.get_status_display().lower()}
                ]
            },
        )
    if invoice.status != InvoiceStatus.OPEN:
        raise InvalidTransition(
            gettext("Invoice %(invoice)s is %(invoice_status)s: only open invoices are collected.")
            % {"invoice": invoice, "invoice_status": invoice.get_status_display().lower()},
            fields={
                "invoice": [
                    gettext("The invoice is %(invoice_status)s, not open.")
                    % {"invoice_status": invoice.get_status_display().lower()}
                ]
            },
        )
    if attempt < 1:
        raise ValidationFailed(
            gettext("Attempts are numbered from 1."), fields={"attempt": [gettext("Must be 1 or more.")]}
        )
    amount_due = invoice.amount_due
    if amount_due.amount <= 0:
        raise InvalidTransition(
            gettext("Nothing is due on invoice %(invoice)s.") % {"invoice": invoice},
            fields={"invoice": [gettext("Nothing is due on the invoice.")]},
        )
    return payment_create_pending(
        customer_id=invoice.customer_id,
        invoice_ids=[invoice.pk],
        amount=amount_due.amount,
        provider="stripe",
        method="card",
        idempotency_key=key,
    )


def _card_payments_of(invoice_id: int) -> Any:
    return Payment.objects.filter(provider=PaymentProvider.STRIPE, allocations__invoice_id=invoice_id)


def _waiting_attempts_cancel(*, invoice_id: int) -> None:
    """Before a new attempt: earlier ones still waiting for the customer's 3-D Secure are canceled at
    Stripe (so that the customer cannot complete them as well) and here."""
    for waiting in _card_payments_of(invoice_id).filter(status=PaymentStatus.REQUIRES_ACTION).order_by("pk"):
        try:
            stripe.PaymentIntent.cancel(
                waiting.provider_payment_id, **request_options(idempotency_key=f"payment-{waiting.pk}-cancel")
            )
        except RETRYABLE_ERRORS as error:
            raise StripeUnavailable(
                gettext("Stripe is unavailable: %(error)s") % {"error": error_message(error)}
            ) from error
        except stripe.InvalidRequestError as error:  # completed meanwhile: its webhook settles it
            raise Conflict(
                gettext(
                    "Card payment #%(waiting_pk)s could not be canceled at Stripe (%(error)s); try again once "
                    "Stripe's answer has arrived."
                )
                % {"waiting_pk": waiting.pk, "error": error_message(error)},
                fields={"invoice": [gettext("A card payment waiting for the customer could not be canceled.")]},
            ) from error
        payment_cancel(payment_id=waiting.pk, reason="Replaced by a new collection attempt.")


def invoice_collect(*, invoice_id: int, attempt: int) -> Payment:
    """Charge the customer's default card for what is due on the invoice (attempt `attempt`).

    Returns the attempt's payment: `succeeded`; `failed` (card declined, no card — the failure code
    and message recorded); `requires_action` (the bank wants 3-D Secure: the customer is emailed the
    pay link); or still `pending` when Stripe's answer is not known yet (a webhook settles it).
    Raises `StripeUnavailable` when Stripe could not be reached: run the same attempt again (same key),
    which its task does within `ATTEMPT_SEND_WINDOW`; later, the attempt is looked up at Stripe instead
    of being sent again (`pending_attempt_reconcile`)."""
    key = invoice_attempt_key(invoice_id=invoice_id, attempt=attempt)
    existing = Payment.objects.filter(idempotency_key=key).first()
    if existing is None:
        invoice_collectable_check(invoice_id=invoice_id)
        _waiting_attempts_cancel(invoice_id=invoice_id)
    elif existing.status == PaymentStatus.PENDING and _send_window_passed(existing):
        # A redelivered or late task: Stripe may have forgotten the key, a resend could charge twice.
        return pending_attempt_reconcile(payment_id=existing.pk)
    payment = _attempt_start(invoice_id=invoice_id, attempt=attempt)
    if payment.status != PaymentStatus.PENDING:  # this attempt has had its answer: a retry is a new attempt
        return payment
    link = stripe_customer_ensure(customer_id=payment.customer_id)
    payment_method_id = link.default_payment_method_id
    if payment_method_id is None:
        return payment_mark_failed(
            payment_id=payment.pk,
            failure_code="no_payment_method",
            failure_message="The customer has no default card to charge.",
        )
    return payment_intent_confirm(
        payment=payment,
        stripe_customer_id=link.stripe_customer_id,
        payment_method_id=payment_method_id,
        off_session=True,
        metadata={"payment_id": str(payment.pk), "invoice_id": str(invoice_id), "attempt": str(attempt)},
    )


def payment_intent_confirm(
    *, payment: Payment, stripe_customer_id: str, payment_method_id: str, off_session: bool, metadata: dict[str, str]
) -> Payment:
    """Create and confirm the PaymentIntent of a pending card payment (under the payment's own
    idempotency key, so that a retry after a network error charges once) and apply Stripe's answer:
    `succeeded`, `failed` (decline code and message recorded), `requires_action` (3-D Secure).
    Raises `StripeUnavailable` when Stripe could not be reached."""
    currency = str(payment.amount.currency)
    refusal = stripe_card_amount_refusal(payment.amount.amount, currency)
    if refusal is not None:  # Stripe would refuse it: said plainly, without a request
        return payment_mark_failed(payment_id=payment.pk, failure_code="amount_not_chargeable", failure_message=refusal)
    options: dict[str, Any] = {"off_session": True} if off_session else {}
    _reference_card(payment, payment_method_id)
    if _send_window_passed(payment):
        # Checked again just before the request: past the window, Stripe may have forgotten the key and
        # the reconciler may soon replace the attempt; the attempt is looked up, never sent again.
        return pending_attempt_reconcile(payment_id=payment.pk)
    try:
        intent = stripe.PaymentIntent.create(
            amount=stripe_amount(payment.amount.amount, currency),
            currency=currency.lower(),
            customer=stripe_customer_id,
            payment_method=payment_method_id,
            confirm=True,
            metadata=metadata,
            **options,
            **request_options(idempotency_key=payment.idempotency_key),
        )
    except stripe.CardError as error:
        body = error.json_body if isinstance(error.json_body, dict) else {}
        intent_data = (body.get("error") or {}).get("payment_intent")
        if error.code == "authentication_required" and intent_data:
            # Stripe itself refuses an off-session charge that needs 3-D Secure: same as requires_action.
            return payment_apply_intent(payment_id=payment.pk, intent=intent_data)
        return payment_mark_failed(
            payment_id=payment.pk,
            failure_code=str(getattr(error, "decline_code", None) or error.code or "card_declined"),
            failure_message=error_message(error),
        )
    except RETRYABLE_ERRORS as error:
        logger.warning("Stripe unavailable for %s: %s", payment.idempotency_key, error)
        raise StripeUnavailable(
            gettext("Stripe is unavailable: %(error)s") % {"error": error_message(error)}
        ) from error
    except stripe.IdempotencyError as error:
        # The key is in use (still being answered, or first sent with other parameters, e.g. before the
        # default card changed): Stripe may well have charged. The outcome is unknown, not a decline.
        logger.warning("Stripe refused the key %s: %s", payment.idempotency_key, error)
        raise Conflict(
            gettext(
                "Card payment #%(payment_pk)s is still pending: Stripe refused its idempotency key "
                "(%(error)s). Its outcome is looked up at Stripe on the next retry, or comes with Stripe's "
                "webhook."
            )
            % {"payment_pk": payment.pk, "error": error_message(error)},
            fields={"invoice": [gettext("A card payment of this invoice is still pending.")]},
        ) from error
    except stripe.StripeError as error:
        return payment_mark_failed(
            payment_id=payment.pk,
            failure_code=str(getattr(error, "code", None) or "stripe_error"),
            failure_message=error_message(error),
        )
    return payment_apply_intent(payment_id=payment.pk, intent=intent)


def _reference_card(payment: Payment, payment_method_id: str) -> None:
    """The card charged ("Visa •••• 4242"), as the payment's reference for staff and its `card` (brand,
    last 4 digits, expiry) for the customer's receipts, from dj-stripe's
    synced row of the payment method (no call to Stripe); left as it is when unknown or already set."""
    row = djstripe_models.PaymentMethod.objects.filter(id=payment_method_id).only("stripe_data").first()
    card = (row.stripe_data or {}).get("card") if row is not None else None
    if not card or not card.get("last4"):
        return
    if not payment.card:  # the card as charged, for the customer's payment history and receipts
        payment.card = {
            "brand": str(card.get("brand") or ""),
            "last4": str(card["last4"]),
            "exp_month": card.get("exp_month"),
            "exp_year": card.get("exp_year"),
        }
        Payment.objects.filter(pk=payment.pk).update(card=payment.card)
    if payment.reference:
        return
    payment.reference = f"{str(card.get('brand') or 'card').title()} •••• {card['last4']}"
    Payment.objects.filter(pk=payment.pk, reference="").update(reference=payment.reference)


def payment_apply_intent(*, payment_id: int, intent: Any) -> Payment:
    """Bring our payment in line with its PaymentIntent's status (from an API answer or a webhook).
    Each outcome is applied once; a payment already settled is never moved back by an older or a
    repeated answer (a late `payment_failed` after `succeeded` changes nothing)."""
    intent = as_dict(intent)
    payment = Payment.objects.get(pk=payment_id)
    status = intent["status"]
    if payment.status == PaymentStatus.CANCELED and status == "succeeded":
        # Canceled here, yet Stripe took the money (a late webhook, a lookup that missed it): recorded.
        return payment_mark_succeeded_after_cancel(payment_id=payment.pk, provider_payment_id=str(intent["id"]))
    if payment.status in SETTLED:
        if status == "succeeded" and payment.status != PaymentStatus.SUCCEEDED:
            logger.error("PaymentIntent %s succeeded but payment %s is %s", intent["id"], payment.pk, payment.status)
        return payment
    if status == "succeeded":
        return payment_mark_succeeded(payment_id=payment.pk, provider_payment_id=str(intent["id"]))
    if status == "requires_action":
        if payment.status == PaymentStatus.REQUIRES_ACTION:
            return payment
        allocation = payment.allocations.order_by("pk").first()
        link = invoice_pay_link(invoice_id=allocation.invoice_id) if allocation else ""
        payment = payment_mark_requires_action(
            payment_id=payment.pk, provider_payment_id=str(intent["id"]), next_action_url=link
        )
        transaction.on_commit(lambda: _action_email_enqueue(payment.pk))
        return payment
    if status == "requires_payment_method":
        if payment.status == PaymentStatus.FAILED:
            return payment
        error = intent.get("last_payment_error") or {}
        return payment_mark_failed(
            payment_id=payment.pk,
            failure_code=str(error.get("decline_code") or error.get("code") or "card_declined"),
            failure_message=str(error.get("message") or "The payment failed."),
        )
    if status == "canceled":
        return payment_cancel(payment_id=payment.pk, reason=f"PaymentIntent {intent['id']} was canceled.")
    if status == "processing" and payment.status == PaymentStatus.PENDING:
        return payment_mark_processing(payment_id=payment.pk, provider_payment_id=str(intent["id"]))
    return payment  # requires_confirmation / requires_capture: not how we charge; a webhook settles it


def _action_email_enqueue(payment_id: int) -> None:
    from .tasks import payment_action_email_task

    enqueue(payment_action_email_task, payment_id)


def _send(*, template: str, subject: str, recipients: list[str], context: dict[str, Any], language: str) -> None:
    """An email to the customer, in their language (`subject` already written in it): the template
    `payments/email/<template>.<language>.txt`, or the English one when there is none."""
    with translation.override(language):
        body = render_to_string(
            select_template(
                [f"payments/email/{template}.{language}.txt", f"payments/email/{template}.txt"]
            ).template.name,
            context,
        )
    message = EmailMultiAlternatives(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=recipients)
    message.send()


def _customer_language(customer: Customer) -> str:
    return customer.preferred_language or settings.LANGUAGE_CODE


def payment_action_email_send(*, payment_id: int) -> bool:
    """Email the customer the link to confirm a card payment their bank wants authenticated.
    Sent once per payment: a payment no longer waiting for the customer is not emailed."""
    payment = Payment.objects.select_related("customer").get(pk=payment_id)
    if payment.status != PaymentStatus.REQUIRES_ACTION:
        return False
    invoice = payment.allocations.select_related("invoice").get().invoice
    recipients = customer_invoice_recipients(payment.customer)
    language = _customer_language(payment.customer)
    with translation.override(language):
        subject = gettext("Please confirm your payment for invoice %(number)s") % {"number": invoice.number}
    _send(
        template="payment_action_required",
        subject=subject,
        recipients=recipients,
        language=language,
        context={"payment": payment, "invoice": invoice, "pay_url": invoice_pay_link(invoice_id=invoice.pk)},
    )
    return True


def invoice_pay_link_email_send(*, invoice_id: int) -> bool:
    """Email a `send_invoice` invoice's pay link (card payments on, something due)."""
    invoice = Invoice.objects.select_related("customer").get(pk=invoice_id)
    if invoice.status != InvoiceStatus.OPEN or invoice.amount_due.amount <= 0:
        return False
    language = _customer_language(invoice.customer)
    with translation.override(language):
        subject = gettext("Pay invoice %(number)s online") % {"number": invoice.number}
    _send(
        template="invoice_pay_link",
        subject=subject,
        recipients=customer_invoice_recipients(invoice.customer),
        language=language,
        context={"invoice": invoice, "pay_url": invoice_pay_link(invoice_id=invoice.pk)},
    )
    return True


def invoices_collection_start(*, invoice_ids: list[int]) -> None:
    """Just-finalized invoices, handed to collection (card payments on, something due): a
    `charge_automatically` invoice is charged (attempt 1), a `send_invoice` one gets its pay link
    emailed (when bills are emailed on finalization, `INVOICE_EMAIL_ON_FINALIZE`). Called after the
    finalizing transaction committed; queues one task per invoice."""
    if not stripe_enabled() or not invoice_ids:
        return
    from .tasks import invoice_collect_task, invoice_pay_link_email_task

    invoices = Invoice.objects.filter(pk__in=invoice_ids, status=InvoiceStatus.OPEN).only("pk", "collection_method")
    for invoice in invoices.order_by("pk"):
        if invoice.collection_method == "charge_automatically":
            enqueue(invoice_collect_task, invoice.pk, 1)
        elif settings.INVOICE_EMAIL_ON_FINALIZE:  # the pay link goes with the bill, when bills are emailed
            enqueue(invoice_pay_link_email_task, invoice.pk)


class CardPaymentNotCompleted(ApplicationError):
    """A charge that did not take the money now: declined, or waiting for the customer (3-D Secure)."""

    code = "card_payment_not_completed"
    http_status = 402


def invoice_next_attempt(*, invoice_id: int) -> int:
    """The number of the invoice's next collection attempt: one more than the highest so far."""
    prefix = f"invoice-{invoice_id}-attempt-"
    keys = Payment.objects.filter(idempotency_key__startswith=prefix).values_list("idempotency_key", flat=True)
    numbers = [int(key[len(prefix) :]) for key in keys if key[len(prefix) :].isdigit()]
    return max(numbers, default=0) + 1


def _send_window_passed(payment: Payment) -> bool:
    # `created_at` is the wall-clock time of the write (not business time), as are the task's retries.
    return payment.created_at < timezone.now() - ATTEMPT_SEND_WINDOW


def _cancel_margin_passed(payment: Payment) -> bool:
    """The attempt can no longer reach Stripe: its send window and `ATTEMPT_CANCEL_MARGIN` are over."""
    return payment.created_at < timezone.now() - ATTEMPT_SEND_WINDOW - ATTEMPT_CANCEL_MARGIN


def _attempt_intent_find(payment: Payment) -> dict[str, Any] | None:
    """The PaymentIntent Stripe made for a card payment (the payment's id is in its metadata), or None:
    the customer's PaymentIntents created from a day before the payment to a day after it could last
    have been sent (`LOOKUP_MARGIN`), looked through."""
    link = stripe_customer_get(customer_id=payment.customer_id)
    if link is None:  # no Stripe customer: nothing was ever sent for it
        return None
    since = int((payment.created_at - LOOKUP_MARGIN).timestamp())
    until = int((payment.created_at + ATTEMPT_SEND_WINDOW + ATTEMPT_CANCEL_MARGIN + LOOKUP_MARGIN).timestamp())
    try:
        page = stripe.PaymentIntent.list(
            customer=link.stripe_customer_id, created={"gte": since, "lte": until}, limit=100, **request_options()
        )
        for intent in page.auto_paging_iter():
            found = as_dict(intent)
            if str((found.get("metadata") or {}).get("payment_id")) == str(payment.pk):
                return found
    except RETRYABLE_ERRORS as error:
        raise StripeUnavailable(
            gettext("Stripe is unavailable: %(error)s") % {"error": error_message(error)}
        ) from error
    except stripe.StripeError as error:
        raise Conflict(
            gettext("Card payment #%(payment_pk)s could not be looked up at Stripe (%(error)s); it stays pending.")
            % {"payment_pk": payment.pk, "error": error_message(error)},
            fields={"invoice": [gettext("A card payment of this invoice is still pending.")]},
        ) from error
    return None


def pending_attempt_reconcile(*, payment_id: int) -> Payment:
    """Settle a card attempt left `pending` (Stripe's answer lost) by looking it up at Stripe, never by
    sending it again. Found: Stripe's outcome is applied (`succeeded`, `failed`, `requires_action`,
    `processing`). Not found once its sender can no longer be sending it (`ATTEMPT_SEND_WINDOW` plus
    `ATTEMPT_CANCEL_MARGIN`): the charge never reached Stripe and the payment is canceled, so that a new
    attempt (a new key) may follow. Not found before that: it stays pending (it may still be sent)."""
    payment = Payment.objects.get(pk=payment_id)
    if payment.status != PaymentStatus.PENDING:
        return payment
    intent = _attempt_intent_find(payment)
    if intent is not None:
        return payment_apply_intent(payment_id=payment.pk, intent=intent)
    if not _cancel_margin_passed(payment):
        return payment
    return payment_cancel(
        payment_id=payment.pk,
        reason=(
            "Its charge never reached Stripe: Stripe has no PaymentIntent for this payment, and its "
            "collection task's retries are over. A new attempt replaces it."
        ),
    )


def invoice_collectable_check(*, invoice_id: int) -> Invoice:
    """The invoice, when a card may be charged for it: open, with something due (else 409)."""
    invoice = Invoice.objects.filter(pk=invoice_id).first()
    if invoice is None:
        raise NotFound(gettext("Invoice %(invoice_id)s does not exist.") % {"invoice_id": invoice_id})
    if invoice.status != InvoiceStatus.OPEN:
        raise InvalidTransition(
            gettext("Invoice %(invoice)s is %(invoice_status)s: only open invoices are collected.")
            % {"invoice": invoice, "invoice_status": invoice.get_status_display().lower()},
            fields={
                "invoice": [
                    gettext("The invoice is %(invoice_status)s, not open.")
                    % {"invoice_status": invoice.get_status_display().lower()}
                ]
            },
        )
    if invoice.amount_due.amount <= 0:
        raise InvalidTransition(
            gettext("Nothing is due on invoice %(invoice)s.") % {"invoice": invoice},
            fields={"invoice": [gettext("Nothing is due on the invoice.")]},
        )
    return invoice


def invoice_collect_again(*, invoice_id: int, attempt: int | None = None) -> Payment:
    """A new card charge of an invoice (staff's "charge now", dunning retries), for what is due now.

    The invoice must be open with something due (409 otherwise). Attempts left `pending` are first
    reconciled with Stripe (`pending_attempt_reconcile`): one Stripe did charge is recorded and
    returned (nothing more is charged); one still pending or processing at Stripe is a 409 (its
    outcome comes first). Then a new attempt (`attempt`, or the invoice's next number) is charged
    under its own key."""
    invoice_collectable_check(invoice_id=invoice_id)
    pending = _card_payments_of(invoice_id).filter(status=PaymentStatus.PENDING).order_by("pk")
    for payment_id in pending.values_list("pk", flat=True):
        payment = pending_attempt_reconcile(payment_id=payment_id)
        if payment.status == PaymentStatus.SUCCEEDED:
            return payment
    invoice_collectable_check(invoice_id=invoice_id)
    return invoice_collect(invoice_id=invoice_id, attempt=attempt or invoice_next_attempt(invoice_id=invoice_id))


def invoice_charge_now(*, invoice_id: int) -> Payment:
    """Staff's "charge now" (admin, API): see `invoice_collect_again`."""
    return invoice_collect_again(invoice_id=invoice_id)


def payment_outcome_check(payment: Payment) -> Payment:
    """The payment, when it succeeded (or is still being processed); otherwise why not, as an error."""
    if payment.status == PaymentStatus.FAILED:
        raise CardPaymentNotCompleted(
            gettext("The card was not charged: %(reason)s") % {"reason": payment.failure_text},
            code=payment.failure_code or None,
        )
    if payment.status == PaymentStatus.REQUIRES_ACTION:
        raise CardPaymentNotCompleted(
            gettext("The bank asks the customer to confirm the payment (3-D Secure); they were emailed the pay link."),
            code="requires_action",
        )
    return payment
