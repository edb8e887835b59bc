"""The prepaid-credit events that outgoing webhooks deliver (from `PrepaidStatusChange` rows):
`customer.prepaid_credits_exhausted` when a customer's usable credits run out, and
`customer.prepaid_credits_restored` when credits are usable again (a grant, a purchase, a top-up, a
return by a credit note). One row per transition, so one event per transition."""

from collections.abc import Sequence
from typing import Any

from apps.core.outbox import EventSource, OutboxEvent

from .models import PrepaidStatusChange

EXHAUSTED = "customer.prepaid_credits_exhausted"
RESTORED = "customer.prepaid_credits_restored"


def prepaid_status_change_webhook_payload(change: PrepaidStatusChange) -> dict[str, Any]:
    return {
        "id": change.pk,
        "object": "prepaid_status_change",
        "customer": change.customer_id,
        "prepaid_credits_exhausted": change.credits_exhausted,
        "credits": f"{change.credits.normalize():f}",
        "entry": change.entry_id,
        "occurred_at": change.occurred_at.isoformat(),
    }


def _build(rows: Sequence[PrepaidStatusChange]) -> list[OutboxEvent]:
    return [
        OutboxEvent(
            source_id=row.pk,
            type=EXHAUSTED if row.credits_exhausted else RESTORED,
            occurred_at=row.occurred_at,
            object_type="customer",
            object_id=row.customer_id,
            data={
                "object": {
                    "id": row.customer_id,
                    "object": "customer",
                    "prepaid_credits_exhausted": row.credits_exhausted,
                },
                "details": {"change": prepaid_status_change_webhook_payload(row)},
            },
        )
        for row in rows
    ]


PREPAID_STATUS_EVENT_SOURCE = EventSource(
    name="wallets.prepaidstatuschange",
    event_types={
        EXHAUSTED: "A prepaid customer has no usable credit left (spent, expired or voided); its spend status "
        "says prepaid_credits_exhausted (enforcing it is up to you).",
        RESTORED: "A prepaid customer that had run out of credits has usable credits again (a grant, a paid "
        "purchase or top-up, credits returned by a credit note).",
    },
    queryset=lambda: PrepaidStatusChange.objects.all(),
    build=_build,
)
