"""What the browser does with Stripe.js, done directly against localstripe in tests."""

from typing import Any

import stripe
from django.conf import settings

CARD_OK = "4242424242424242"
CARD_DECLINED_AT_CHARGE = "4000000000000341"  # attaches, then every charge is declined
CARD_DECLINED_AT_ATTACH = "4000000000000002"
CARD_3DS = "4000002500003155"  # needs 3-D Secure for every payment (and when saved)


def _options() -> dict[str, Any]:
    return {"api_key": settings.STRIPE_TEST_SECRET_KEY}


def card_create(number: str) -> str:
    data = stripe.PaymentMethod.create(
        type="card", card={"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}, **_options()
    )
    return str(data["id"])


def setup_intent_confirm(setup_intent_id: str, number: str) -> Any:
    """Confirm a SetupIntent with a new card, as Stripe.js does (3-D Secure passed when asked)."""
    payment_method_id = card_create(number)
    intent = stripe.SetupIntent.confirm(setup_intent_id, payment_method=payment_method_id, **_options())
    if intent["status"] == "requires_action":  # the customer passes the 3-D Secure challenge
        intent = stripe.SetupIntent.confirm(setup_intent_id, **_options())
    return intent


def stripe_list(resource: type[Any]) -> list[Any]:
    return list(resource.list(limit=100, **_options())["data"])
