"""The audit trail: audit log entries (field changes, by whom and why) and the domain events the services
record (`InvoiceEvent`, `SubscriptionEvent`, …) read together, newest first.

The billing run's bulk path writes invoices with COPY, which no model signal sees; its invoices'
`created`/`finalized` events are their record here, and each period a subscription was moved to shows
in the subscriptions' trail ("Period invoiced").
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from auditlog.models import LogEntry
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist
from django.db.models import F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils.text import capfirst
from django.utils.translation import gettext

from apps.core.event_details import key_label, value_text

from .registration import audited_models

# Domain event tables: (event model, the field pointing at the object, the object's model).
DOMAIN_EVENT_TABLES = (
    ("invoices.InvoiceEvent", "invoice", "invoices.Invoice"),
    ("subscriptions.SubscriptionEvent", "subscription", "subscriptions.Subscription"),
    ("payments.PaymentEvent", "payment", "payments.Payment"),
)

ACTIONS = {
    LogEntry.Action.CREATE: "created",
    LogEntry.Action.UPDATE: "changed",
    LogEntry.Action.DELETE: "deleted",
    LogEntry.Action.ACCESS: "accessed",
}


@dataclass(frozen=True)
class AuditRecord:
    occurred_at: datetime
    kind: str  # "change" (audit log entry) or "event" (domain event)
    model: str  # label_lower of the object's model, e.g. "invoices.invoice"
    model_name: str
    object_id: str
    object_repr: str
    action: str
    actor: str
    via: str
    reason: str
    changes: dict[str, Any] = field(default_factory=dict)  # change: {field: [before, after]}; event: its data
    record_id: int = 0
    labels: dict[str, str] = field(default_factory=dict)  # field name → its label, for people (the page)

    def label(self, name: str) -> str:
        """A field's label ("Amount paid"), not its name ("amount_paid"); a key of an event's data
        that is no field of the object, in words ("proration total")."""
        return self.labels.get(name) or capfirst(name.replace("_", " "))

    @property
    def reason_text(self) -> str:
        """The reason for people: an event's known stored reason in the reader's language (the CSV keeps
        it as stored)."""
        return value_text("reason", self.reason, self.changes) if self.kind == "event" and self.reason else self.reason

    @property
    def detail_lines(self) -> list[str]:
        """The changes (field: before → after) or the event's details, one line each, by label."""
        if self.kind == "change":
            return [f"{self.label(name)}: {_pair(values)}" for name, values in self.changes.items()]
        return [
            gettext("%(label)s: %(value)s")
            % {"label": self.labels.get(name) or key_label(name), "value": value_text(name, value, self.changes)}
            for name, value in self.changes.items()
        ]


def field_labels(model: Any, names: Iterable[str]) -> dict[str, str]:
    """The labels of a model's fields by name (a money field's currency column too: "Total currency")."""
    labels = {}
    for name in names:
        try:
            model_field = model._meta.get_field(name)
        except (FieldDoesNotExist, AttributeError):
            continue
        labels[name] = capfirst(str(getattr(model_field, "verbose_name", name)))
    return labels


def _pair(values: Any) -> str:
    if isinstance(values, list | tuple) and len(values) == 2:
        return f"{values[0]} → {values[1]}"
    return str(values)


@dataclass(frozen=True)
class AuditFilter:
    model: str = ""  # label_lower
    object_id: str = ""
    actor: str = ""  # part of a username or of a system actor's name; "system" matches events without a user
    date_from: date | None = None
    date_to: date | None = None


def _event_tables() -> list[tuple[Any, str, Any]]:
    tables = []
    for event_label, fk, object_label in DOMAIN_EVENT_TABLES:
        try:
            tables.append((apps.get_model(event_label), fk, apps.get_model(object_label)))
        except LookupError:
            continue
    return tables


def audit_model_choices() -> list[tuple[str, str]]:
    models = {model._meta.label_lower: model for model in audited_models()}
    for _event_model, _fk, object_model in _event_tables():
        models[object_model._meta.label_lower] = object_model
    return sorted(
        (
            (label, f"{model._meta.app_config.verbose_name}: {model._meta.verbose_name}")
            for label, model in models.items()
        ),
        key=lambda choice: choice[1],
    )


def _moment_range(filters: AuditFilter) -> tuple[datetime | None, datetime | None]:
    """Whole UTC days, `date_to` included."""
    start = datetime.combine(filters.date_from, time.min, tzinfo=UTC) if filters.date_from else None
    end = datetime.combine(filters.date_to + timedelta(days=1), time.min, tzinfo=UTC) if filters.date_to else None
    return start, end


def _log_entries(filters: AuditFilter, limit: int | None) -> Iterator[AuditRecord]:
    entries = LogEntry.objects.select_related("content_type", "actor").order_by("-timestamp", "-id")
    if filters.model:
        app_label, _, model = filters.model.partition(".")
        entries = entries.filter(content_type__app_label=app_label, content_type__model=model)
    else:
        entries = entries.filter(content_type__in=ContentType.objects.get_for_models(*audited_models()).values())
    if filters.object_id:
        entries = entries.filter(object_pk=filters.object_id)
    if filters.actor:
        entries = entries.filter(
            Q(actor__username__icontains=filters.actor) | Q(additional_data__actor__icontains=filters.actor)
            if filters.actor.lower() != "system"
            else Q(actor__isnull=True)
        )
    start, end = _moment_range(filters)
    if start:
        entries = entries.filter(timestamp__gte=start)
    if end:
        entries = entries.filter(timestamp__lt=end)
    for entry in entries[:limit] if limit else entries.iterator(chunk_size=2000):
        data = entry.additional_data or {}
        model_class = entry.content_type.model_class()
        yield AuditRecord(
            occurred_at=entry.timestamp,
            kind="change",
            model=f"{entry.content_type.app_label}.{entry.content_type.model}",
            model_name=str(model_class._meta.verbose_name) if model_class else entry.content_type.model,
            object_id=entry.object_pk,
            object_repr=entry.object_repr,
            action=ACTIONS.get(entry.action, str(entry.action)),
            actor=entry.actor.get_username() if entry.actor else data.get("actor", "") or "system",
            via=data.get("via", ""),
            reason=data.get("reason", ""),
            changes=entry.changes_dict or {},
            record_id=entry.pk,
            labels=field_labels(model_class, (entry.changes_dict or {}).keys()) if model_class else {},
        )


def _domain_events(filters: AuditFilter, limit: int | None) -> Iterator[AuditRecord]:
    start, end = _moment_range(filters)
    for event_model, fk, object_model in _event_tables():
        label = object_model._meta.label_lower
        if filters.model and filters.model != label:
            continue
        events = event_model.objects.select_related(fk, "actor").order_by("-occurred_at", "-id")
        if filters.object_id:
            if not filters.object_id.isdigit():
                continue
            events = events.filter(**{f"{fk}_id": int(filters.object_id)})
        if filters.actor:
            events = events.filter(
                Q(actor__isnull=True)
                if filters.actor.lower() == "system"
                else Q(actor__username__icontains=filters.actor)
            )
        if start:
            events = events.filter(occurred_at__gte=start)
        if end:
            events = events.filter(occurred_at__lt=end)
        for event in events[:limit] if limit else events.iterator(chunk_size=2000):
            data = event.data or {}
            yield AuditRecord(
                occurred_at=event.occurred_at,
                kind="event",
                model=label,
                model_name=str(object_model._meta.verbose_name),
                object_id=str(getattr(event, f"{fk}_id")),
                object_repr=str(getattr(event, fk)),
                action=event.get_type_display(),
                actor=event.actor.get_username() if event.actor else "system",
                via="",
                reason=str(data.get("reason", "") or ""),
                changes=data,
                record_id=event.pk,
                labels=field_labels(object_model, data.keys()),
            )


def _invoiced_periods(filters: AuditFilter, limit: int | None) -> Iterator[AuditRecord]:
    """In a subscription's trail (and the trail of subscriptions): each period the billing run billed,
    which made it the subscription's current period, with its invoice. The billing run's bulk path moves
    subscriptions to their new period with one UPDATE that writes no audit log entry; these rows (and
    the invoice's `created` event, whose moment and actor they take) are the record of that move."""
    if filters.model != "subscriptions.subscription" or (filters.object_id and not filters.object_id.isdigit()):
        return
    try:
        period_model = apps.get_model("invoices.InvoicedPeriod")
        event_model = apps.get_model("invoices.InvoiceEvent")
    except LookupError:
        return
    created = event_model.objects.filter(invoice=OuterRef("invoice_id"), type="created").order_by("id")
    periods = (
        period_model.objects.select_related("invoice", "subscription")
        .annotate(
            occurred_at=Coalesce(Subquery(created.values("occurred_at")[:1]), F("invoice__created_at"), F("billed_at")),
            actor_name=Subquery(created.values("actor__username")[:1]),
        )
        .order_by("-occurred_at", "-id")
    )
    if filters.object_id:
        periods = periods.filter(subscription_id=int(filters.object_id))
    if filters.actor:
        periods = periods.filter(
            Q(actor_name__isnull=True) if filters.actor.lower() == "system" else Q(actor_name__icontains=filters.actor)
        )
    start, end = _moment_range(filters)
    if start:
        periods = periods.filter(occurred_at__gte=start)
    if end:
        periods = periods.filter(occurred_at__lt=end)
    for period in periods[:limit] if limit else periods.iterator(chunk_size=2000):
        yield AuditRecord(
            occurred_at=period.occurred_at,
            kind="event",
            model="subscriptions.subscription",
            model_name=str(period.subscription._meta.verbose_name),
            object_id=str(period.subscription_id),
            object_repr=str(period.subscription),
            action="Period invoiced",
            actor=period.actor_name or "system",
            via="",
            reason="",
            changes={
                "period_start": period.period_start_at.isoformat(),
                "period_end": period.period_end_at.isoformat(),
                "invoice": (
                    "none (nothing to bill)"
                    if period.invoice is None
                    else period.invoice.number or f"draft #{period.invoice_id}"
                ),
            },
            record_id=period.pk,
        )


def audit_trail(filters: AuditFilter | None = None, *, limit: int | None = None) -> list[AuditRecord]:
    """The trail, newest first; `limit` caps the rows read from each source (and the result)."""
    filters = filters or AuditFilter()
    records = [*_log_entries(filters, limit), *_domain_events(filters, limit), *_invoiced_periods(filters, limit)]
    records.sort(key=lambda record: (record.occurred_at, record.kind == "change", record.record_id), reverse=True)
    return records[:limit] if limit else records
