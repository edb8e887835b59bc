"""The payment and refund events that outgoing webhooks deliver (from `PaymentEvent` rows)."""

from collections.abc import Sequence
from typing import Any

from djmoney.money import Money

from apps.core.money import round_money
from apps.core.outbox import EventSource, OutboxEvent

from .constants import PaymentEventType
from .models import Payment, PaymentEvent

PAYMENT_EVENT_TYPES = {
    PaymentEventType.SUCCEEDED: "payment.succeeded",
    PaymentEventType.SUCCEEDED_AFTER_CANCEL: "payment.succeeded",  # canceled here, yet the money came
    PaymentEventType.FAILED: "payment.failed",
    PaymentEventType.REQUIRES_ACTION: "payment.requires_action",
    PaymentEventType.CANCELED: "payment.canceled",
    PaymentEventType.REVERSED: "payment.reversed",
    PaymentEventType.REFUND_CREATED: "refund.created",
    PaymentEventType.REFUND_SUCCEEDED: "refund.succeeded",
    PaymentEventType.REFUND_FAILED: "refund.failed",
}


def _at(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None


def _money(amount: Money) -> dict[str, str]:
    return {"amount": str(round_money(amount).amount), "currency": str(amount.currency)}


def payment_webhook_payload(payment: Payment) -> dict[str, Any]:
    return {
        "id": payment.pk,
        "object": "payment",
        "customer": payment.customer_id,
        "provider": payment.provider,
        "method": payment.method,
        "status": payment.status,
        "amount": _money(payment.amount),
        "amount_refunded": _money(payment.amount_refunded),
        "reference": payment.reference,
        "provider_payment_id": payment.provider_payment_id,
        "failure_code": payment.failure_code,
        "failure_message": payment.failure_message,
        "received_at": _at(payment.received_at),
        "allocations": [
            {"invoice": allocation.invoice_id, "amount": str(round_money(allocation.amount).amount)}
            for allocation in payment.allocations.all()
        ],
    }


def _build(rows: Sequence[PaymentEvent]) -> list[OutboxEvent]:
    payments = Payment.objects.prefetch_related("allocations").in_bulk({row.payment_id for row in rows})
    return [
        OutboxEvent(
            source_id=row.pk,
            type=PAYMENT_EVENT_TYPES[row.type],  # type: ignore[index]
            occurred_at=row.occurred_at,
            object_type="payment",
            object_id=row.payment_id,
            data={"object": payment_webhook_payload(payments[row.payment_id]), "details": row.data},
        )
        for row in rows
    ]


PAYMENT_EVENT_SOURCE = EventSource(
    name="payments.paymentevent",
    event_types={
        "payment.succeeded": "A payment succeeded (its invoices are paid as far as it goes).",
        "payment.failed": "A payment attempt failed.",
        "payment.requires_action": "A card payment waits for the customer (e.g. 3-D Secure).",
        "payment.canceled": "A pending payment was canceled.",
        "payment.reversed": "A wrong manual payment was undone.",
        "refund.created": "A refund of a payment was made (it may still be pending).",
        "refund.succeeded": "A refund went through.",
        "refund.failed": "A refund failed.",
    },
    queryset=lambda: PaymentEvent.objects.filter(type__in=list(PAYMENT_EVENT_TYPES)),
    build=_build,
)
