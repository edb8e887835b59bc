from datetime import datetime
from typing import Any

from apps.core.events import domain_event_record

from .entitlements import customer_entitlements_touch
from .models import Subscription, SubscriptionEvent


def subscription_event_record(
    *,
    subscription: Subscription,
    type: str,
    actor: Any = None,
    data: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> SubscriptionEvent:
    event = domain_event_record(
        SubscriptionEvent, subscription=subscription, type=type, actor=actor, data=data, occurred_at=occurred_at
    )
    # Any change of a subscription may change what its customer is entitled to (docs/entitlements.md).
    customer_entitlements_touch(customer_id=subscription.customer_id)
    return event
