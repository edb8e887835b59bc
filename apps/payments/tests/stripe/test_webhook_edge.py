"""Stripe's webhook endpoint at our edge (`apps/payments/stripe/views.py`): the size and the signature
are checked before anything is stored, and a replayed event is answered 200 with nothing stored and
nothing done. (dj-stripe's own view stored every request carrying a `Stripe-Signature` header, body
and all, up to 2.5 MB, before checking it, and stored every replay again.)"""

import time

import pytest
from djstripe.models import Event, WebhookEventTrigger

from apps.invoices.constants import InvoiceStatus
from apps.payments.constants import PaymentStatus
from apps.payments.models import PaymentEvent
from apps.payments.stripe.webhook_endpoints import stripe_webhook_endpoint_ensure

from .helpers import CARD_OK, event_payload, signed_headers
from .test_webhooks import pending_after_lost_answer, the_intent

pytestmark = pytest.mark.django_db

BALANCE = {"object": "balance", "available": []}


@pytest.fixture
def endpoint(localstripe):
    return stripe_webhook_endpoint_ensure(base_url="http://testserver")


def _post(client, endpoint, payload: str, headers: dict):
    return client.post(
        f"/stripe/webhook/{endpoint.djstripe_uuid}/", data=payload, content_type="application/json", **headers
    )


def _nothing_stored() -> bool:
    return not WebhookEventTrigger.objects.exists() and not Event.objects.exists()


def test_a_forged_altered_or_stale_signature_is_refused_and_nothing_is_stored(endpoint, client):
    now = int(time.time())
    payload = event_payload("balance.available", {**BALANCE, "padding": "x" * 200_000}, created=now)
    attempts = {
        "another secret": (payload, signed_headers(payload, "whsec_" + "0" * 48, now)),
        "altered body": (payload.replace('"available"', '"Available"'), signed_headers(payload, endpoint.secret, now)),
        "an hour old": (payload, signed_headers(payload, endpoint.secret, now - 3600)),
        "garbage header": (payload, {"HTTP_STRIPE_SIGNATURE": "t=1,v1=abc"}),
        "empty header": (payload, {"HTTP_STRIPE_SIGNATURE": ""}),
        "no header": (payload, {}),
    }

    for name, (body, headers) in attempts.items():
        response = _post(client, endpoint, body, headers)
        assert response.status_code == 400, name

    assert _nothing_stored()


def test_a_body_over_the_limit_is_refused_with_413_even_correctly_signed(endpoint, client, settings):
    now = int(time.time())
    huge = event_payload("balance.available", {**BALANCE, "padding": "x" * 2_400_000}, created=now)
    within = event_payload("balance.available", {**BALANCE, "padding": "x" * 250_000}, created=now)

    refused = _post(client, endpoint, huge, signed_headers(huge, endpoint.secret, now))

    assert settings.STRIPE_WEBHOOK_MAX_BYTES == 256 * 1024 < len(huge)
    assert refused.status_code == 413
    assert _nothing_stored()
    accepted = _post(client, endpoint, within, signed_headers(within, endpoint.secret, now))
    assert accepted.status_code == 200
    assert WebhookEventTrigger.objects.get().processed


def test_a_correctly_signed_body_that_is_not_an_event_is_refused_and_nothing_is_stored(endpoint, client):
    now = int(time.time())
    for body in ("[1, 2]", "not json", '{"object": "event"}', '{"id": 1, "type": "balance.available"}'):
        response = _post(client, endpoint, body, signed_headers(body, endpoint.secret, now))
        assert response.status_code == 400, body
    assert _nothing_stored()


def test_an_unknown_endpoint_is_404_and_a_get_is_405(endpoint, client):
    now = int(time.time())
    payload = event_payload("balance.available", BALANCE, created=now)

    unknown = client.post(
        "/stripe/webhook/00000000-0000-0000-0000-000000000000/",
        data=payload,
        content_type="application/json",
        **signed_headers(payload, endpoint.secret, now),
    )

    assert unknown.status_code == 404
    assert client.get(f"/stripe/webhook/{endpoint.djstripe_uuid}/").status_code == 405
    assert _nothing_stored()


def test_a_replayed_event_answers_200_and_does_nothing(localstripe, endpoint, settings, client):
    """The same signed request again (Stripe's retry, or anyone who saw it): 200, and no row, no call
    to Stripe, no handler — not even when Stripe is unreachable meanwhile."""
    payment = pending_after_lost_answer(localstripe, settings, CARD_OK)
    now = int(time.time())
    payload = event_payload("payment_intent.succeeded", the_intent(), created=now)
    headers = signed_headers(payload, endpoint.secret, now)
    first = _post(client, endpoint, payload, headers)
    assert first.status_code == 200
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.allocations.get().invoice.status == InvoiceStatus.PAID
    events_before = list(PaymentEvent.objects.filter(payment=payment).values_list("id", flat=True))
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens: any call to Stripe would fail

    replays = [_post(client, endpoint, payload, headers) for _ in range(3)]

    assert [(replay.status_code, replay.content) for replay in replays] == [(200, b"Already processed.")] * 3
    assert WebhookEventTrigger.objects.count() == 1
    assert Event.objects.count() == 1
    assert list(PaymentEvent.objects.filter(payment=payment).values_list("id", flat=True)) == events_before
