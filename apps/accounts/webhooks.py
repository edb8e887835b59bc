"""The customer events that outgoing webhooks deliver.

Customers have no event table of their own: their audit log entries (django-auditlog, written on every
create, change and delete of a customer) are the record, with the changed fields.
"""

from collections.abc import Sequence
from typing import Any

from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType

from apps.core.outbox import EventSource, OutboxEvent

from .models import Customer

CUSTOMER_EVENT_TYPES = {
    LogEntry.Action.CREATE: "customer.created",
    LogEntry.Action.UPDATE: "customer.updated",
    LogEntry.Action.DELETE: "customer.deleted",
}


def customer_webhook_payload(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.pk,
        "object": "customer",
        "external_id": customer.external_id,
        "name": customer.name,
        "email": customer.email,
        "country": str(customer.country),
        "currency": customer.currency,
        "tax_id": customer.tax_id,
        "tax_exempt": customer.tax_exempt,
        "address_lines": customer.address_lines,
    }


def _queryset() -> Any:
    return LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Customer), action__in=list(CUSTOMER_EVENT_TYPES)
    )


def _build(rows: Sequence[LogEntry]) -> list[OutboxEvent]:
    customers = Customer.objects.in_bulk({int(row.object_pk) for row in rows})
    events = []
    for row in rows:
        customer = customers.get(int(row.object_pk))
        changed = sorted((row.changes_dict or {}).keys()) if row.action == LogEntry.Action.UPDATE else []
        payload = customer_webhook_payload(customer) if customer else {"id": int(row.object_pk), "object": "customer"}
        events.append(
            OutboxEvent(
                source_id=row.pk, type=CUSTOMER_EVENT_TYPES[row.action], occurred_at=row.timestamp,
                object_type="customer", object_id=int(row.object_pk),
                data={"object": payload, "details": {"changed_fields": changed}},
            )
        )  # fmt: skip
    return events


CUSTOMER_EVENT_SOURCE = EventSource(
    name="accounts.customer",
    event_types={
        "customer.created": "A customer was created.",
        "customer.updated": "A customer's details changed (`details.changed_fields` names them).",
        "customer.deleted": "A customer was deleted.",
    },
    queryset=_queryset,
    build=_build,
)
