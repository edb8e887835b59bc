from datetime import datetime
from typing import Any

from apps.core import clock

from .models import Subscription, SubscriptionEvent


def subscription_event_record(
    *,
    subscription: Subscription,
    type: str,
    actor: Any = None,
    data: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> SubscriptionEvent:
    return SubscriptionEvent.objects.create(
        subscription=subscription,
        type=type,
        actor=actor if actor is not None and actor.is_authenticated else None,
        data=data or {},
        occurred_at=occurred_at or clock.now(),
    )
