from datetime import datetime

from apps.core.events import domain_event_record

from .models import Payment, PaymentEvent


def payment_event_record(
    *, payment: Payment, type: str, actor=None, data: dict | None = None, occurred_at: datetime | None = None
) -> PaymentEvent:
    return domain_event_record(
        PaymentEvent, payment=payment, type=type, actor=actor, data=data, occurred_at=occurred_at
    )
