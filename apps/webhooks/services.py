"""Outgoing webhooks: endpoints, the event outbox and deliveries (docs/audit-and-webhooks.md).

1. `webhook_events_collect` reads each registered event source (`apps.core.outbox`) past its cursor and
   records every domain event once as a `WebhookEvent` (unique per source row), with one
   `WebhookDelivery` per active endpoint that subscribes to its type.
2. `webhook_delivery_attempt` POSTs the signed event to the endpoint (to a public address only, without
   following redirects: `egress`) and logs the attempt; a failure is
   retried later with exponential backoff (capped) until `WEBHOOK_MAX_ATTEMPTS`; an endpoint that fails
   `WEBHOOK_DISABLE_AFTER_FAILURES` attempts in a row is turned off.
3. `webhook_delivery_redeliver` sends a delivery again at once, on staff's request.
"""

import json
import secrets
import time
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import F, Max
from django.utils.translation import gettext

from apps.core import clock
from apps.core.errors import NotFound, ValidationFailed
from apps.core.outbox import EventSource, event_sources, event_types

from .constants import EVENT_ID_HEADER, EVENT_TYPE_HEADER, SECRET_PREFIX, SIGNATURE_HEADER, DeliveryStatus
from .egress import url_problem, webhook_post
from .models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent, WebhookSourceCursor
from .signing import signature_header

ENDPOINT_FIELDS = ("url", "description", "event_types", "is_active")


# --- Endpoints -------------------------------------------------------------------------------------


def _secret_new() -> str:
    return SECRET_PREFIX + secrets.token_hex(24)


def _endpoint_validate(*, url: str | None, event_types_: list[str]) -> dict[str, list[str]]:
    """Field errors of an endpoint's URL (None: not being set) and event types. A URL must be
    https (http only with `WEBHOOK_ALLOW_HTTP`) and its host public (see `egress`)."""
    problems: dict[str, list[str]] = {}
    if url is not None:
        try:
            URLValidator(schemes=["http", "https"])(url)
        except DjangoValidationError:
            problems["url"] = [gettext("Enter a valid http:// or https:// URL.")]
        else:
            problem = url_problem(url)
            if problem:
                problems["url"] = [problem]
    if not isinstance(event_types_, list) or not all(isinstance(item, str) for item in event_types_):
        problems["event_types"] = [gettext("A list of event types.")]
    else:
        unknown = sorted(set(event_types_) - set(event_types()))
        if unknown:
            problems["event_types"] = [gettext("Unknown event type: %(name)s.") % {"name": name} for name in unknown]
    return problems


@transaction.atomic
def webhook_endpoint_create(
    *,
    url: str,
    description: str = "",
    event_types: list[str] | None = None,
    is_active: bool = True,
    actor: Any = None,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret (returned once: show it to whoever created it)."""
    types = list(event_types or [])
    problems = _endpoint_validate(url=url, event_types_=types)
    if problems:
        raise ValidationFailed(gettext("The webhook endpoint is not valid."), fields=problems)
    secret = _secret_new()
    endpoint = WebhookEndpoint.objects.create(
        url=url,
        description=description,
        event_types=sorted(set(types)),
        is_active=is_active,
        secret=secret,
        created_by=actor if actor is not None and getattr(actor, "is_authenticated", False) and actor.pk else None,
    )
    return endpoint, secret


@transaction.atomic
def webhook_endpoint_update(*, endpoint_id: int, **changes: Any) -> WebhookEndpoint:
    """Change the URL, description, event types or whether it is active. Turning an endpoint on again
    clears its failure count (deliveries still due are then sent)."""
    endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound(gettext("Webhook endpoint %(endpoint_id)s does not exist.") % {"endpoint_id": endpoint_id})
    unknown = sorted(set(changes) - set(ENDPOINT_FIELDS))
    if unknown:
        raise ValidationFailed(
            gettext("Unknown fields."),
            fields={name: [gettext("This field cannot be changed.")] for name in unknown},
        )
    # The URL is checked when it is set: a stored one is checked again at every send anyway.
    url = changes.get("url") if "url" in changes else None
    types = list(changes.get("event_types", endpoint.event_types))
    problems = _endpoint_validate(url=url, event_types_=types)
    if problems:
        raise ValidationFailed(gettext("The webhook endpoint is not valid."), fields=problems)
    fields = ["updated_at"]
    for name, value in changes.items():
        setattr(endpoint, name, sorted(set(value)) if name == "event_types" else value)
        fields.append(name)
    if changes.get("is_active") and (endpoint.disabled_at is not None or endpoint.consecutive_failures):
        endpoint.disabled_at = None
        endpoint.consecutive_failures = 0
        fields += ["disabled_at", "consecutive_failures"]
    endpoint.save(update_fields=fields)
    return endpoint


@transaction.atomic
def webhook_endpoint_secret_roll(*, endpoint_id: int) -> tuple[WebhookEndpoint, str]:
    """A new secret for the endpoint (the old one stops signing at once); returned once."""
    endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound(gettext("Webhook endpoint %(endpoint_id)s does not exist.") % {"endpoint_id": endpoint_id})
    endpoint.secret = _secret_new()
    endpoint.save(update_fields=["secret", "updated_at"])
    return endpoint, endpoint.secret


# --- The outbox ------------------------------------------------------------------------------------


def _cursor_lock(source: EventSource, *, now: datetime) -> WebhookSourceCursor:
    cursor = WebhookSourceCursor.objects.select_for_update().filter(source=source.name).first()
    if cursor is None:
        # A source read for the first time starts at its newest row: history is not sent.
        newest = source.queryset().aggregate(newest=Max("id"))["newest"] or 0
        WebhookSourceCursor.objects.bulk_create(
            [WebhookSourceCursor(source=source.name, scanned_id=newest, settled_id=newest, candidate_id=newest)],
            ignore_conflicts=True,
        )
        cursor = WebhookSourceCursor.objects.select_for_update().get(source=source.name)
    return cursor


def _cursor_settle(cursor: WebhookSourceCursor, *, now: datetime) -> None:
    """Rows up to `candidate_id` were read `WEBHOOK_OUTBOX_SETTLE_SECONDS` ago: any transaction that was
    writing source rows then has committed by now, so no row at or below it can still appear."""
    settle = timedelta(seconds=settings.WEBHOOK_OUTBOX_SETTLE_SECONDS)
    if cursor.candidate_since is None or now - cursor.candidate_since >= settle:
        if cursor.candidate_since is not None:
            cursor.settled_id = max(cursor.settled_id, cursor.candidate_id)
        cursor.candidate_id = cursor.scanned_id
        cursor.candidate_since = now


def _source_collect(source: EventSource, *, now: datetime, batch_size: int) -> list[int]:
    """Record the source's new events; returns the ids of the deliveries made."""
    cursor = _cursor_lock(source, now=now)
    endpoints = list(WebhookEndpoint.objects.filter(is_active=True, disabled_at__isnull=True))
    delivery_ids: list[int] = []
    while True:
        # Everything past the settled point that has no event yet: new rows, and rows that an older
        # transaction committed after later ids had been read.
        recorded = WebhookEvent.objects.filter(source=source.name, source_id__gt=cursor.settled_id)
        rows = list(
            source.queryset()
            .filter(id__gt=cursor.settled_id)
            .exclude(id__in=recorded.values("source_id"))
            .order_by("id")[:batch_size]
        )
        if not rows:
            break
        cursor.scanned_id = max(cursor.scanned_id, rows[-1].id)
        built = source.build(rows)
        events = WebhookEvent.objects.bulk_create(
            [
                WebhookEvent(
                    source=source.name, source_id=item.source_id, type=item.type, occurred_at=item.occurred_at,
                    object_type=item.object_type, object_id=item.object_id, data=item.data,
                )
                for item in built
            ]
        )  # fmt: skip
        deliveries = WebhookDelivery.objects.bulk_create(
            [
                WebhookDelivery(event=event, endpoint=endpoint, next_attempt_at=now)
                for event in events
                for endpoint in endpoints
                if endpoint.wants(event.type)
            ]
        )
        delivery_ids += [delivery.pk for delivery in deliveries]
        if len(rows) < batch_size:
            break
    _cursor_settle(cursor, now=now)
    cursor.save(update_fields=["scanned_id", "settled_id", "candidate_id", "candidate_since"])
    return delivery_ids


def webhook_events_collect(*, now: datetime | None = None, batch_size: int | None = None) -> int:
    """Record the domain events that are not recorded yet and queue their deliveries. Safe to run
    twice, or in two processes at once: each source's cursor row is locked, and an event exists at
    most once per source row. Returns the number of deliveries queued."""
    now = now or clock.now()
    batch_size = batch_size or settings.WEBHOOK_COLLECT_BATCH_SIZE
    queued = 0
    for source in event_sources():
        with transaction.atomic():
            delivery_ids = _source_collect(source, now=now, batch_size=batch_size)
            if delivery_ids:
                transaction.on_commit(partial(_deliveries_enqueue, delivery_ids))
        queued += len(delivery_ids)
    return queued


def _deliveries_enqueue(delivery_ids: list[int], countdown: float | None = None) -> None:
    from .tasks import webhook_delivery_attempt_task

    for delivery_id in delivery_ids:
        webhook_delivery_attempt_task.apply_async(args=[delivery_id], countdown=countdown)


# --- Delivery --------------------------------------------------------------------------------------


def retry_delay_seconds(attempt_count: int) -> int:
    """Seconds to wait after the `attempt_count`-th failed attempt: base × 2^(n−1), capped."""
    base = settings.WEBHOOK_RETRY_BASE_SECONDS
    return int(min(settings.WEBHOOK_RETRY_MAX_SECONDS, base * 2 ** max(0, attempt_count - 1)))


def webhook_event_body(event: WebhookEvent) -> bytes:
    envelope = {
        "id": event.public_id,
        "type": event.type,
        "occurred_at": event.occurred_at.isoformat(),
        "object_type": event.object_type,
        "object_id": event.object_id,
        "data": event.data,
    }
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True).encode()


def _send(delivery: WebhookDelivery, *, manual: bool, now: datetime) -> WebhookAttempt:
    endpoint, event = delivery.endpoint, delivery.event
    body = webhook_event_body(event)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "BillingPortal-Webhooks/1.0",
        SIGNATURE_HEADER: signature_header(secret=endpoint.secret, timestamp=int(clock.now().timestamp()), body=body),
        EVENT_ID_HEADER: event.public_id,
        EVENT_TYPE_HEADER: event.type,
    }
    started = time.monotonic()
    answer = webhook_post(endpoint.url, body=body, headers=headers, timeout=settings.WEBHOOK_TIMEOUT_SECONDS)
    duration_ms = int((time.monotonic() - started) * 1000)
    return WebhookAttempt.objects.create(
        delivery=delivery,
        number=delivery.attempts.count() + 1,
        manual=manual,
        attempted_at=now,
        url=endpoint.url,
        request_headers={name: value for name, value in headers.items() if name != SIGNATURE_HEADER}
        | {SIGNATURE_HEADER: headers[SIGNATURE_HEADER].split(",v1=")[0] + ",v1=…"},
        request_body=body.decode(),
        response_status=answer.status,
        response_body=answer.excerpt,
        error=answer.error,
        duration_ms=duration_ms,
        succeeded=answer.status is not None and 200 <= answer.status < 300,
    )


def _endpoint_record(endpoint_id: int, *, succeeded: bool, now: datetime) -> None:
    if succeeded:
        WebhookEndpoint.objects.filter(pk=endpoint_id).exclude(consecutive_failures=0).update(consecutive_failures=0)
        return
    WebhookEndpoint.objects.filter(pk=endpoint_id).update(consecutive_failures=F("consecutive_failures") + 1)
    WebhookEndpoint.objects.filter(
        pk=endpoint_id,
        disabled_at__isnull=True,
        consecutive_failures__gte=settings.WEBHOOK_DISABLE_AFTER_FAILURES,
    ).update(disabled_at=now)


@transaction.atomic
def webhook_delivery_attempt(*, delivery_id: int, now: datetime | None = None) -> WebhookAttempt | None:
    """The scheduled attempt of a delivery, when it is due (else nothing). The delivery's row stays
    locked while the request runs (at most `WEBHOOK_TIMEOUT_SECONDS`), so a delivery is never sent twice
    at once."""
    now = now or clock.now()
    delivery = (
        WebhookDelivery.objects.select_for_update(of=("self",))
        .select_related("endpoint", "event")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None or delivery.status in (DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED):
        return None
    endpoint = delivery.endpoint
    if not endpoint.is_active or endpoint.disabled_at is not None:
        return None  # kept due: sent when the endpoint is turned on again
    if delivery.next_attempt_at is not None and delivery.next_attempt_at > now:
        return None  # not due yet (a duplicate task, or a sweep that came early)
    attempt = _send(delivery, manual=False, now=now)
    delivery.attempt_count += 1
    delivery.last_attempt_at = now
    delivery.last_response_status = attempt.response_status
    if attempt.succeeded:
        delivery.status = DeliveryStatus.SUCCEEDED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
    elif delivery.attempt_count >= settings.WEBHOOK_MAX_ATTEMPTS:
        delivery.status = DeliveryStatus.FAILED
        delivery.next_attempt_at = None
    else:
        delay = retry_delay_seconds(delivery.attempt_count)
        delivery.status = DeliveryStatus.RETRYING
        delivery.next_attempt_at = now + timedelta(seconds=delay)
        transaction.on_commit(lambda: _deliveries_enqueue([delivery.pk], countdown=delay))
    delivery.save(
        update_fields=["status", "attempt_count", "last_attempt_at", "last_response_status", "delivered_at",
                       "next_attempt_at"]
    )  # fmt: skip
    _endpoint_record(endpoint.pk, succeeded=attempt.succeeded, now=now)
    return attempt


@transaction.atomic
def webhook_delivery_redeliver(*, delivery_id: int, now: datetime | None = None) -> WebhookAttempt:
    """Send a delivery again now, whatever its state (staff's "Redeliver"). A success marks it
    delivered; a failure leaves its schedule as it was."""
    now = now or clock.now()
    delivery = (
        WebhookDelivery.objects.select_for_update(of=("self",))
        .select_related("endpoint", "event")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None:
        raise NotFound(gettext("Webhook delivery %(delivery_id)s does not exist.") % {"delivery_id": delivery_id})
    attempt = _send(delivery, manual=True, now=now)
    delivery.last_attempt_at = now
    delivery.last_response_status = attempt.response_status
    fields = ["last_attempt_at", "last_response_status"]
    if attempt.succeeded and delivery.status != DeliveryStatus.SUCCEEDED:
        delivery.status = DeliveryStatus.SUCCEEDED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
        fields += ["status", "delivered_at", "next_attempt_at"]
    delivery.save(update_fields=fields)
    _endpoint_record(delivery.endpoint_id, succeeded=attempt.succeeded, now=now)
    return attempt


def webhook_deliveries_due(*, now: datetime | None = None, limit: int = 1000) -> list[int]:
    """Deliveries whose attempt is due to active endpoints (the sweep re-queues them, in case a queued
    task was lost)."""
    now = now or clock.now()
    return list(
        WebhookDelivery.objects.filter(
            status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING],
            next_attempt_at__lte=now,
            endpoint__is_active=True,
            endpoint__disabled_at__isnull=True,
        )
        .order_by("next_attempt_at", "id")
        .values_list("id", flat=True)[:limit]
    )


def webhook_deliveries_requeue_due(*, now: datetime | None = None) -> int:
    ids = webhook_deliveries_due(now=now)
    transaction.on_commit(lambda: _deliveries_enqueue(ids))
    return len(ids)


__all__ = [
    "retry_delay_seconds",
    "webhook_deliveries_due",
    "webhook_deliveries_requeue_due",
    "webhook_delivery_attempt",
    "webhook_delivery_redeliver",
    "webhook_endpoint_create",
    "webhook_endpoint_secret_roll",
    "webhook_endpoint_update",
    "webhook_event_body",
    "webhook_events_collect",
]
