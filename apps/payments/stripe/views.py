"""Stripe's webhook endpoint, `/stripe/webhook/<uuid>/`, at our edge in front of dj-stripe.

dj-stripe's own view stores every request carrying a `Stripe-Signature` header (a `WebhookEventTrigger`
row with the whole body, up to Django's 2.5 MB) *before* it checks the signature, and stores each
replay again. This view checks first, and stores nothing for a request that fails:

1. the body's declared size: over `STRIPE_WEBHOOK_MAX_BYTES` is a 413, before the body is read;
2. a `Stripe-Signature` header (400), the endpoint of the URL (404);
3. the signature, with the endpoint's secret, within its tolerance (400: forged, altered or stale);
4. a JSON event with an id and a type (400);
5. an event id already recorded: a replay, answered 200 with nothing stored and nothing done.

Only then does dj-stripe store the event, sync its object and call our handlers
(`apps/payments/stripe/webhooks.py`); a handler that fails answers 500 and Stripe delivers again.
"""

import json
import logging

import stripe
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from djstripe.models import Event, WebhookEndpoint, WebhookEventTrigger

logger = logging.getLogger(__name__)


def _declared_length(request: HttpRequest) -> int | None:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    return length if length >= 0 else None


@csrf_exempt
@login_not_required
@require_POST
@transaction.non_atomic_requests  # dj-stripe commits the trigger row on its own (see its view)
def stripe_webhook_receive(request: HttpRequest, uuid: str) -> HttpResponse:
    length = _declared_length(request)
    if length is None:
        return HttpResponseBadRequest("Bad Content-Length.")
    if length > settings.STRIPE_WEBHOOK_MAX_BYTES:
        logger.warning("Stripe webhook refused: %s bytes (limit %s)", length, settings.STRIPE_WEBHOOK_MAX_BYTES)
        return HttpResponse("Request body too large.", status=413)
    signature = request.headers.get("Stripe-Signature")
    if not signature:
        return HttpResponseBadRequest("Stripe-Signature header missing.")
    endpoint = get_object_or_404(WebhookEndpoint, djstripe_uuid=uuid)
    if not endpoint.secret:
        logger.error("Stripe webhook endpoint %s has no signing secret: its events are refused", endpoint.id)
        return HttpResponseBadRequest("This endpoint cannot check signatures.")
    try:
        payload = request.body.decode("utf-8")
        stripe.WebhookSignature.verify_header(payload, signature, endpoint.secret, endpoint.djstripe_tolerance)
    except (UnicodeDecodeError, stripe.SignatureVerificationError):
        logger.warning("Stripe webhook refused: the signature does not match (endpoint %s)", endpoint.id)
        return HttpResponseBadRequest("Bad signature.")
    try:
        event = json.loads(payload)
    except ValueError:
        event = None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        return HttpResponseBadRequest("Not a Stripe event.")
    if Event.objects.filter(id=event["id"]).exists():
        logger.info("Stripe event %s (%s) received again: already processed", event["id"], event["type"])
        return HttpResponse("Already processed.")
    trigger = WebhookEventTrigger.from_request(request, webhook_endpoint=endpoint)
    if not trigger.valid:
        return HttpResponseBadRequest("The event did not validate.")
    return HttpResponse(str(trigger.id))
