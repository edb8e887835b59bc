"""The subscription events that outgoing webhooks deliver (from `SubscriptionEvent` rows)."""

from collections.abc import Sequence
from typing import Any

from apps.core.outbox import EventSource, OutboxEvent

from .constants import SubscriptionEventType
from .models import EntitlementsChange, Subscription, SubscriptionEvent

SUBSCRIPTION_EVENT_TYPES = {
    SubscriptionEventType.CREATED: "subscription.created",
    SubscriptionEventType.CANCELED: "subscription.canceled",
    SubscriptionEventType.PAUSED: "subscription.paused",
    SubscriptionEventType.RESUMED: "subscription.resumed",
    SubscriptionEventType.TRIAL_ENDED: "subscription.trial_ended",
}
UPDATED = "subscription.updated"  # every other change; `details.event` says which


def _at(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None


def subscription_webhook_payload(subscription: Subscription) -> dict[str, Any]:
    return {
        "id": subscription.pk,
        "object": "subscription",
        "customer": subscription.customer_id,
        "plan": subscription.plan.code,
        "plan_version": subscription.plan_version.number,
        "quantity": subscription.quantity,
        "currency": subscription.currency,
        "status": subscription.status,
        "started_at": _at(subscription.started_at),
        "trial_end_at": _at(subscription.trial_end_at),
        "current_period_start_at": _at(subscription.current_period_start_at),
        "current_period_end_at": _at(subscription.current_period_end_at),
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "canceled_at": _at(subscription.canceled_at),
        "ended_at": _at(subscription.ended_at),
    }


def _build(rows: Sequence[SubscriptionEvent]) -> list[OutboxEvent]:
    subscriptions = Subscription.objects.select_related("plan", "plan_version").in_bulk(
        {row.subscription_id for row in rows}
    )
    return [
        OutboxEvent(
            source_id=row.pk,
            type=SUBSCRIPTION_EVENT_TYPES.get(row.type, UPDATED),  # type: ignore[call-overload]
            occurred_at=row.occurred_at,
            object_type="subscription",
            object_id=row.subscription_id,
            data={
                "object": subscription_webhook_payload(subscriptions[row.subscription_id]),
                "details": {"event": row.type, **row.data},
            },
        )
        for row in rows
    ]


SUBSCRIPTION_EVENT_SOURCE = EventSource(
    name="subscriptions.subscriptionevent",
    event_types={
        "subscription.created": "A subscription was created.",
        "subscription.updated": "A subscription changed (plan, quantity, scheduled change or cancellation, "
        "version migration).",
        "subscription.canceled": "A subscription was canceled now (it bills nothing more).",
        "subscription.paused": "A subscription was paused.",
        "subscription.resumed": "A subscription was resumed.",
        "subscription.trial_ended": "A subscription's trial ended.",
    },
    queryset=lambda: SubscriptionEvent.objects.all(),
    build=_build,
)


# --- customer.entitlements_changed (from `EntitlementsChange` rows) ---------------------------------


def _entitlements_build(rows: Sequence[EntitlementsChange]) -> list[OutboxEvent]:
    return [
        OutboxEvent(
            source_id=row.pk,
            type="customer.entitlements_changed",
            occurred_at=row.occurred_at,
            object_type="customer",
            object_id=row.customer_id,
            data={
                "object": {"object": "entitlements", "customer": row.customer_id, "features": row.features},
                "details": {"previous": row.previous_values},
            },
        )
        for row in rows
    ]


ENTITLEMENTS_EVENT_SOURCE = EventSource(
    name="subscriptions.entitlementschange",
    event_types={
        "customer.entitlements_changed": "What a customer's subscriptions grant changed (a new subscription, a plan "
        "or version change, a cancellation, a pause or resume): the new entitlements, and the values before.",
    },
    queryset=lambda: EntitlementsChange.objects.all(),
    build=_entitlements_build,
)
