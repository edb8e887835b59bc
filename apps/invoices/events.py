from datetime import datetime

from apps.core import clock

from .models import Invoice, InvoiceEvent


def invoice_event_record(
    *, invoice: Invoice, type: str, actor=None, data: dict | None = None, occurred_at: datetime | None = None
) -> InvoiceEvent:
    return InvoiceEvent.objects.create(
        invoice=invoice,
        type=type,
        actor=actor if actor is not None and actor.is_authenticated else None,
        data=data or {},
        occurred_at=occurred_at or clock.now(),
    )
