from datetime import datetime

from apps.core.events import domain_event_record

from .models import Invoice, InvoiceEvent


def invoice_event_record(
    *, invoice: Invoice, type: str, actor=None, data: dict | None = None, occurred_at: datetime | None = None
) -> InvoiceEvent:
    return domain_event_record(
        InvoiceEvent, invoice=invoice, type=type, actor=actor, data=data, occurred_at=occurred_at
    )
