"""What the browser does with Stripe.js, done directly against localstripe in tests."""

import hashlib
import hmac
import json
import socket
import urllib.parse
import urllib.request
import uuid
from typing import Any

import stripe
from django.conf import settings

from apps.payments.stripe.client import configure

CARD_OK = "4242424242424242"
CARD_DECLINED_AT_CHARGE = "4000000000000341"  # attaches, then every charge is declined
CARD_DECLINED_AT_ATTACH = "4000000000000002"
CARD_3DS = "4000002500003155"  # needs 3-D Secure for every payment (and when saved)


def _options() -> dict[str, Any]:
    configure()  # the server of the settings (a test may have pointed them at a proxy meanwhile)
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


def signed_headers(payload: str, secret: str, timestamp: int) -> dict[str, str]:
    """The `Stripe-Signature` header Stripe sends with an event (HMAC-SHA256 of `t.payload`)."""
    signature = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return {"HTTP_STRIPE_SIGNATURE": f"t={timestamp},v1={signature}"}


def event_payload(event_type: str, data_object: Any, *, event_id: str | None = None, created: int) -> str:
    """A Stripe event of `event_type` carrying `data_object` (a Stripe object as localstripe returns it)."""
    body = {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2017-08-15",  # what localstripe writes on its events
        "created": created,
        "data": {"object": data_object if isinstance(data_object, dict) else data_object.to_dict(for_json=True)},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }
    return json.dumps(body)


def stripe_options() -> dict[str, Any]:
    """Keyword arguments for a direct call to localstripe from a test."""
    return _options()


def three_d_secure_pass(intent_id: str, client_secret: str) -> None:
    """The customer passes 3-D Secure for a PaymentIntent (what Stripe.js does, with the publishable key)."""
    body = urllib.parse.urlencode(
        {"client_secret": client_secret, "success": "true", "key": settings.STRIPE_PUBLISHABLE_KEY}
    ).encode()
    address = f"{settings.STRIPE_API_BASE}/v1/payment_intents/{intent_id}/_authenticate"
    with urllib.request.urlopen(urllib.request.Request(address, data=body, method="POST"), timeout=10) as response:
        assert response.status == 200


def stripe_forget_idempotency_keys(localstripe_url: str) -> None:
    """localstripe forgets every idempotency key, as Stripe does about a day after a key's first use."""
    request = urllib.request.Request(f"{localstripe_url}/_config/idempotency_keys", method="DELETE")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our local server
        assert response.status == 200


def unreachable_url() -> str:
    """An address of 127.0.0.1 where nothing listens: a request sent there never reaches Stripe."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
