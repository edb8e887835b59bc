"""The webhook endpoint Stripe posts events to: a dj-stripe `WebhookEndpoint` row (its secret checks
every event's signature) served at `/stripe/webhook/<uuid>/`.

Against Stripe the endpoint is created through the API and synced; against the local fake Stripe
(`STRIPE_API_BASE` set) the row is written here and registered with localstripe's own
`/_config/webhooks/…` endpoint, which is how localstripe learns where to deliver its events.
"""

from __future__ import annotations

import secrets
import time
import urllib.parse
import urllib.request
import uuid

import stripe
from django.conf import settings
from django.db import transaction
from django.urls import reverse
from djstripe.models import WebhookEndpoint

from .client import raise_as_application_error, request_options

# The events our handlers act on (apps/payments/stripe/webhooks.py).
WEBHOOK_EVENTS = [
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.requires_action",
    "charge.refunded",
    "charge.dispute.created",
]
LOCALSTRIPE_WEBHOOK_NAME = "billing-portal"


def _endpoint_url(base_url: str, endpoint_uuid: uuid.UUID | str) -> str:
    path = reverse("djstripe:djstripe_webhook_by_uuid", kwargs={"uuid": endpoint_uuid})
    return base_url.rstrip("/") + path


def _register_with_localstripe(endpoint: WebhookEndpoint) -> None:
    body = urllib.parse.urlencode(
        [("url", endpoint.url), ("secret", endpoint.secret)] + [("events[]", event) for event in WEBHOOK_EVENTS]
    ).encode()
    address = f"{settings.STRIPE_API_BASE.rstrip('/')}/_config/webhooks/{LOCALSTRIPE_WEBHOOK_NAME}"
    request = urllib.request.Request(address, data=body, method="POST")  # noqa: S310 - a configured local server
    with urllib.request.urlopen(request, timeout=settings.STRIPE_TIMEOUT_SECONDS) as response:  # noqa: S310
        assert response.status == 200


@transaction.atomic
def stripe_webhook_endpoint_ensure(*, base_url: str) -> WebhookEndpoint:
    """The endpoint for `base_url` (scheme and host this site is reached at), created when missing.
    Against the local fake Stripe it is (re-)registered every time: localstripe forgets on restart."""
    options = request_options()
    existing = WebhookEndpoint.objects.filter(url__startswith=base_url.rstrip("/") + "/").order_by("djstripe_id")
    endpoint = existing.first()
    if endpoint is None:
        endpoint_uuid = uuid.uuid4()
        url = _endpoint_url(base_url, endpoint_uuid)
        if settings.STRIPE_API_BASE:
            data = {
                "id": f"we_local{secrets.token_hex(8)}",
                "object": "webhook_endpoint",
                "api_version": options["stripe_version"],
                "created": int(time.time()),
                "enabled_events": WEBHOOK_EVENTS,
                "livemode": False,
                "metadata": {"djstripe_uuid": str(endpoint_uuid)},
                "secret": f"whsec_{secrets.token_hex(24)}",
                "status": "enabled",
                "url": url,
            }
        else:
            try:
                data = stripe.WebhookEndpoint.create(
                    url=url,
                    enabled_events=WEBHOOK_EVENTS,
                    api_version=options["stripe_version"],
                    metadata={"djstripe_uuid": str(endpoint_uuid)},
                    **options,
                )
            except stripe.StripeError as error:
                raise_as_application_error(error)
        endpoint = WebhookEndpoint.sync_from_stripe_data(data, api_key=options["api_key"])
    if settings.STRIPE_API_BASE:
        _register_with_localstripe(endpoint)
    return endpoint
