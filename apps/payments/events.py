from datetime import datetime

from apps.core import clock

from .models import Payment, PaymentEvent


def payment_event_record(
    *, payment: Payment, type: str, actor=None, data: dict | None = None, occurred_at: datetime | None = None
) -> PaymentEvent:
    return PaymentEvent.objects.create(
        payment=payment,
        type=type,
        actor=actor if actor is not None and actor.is_authenticated else None,
        data=data or {},
        occurred_at=occurred_at or clock.now(),
    )
