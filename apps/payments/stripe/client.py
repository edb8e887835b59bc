"""The Stripe client as configured by our settings.

`STRIPE_API_BASE` points the client at another server (the local fake Stripe in tests and the demo);
empty means Stripe itself. `STRIPE_ENABLED` says whether card payments are collected at all: off
(the default without a secret key), the product takes manual payments only.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import Any

import stripe
from django.conf import settings
from django.utils.translation import gettext
from djstripe.settings import djstripe_settings

from apps.core.errors import ApplicationError
from apps.core.money import currency_decimal_places, quantize_amount

# Network errors and Stripe's own 5xx/429 answers: the same request, with the same idempotency key,
# may be sent again; everything else is an answer to act on.
RETRYABLE_ERRORS: tuple[type[stripe.StripeError], ...] = (
    stripe.APIConnectionError,
    stripe.RateLimitError,
    stripe.APIError,
)


class StripeNotConfigured(ApplicationError):
    code = "stripe_not_configured"
    http_status = 409


class StripeRequestFailed(ApplicationError):
    """Stripe refused a request (a declined card at attach, an unknown payment method, …)."""

    code = "stripe_error"
    http_status = 402


class StripeUnavailable(ApplicationError):
    """Stripe could not be reached (or answered 5xx): safe to retry with the same idempotency key."""

    code = "stripe_unavailable"
    http_status = 503


def stripe_enabled() -> bool:
    return bool(getattr(settings, "STRIPE_ENABLED", False))


def configure() -> None:
    """Point the module-level client (also used by dj-stripe's syncs) at `STRIPE_API_BASE`."""
    stripe.api_base = settings.STRIPE_API_BASE or stripe.DEFAULT_API_BASE
    stripe.max_network_retries = settings.STRIPE_MAX_NETWORK_RETRIES
    timeout = settings.STRIPE_TIMEOUT_SECONDS
    client = stripe.default_http_client
    if client is None or getattr(client, "_timeout", None) != timeout:
        stripe.default_http_client = stripe.new_default_http_client(timeout=timeout)


def request_options(**extra: Any) -> dict[str, Any]:
    """Keyword arguments every call of ours passes: the key, the API version dj-stripe expects."""
    if not stripe_enabled():
        raise StripeNotConfigured(gettext("Card payments are not enabled (set STRIPE_ENABLED and a Stripe key)."))
    configure()
    return {
        "api_key": djstripe_settings.get_default_api_key(livemode=settings.STRIPE_LIVE_MODE),
        "stripe_version": djstripe_settings.STRIPE_API_VERSION,
        **extra,
    }


def error_message(error: stripe.StripeError) -> str:
    return getattr(error, "user_message", None) or str(getattr(error, "_message", "") or error) or type(error).__name__


def raise_as_application_error(error: stripe.StripeError) -> None:
    if isinstance(error, RETRYABLE_ERRORS):
        raise StripeUnavailable(
            gettext("Stripe is unavailable: %(error)s") % {"error": error_message(error)}
        ) from error
    raise StripeRequestFailed(error_message(error), code=getattr(error, "code", None) or "stripe_error") from error


def object_id(value: Any) -> str | None:
    """The id of a Stripe reference, expanded or not (`"ch_…"` or `{"id": "ch_…", …}`)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    return str(value["id"])


def stripe_amount(amount: Decimal, currency: str) -> int:
    """An amount in the currency's minor unit, as Stripe takes it (10.50 USD → 1050, 500 JPY → 500)."""
    if quantize_amount(amount, currency) != amount:
        raise ValueError(f"{amount} {currency} has more decimals than the currency")
    return int(amount.scaleb(currency_decimal_places(currency)))


def stripe_card_amount_refusal(amount: Decimal, currency: str) -> str | None:
    """Why Stripe would refuse to charge this amount to a card, or None. Stripe charges cards in the
    three-decimal currencies (KWD, BHD, JOD, OMR, TND) only in whole tens of the minor unit
    (12.340 KWD, not 12.345 KWD)."""
    if currency_decimal_places(currency) == 3 and stripe_amount(amount, currency) % 10:
        return gettext(
            "Stripe charges cards in %(currency)s only in steps of 0.010 %(currency)s: %(amount)s "
            "%(currency)s cannot be charged by card. Record a manual payment, or issue a credit note "
            "for the last %(value)s %(currency)s."
        ) % {
            "currency": currency,
            "amount": amount,
            "value": amount - amount.quantize(Decimal("0.01"), rounding=ROUND_DOWN),
        }
    return None


def money_from_stripe(amount: int, currency: str) -> Decimal:
    currency = currency.upper()
    return Decimal(amount).scaleb(-currency_decimal_places(currency))


def as_dict(value: Any) -> dict[str, Any]:
    """A Stripe object as a plain dict (nested objects too). stripe 15 objects are no dicts: `.get()`
    works on them only where dj-stripe patched it back in, so our code reads plain dicts."""
    if isinstance(value, stripe.StripeObject):
        return value.to_dict()
    return dict(value)
