"""The webhook endpoint: created once, registered with localstripe, signatures checked."""

import time

import pytest
from django.core.management import call_command
from djstripe.models import Event, WebhookEndpoint, WebhookEventTrigger

from apps.payments.stripe.webhook_endpoints import WEBHOOK_EVENTS, stripe_webhook_endpoint_ensure

from .helpers import event_payload, signed_headers

pytestmark = pytest.mark.django_db


def test_endpoint_is_created_once_per_site(localstripe):
    first = stripe_webhook_endpoint_ensure(base_url="http://127.0.0.1:8000")
    again = stripe_webhook_endpoint_ensure(base_url="http://127.0.0.1:8000/")

    assert again.pk == first.pk
    assert WebhookEndpoint.objects.count() == 1
    assert first.url == f"http://127.0.0.1:8000/stripe/webhook/{first.djstripe_uuid}/"
    assert first.enabled_events == WEBHOOK_EVENTS
    assert first.secret.startswith("whsec_")
    assert len(first.secret) == len("whsec_") + 48


def test_command_says_so_when_card_payments_are_off(settings, capsys):
    settings.STRIPE_ENABLED = False
    call_command("stripe_webhooks_setup", "--base-url", "http://127.0.0.1:8000")
    assert "Card payments are off" in capsys.readouterr().out
    assert WebhookEndpoint.objects.count() == 0


def test_command_creates_the_endpoint(localstripe, capsys):
    call_command("stripe_webhooks_setup", "--base-url", "http://demo.example:8000")
    endpoint = WebhookEndpoint.objects.get()
    assert capsys.readouterr().out == f"Stripe events are posted to {endpoint.url}\n"


def _post(client, endpoint, payload, headers):
    return client.post(
        f"/stripe/webhook/{endpoint.djstripe_uuid}/", data=payload, content_type="application/json", **headers
    )


def test_signed_event_is_accepted_once_and_a_bad_signature_refused(localstripe, client):
    endpoint = stripe_webhook_endpoint_ensure(base_url="http://testserver")
    now = int(time.time())
    payload = event_payload("balance.available", {"object": "balance", "available": []}, created=now)

    forged = _post(client, endpoint, payload, signed_headers(payload, "whsec_" + "0" * 48, now))
    assert forged.status_code == 400
    assert Event.objects.count() == 0

    unsigned = client.post(f"/stripe/webhook/{endpoint.djstripe_uuid}/", data=payload, content_type="application/json")
    assert unsigned.status_code == 400
    assert Event.objects.count() == 0

    for _ in range(3):
        response = _post(client, endpoint, payload, signed_headers(payload, endpoint.secret, now))
        assert response.status_code == 200
    assert Event.objects.count() == 1
    # Stored once: neither the forged request nor the replays (apps/payments/stripe/views.py).
    assert WebhookEventTrigger.objects.filter(valid=True, processed=True).count() == 1
    assert WebhookEventTrigger.objects.count() == 1
