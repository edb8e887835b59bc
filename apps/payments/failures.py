"""What a failed card payment or refund, and a Stripe object's status, mean in words a customer or
finance staff read, in their language.

Stripe's answers are codes (`insufficient_funds`, `requires_payment_method`) and English sentences. A
payment keeps Stripe's code in `failure_code` (machine-readable, for integrators and the audit trail)
and Stripe's own sentence in `failure_message`; every screen and API answer shows
`payment_failure_text`, the code in words, translated when it is read (the payment may have failed in a
Celery task, in no one's language)."""

from django.utils.functional import Promise
from django.utils.translation import get_language, gettext, gettext_lazy

# Stripe's decline codes and card error codes, and the codes we record ourselves, in words.
# https://docs.stripe.com/declines/codes, https://docs.stripe.com/error-codes
CARD_FAILURE_WORDING: dict[str, Promise] = {
    "authentication_required": gettext_lazy("The bank asks the cardholder to confirm the payment (3-D Secure)."),
    "card_declined": gettext_lazy("The card was declined."),
    "generic_decline": gettext_lazy("The card was declined."),
    "do_not_honor": gettext_lazy("The card was declined."),
    "insufficient_funds": gettext_lazy("The card has insufficient funds."),
    "expired_card": gettext_lazy("The card has expired."),
    "incorrect_cvc": gettext_lazy("The card's security code is incorrect."),
    "invalid_cvc": gettext_lazy("The card's security code is incorrect."),
    "incorrect_number": gettext_lazy("The card number is incorrect."),
    "invalid_expiry_month": gettext_lazy("The card's expiry date is incorrect."),
    "invalid_expiry_year": gettext_lazy("The card's expiry date is incorrect."),
    "lost_card": gettext_lazy("The card was declined: it is reported lost."),
    "stolen_card": gettext_lazy("The card was declined: it is reported stolen."),
    "fraudulent": gettext_lazy("The card was declined as possibly fraudulent."),
    "card_not_supported": gettext_lazy("The card does not support this kind of payment."),
    "currency_not_supported": gettext_lazy("The card does not support this currency."),
    "card_velocity_exceeded": gettext_lazy("The card's limit has been reached."),
    "withdrawal_count_limit_exceeded": gettext_lazy("The card's limit has been reached."),
    "processing_error": gettext_lazy("The card could not be processed; try again."),
    "try_again_later": gettext_lazy("The card could not be processed; try again."),
    "payment_intent_authentication_failure": gettext_lazy("The cardholder did not confirm the payment (3-D Secure)."),
    "no_payment_method": gettext_lazy("The customer has no default card to charge."),
    "no_payment_intent": gettext_lazy("The payment has no Stripe PaymentIntent to refund."),
    "amount_not_chargeable": gettext_lazy("Stripe cannot charge this amount by card."),
    # Refunds (`failure_reason`, or the refund's status when Stripe gives none).
    "charge_for_pending_refund_disputed": gettext_lazy("The refund failed: the payment is disputed."),
    "declined": gettext_lazy("The refund was declined by the card's bank."),
    "expired_or_canceled_card": gettext_lazy("The refund failed: the card has expired or was canceled."),
    "lost_or_stolen_card": gettext_lazy("The refund failed: the card is reported lost or stolen."),
    "merchant_request": gettext_lazy("The refund was canceled at the seller's request."),
    "failed": gettext_lazy("The refund failed at Stripe."),
    "canceled": gettext_lazy("The refund was canceled at Stripe."),
}

# Stripe's statuses of PaymentIntents, SetupIntents and refunds, in words.
STRIPE_STATUS_WORDING: dict[str, Promise] = {
    "requires_payment_method": gettext_lazy("waiting for a card"),
    "requires_confirmation": gettext_lazy("waiting for confirmation"),
    "requires_action": gettext_lazy("waiting for the cardholder to confirm (3-D Secure)"),
    "processing": gettext_lazy("being processed"),
    "requires_capture": gettext_lazy("authorized, not yet captured"),
    "canceled": gettext_lazy("canceled"),
    "succeeded": gettext_lazy("succeeded"),
    "pending": gettext_lazy("pending"),
    "failed": gettext_lazy("failed"),
}


def stripe_status_text(status: str) -> str:
    """A Stripe status in words (an unknown one: a neutral phrase, never the raw code)."""
    wording = STRIPE_STATUS_WORDING.get(str(status))
    return str(wording) if wording is not None else gettext("in an unexpected state")


def payment_failure_text(*, failure_code: str, failure_message: str = "") -> str:
    """Why a card payment or a refund failed, in the active language: the code in words; for a code we
    have no words for, Stripe's own sentence when the language is English, else a general one."""
    wording = CARD_FAILURE_WORDING.get(failure_code or "")
    if wording is not None:
        return str(wording)
    if failure_message and (get_language() or "en").startswith("en"):
        return failure_message  # Stripe's sentence (English) says more than ours
    if not failure_code and not failure_message:
        return ""
    return gettext("The card payment failed.")
