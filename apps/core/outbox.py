"""Where outgoing webhooks find their events: the domain events each app already records.

An app registers an `EventSource` (in its `AppConfig.ready`): a queryset of the rows that make public
events (e.g. invoice events of the types that customers care about) and a function that turns a batch of
those rows into `OutboxEvent`s, with the payload built by the app itself. The webhooks app reads the
sources, records each event once, and delivers it; no domain app knows about webhooks.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class OutboxEvent:
    source_id: int  # the id of the domain row the event comes from
    type: str  # public event type, e.g. "invoice.finalized"
    occurred_at: datetime
    object_type: str  # "invoice", "customer", …
    object_id: int
    data: dict[str, Any] = field(default_factory=dict)  # the object as it is now, plus the event's details


@dataclass(frozen=True)
class EventSource:
    name: str  # unique, e.g. "invoices.invoiceevent"
    event_types: dict[str, str]  # public type → description (what endpoints can subscribe to)
    queryset: Callable[[], Any]  # rows that make events, with an integer `id`
    build: Callable[[Sequence[Any]], list[OutboxEvent]]  # rows (ordered by id) → events


_sources: dict[str, EventSource] = {}


def event_source_register(source: EventSource) -> None:
    _sources[source.name] = source


def event_sources() -> list[EventSource]:
    return list(_sources.values())


def event_types() -> dict[str, str]:
    types: dict[str, str] = {}
    for source in _sources.values():
        types.update(source.event_types)
    return dict(sorted(types.items()))
