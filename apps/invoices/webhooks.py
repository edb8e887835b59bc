"""The invoice and credit note events that outgoing webhooks deliver, and their payloads.

Events come from `InvoiceEvent` rows (written by every path, the billing run's bulk path included); the
payload is the invoice (or credit note) as it is when the event is collected, plus the event's details.
"""

from collections.abc import Sequence
from typing import Any

from djmoney.money import Money

from apps.core.outbox import EventSource, OutboxEvent

from .constants import InvoiceEventType
from .models import CreditNote, Invoice, InvoiceEvent

INVOICE_EVENT_TYPES = {
    InvoiceEventType.CREATED: "invoice.created",
    InvoiceEventType.FINALIZED: "invoice.finalized",
    InvoiceEventType.PAID: "invoice.paid",
    InvoiceEventType.VOIDED: "invoice.voided",
    InvoiceEventType.MARKED_UNCOLLECTIBLE: "invoice.marked_uncollectible",
}
CREDIT_NOTE_EVENT_TYPES = {
    InvoiceEventType.CREDIT_NOTE_ISSUED: "credit_note.created",
    InvoiceEventType.CREDIT_NOTE_VOIDED: "credit_note.voided",
}


def _money(amount: Money) -> dict[str, str]:
    return {"amount": str(amount.amount), "currency": str(amount.currency)}


def _at(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None


def invoice_webhook_payload(invoice: Invoice) -> dict[str, Any]:
    return {
        "id": invoice.pk,
        "object": "invoice",
        "number": invoice.number,
        "status": invoice.status,
        "customer": invoice.customer_id,
        "customer_external_id": invoice.customer.external_id,
        "subscription": invoice.subscription_id,
        "billing_reason": invoice.billing_reason,
        "currency": str(invoice.total.currency),
        "subtotal": _money(invoice.subtotal),
        "tax_total": _money(invoice.tax_total),
        "total": _money(invoice.total),
        "period_start_at": _at(invoice.period_start_at),
        "period_end_at": _at(invoice.period_end_at),
        "issued_at": _at(invoice.issued_at),
        "due_on": invoice.due_on.isoformat() if invoice.due_on else None,
        "paid_at": _at(invoice.paid_at),
        "voided_at": _at(invoice.voided_at),
    }


def credit_note_webhook_payload(credit_note: CreditNote) -> dict[str, Any]:
    return {
        "id": credit_note.pk,
        "object": "credit_note",
        "number": credit_note.number,
        "status": credit_note.status,
        "invoice": credit_note.invoice_id,
        "customer": credit_note.customer_id,
        "reason": credit_note.reason,
        "total": _money(credit_note.total),
        "issued_at": _at(credit_note.issued_at),
        "voided_at": _at(credit_note.voided_at),
    }


def _invoice_events_queryset() -> Any:
    return InvoiceEvent.objects.filter(type__in=[*INVOICE_EVENT_TYPES, *CREDIT_NOTE_EVENT_TYPES])


def _invoice_events_build(rows: Sequence[InvoiceEvent]) -> list[OutboxEvent]:
    invoices = Invoice.objects.select_related("customer").in_bulk({row.invoice_id for row in rows})
    numbers = {str(row.data.get("credit_note")) for row in rows if row.type in CREDIT_NOTE_EVENT_TYPES}
    credit_notes = {note.number: note for note in CreditNote.objects.filter(number__in=numbers)}
    events = []
    for row in rows:
        if row.type in INVOICE_EVENT_TYPES:
            invoice = invoices[row.invoice_id]
            events.append(
                OutboxEvent(
                    source_id=row.pk, type=INVOICE_EVENT_TYPES[row.type], occurred_at=row.occurred_at,
                    object_type="invoice", object_id=invoice.pk,
                    data={"object": invoice_webhook_payload(invoice), "details": row.data},
                )
            )  # fmt: skip
        else:
            note = credit_notes.get(str(row.data.get("credit_note")))
            if note is None:
                continue
            events.append(
                OutboxEvent(
                    source_id=row.pk, type=CREDIT_NOTE_EVENT_TYPES[row.type], occurred_at=row.occurred_at,
                    object_type="credit_note", object_id=note.pk,
                    data={"object": credit_note_webhook_payload(note), "details": row.data},
                )
            )  # fmt: skip
    return events


INVOICE_EVENT_SOURCE = EventSource(
    name="invoices.invoiceevent",
    event_types={
        "invoice.created": "A draft invoice was made (billing run, new subscription, change).",
        "invoice.finalized": "An invoice was finalized: numbered and issued.",
        "invoice.paid": "An invoice was paid (or marked paid).",
        "invoice.voided": "An invoice was voided.",
        "invoice.marked_uncollectible": "An invoice was marked uncollectible.",
        "credit_note.created": "A credit note was issued.",
        "credit_note.voided": "A credit note was voided.",
    },
    queryset=_invoice_events_queryset,
    build=_invoice_events_build,
)
