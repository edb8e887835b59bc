"""The alert events that outgoing webhooks deliver (from `AlertCrossing` rows): `alert.triggered` for
every crossing, and `customer.limit_reached` for a crossing of a hard limit."""

from collections.abc import Sequence
from typing import Any

from apps.core.outbox import EventSource, OutboxEvent

from .models import AlertCrossing


def _at(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None


def alert_crossing_webhook_payload(crossing: AlertCrossing) -> dict[str, Any]:
    alert = crossing.alert
    return {
        "id": crossing.pk,
        "object": "alert_crossing",
        "customer": crossing.customer_id,
        "alert": {
            "id": alert.pk,
            "name": alert.name,
            "kind": alert.kind,
            "origin": alert.origin,
            "subscription": alert.subscription_id,
            "metric": alert.metric.code if alert.metric else None,
            "thresholds": alert.thresholds,
            "is_hard_limit": alert.is_hard_limit,
        },
        "threshold": crossing.threshold_text,
        "value": crossing.value_text,
        "currency": crossing.currency or None,
        "period_start_at": _at(crossing.period_start_at),
        "period_end_at": _at(crossing.period_end_at),
        "crossed_at": _at(crossing.crossed_at),
        "is_limit": crossing.is_limit,
    }


def _rows(rows: Sequence[AlertCrossing]) -> dict[int, AlertCrossing]:
    return AlertCrossing.objects.select_related("alert__metric").in_bulk([row.pk for row in rows])


def _build_triggered(rows: Sequence[AlertCrossing]) -> list[OutboxEvent]:
    crossings = _rows(rows)
    return [
        OutboxEvent(
            source_id=row.pk,
            type="alert.triggered",
            occurred_at=row.crossed_at,
            object_type="alert_crossing",
            object_id=row.pk,
            data={"object": alert_crossing_webhook_payload(crossings[row.pk]), "details": {}},
        )
        for row in rows
    ]


def _build_limit(rows: Sequence[AlertCrossing]) -> list[OutboxEvent]:
    crossings = _rows(rows)
    return [
        OutboxEvent(
            source_id=row.pk,
            type="customer.limit_reached",
            occurred_at=row.crossed_at,
            object_type="customer",
            object_id=row.customer_id,
            data={
                "object": {"id": row.customer_id, "object": "customer", "usage_blocked": True},
                "details": {"crossing": alert_crossing_webhook_payload(crossings[row.pk])},
            },
        )
        for row in rows
    ]


ALERT_EVENT_SOURCE = EventSource(
    name="alerts.alertcrossing",
    event_types={"alert.triggered": "A threshold of an alert or budget was crossed (once per period)."},
    queryset=lambda: AlertCrossing.objects.all(),
    build=_build_triggered,
)
LIMIT_EVENT_SOURCE = EventSource(
    name="alerts.alertcrossing.limit",
    event_types={
        "customer.limit_reached": "A customer reached a hard limit: its spend status says usage is blocked "
        "until the period ends (enforcing it is up to you)."
    },
    queryset=lambda: AlertCrossing.objects.filter(is_limit=True),
    build=_build_limit,
)
