"""Writing domain events (`apps.core.models.DomainEvent`): the part every app's `<entity>_event_record`
shares. The apps keep their own recorders, which name the object and the event types."""

from datetime import datetime
from typing import Any, TypeVar

from . import clock
from .models import DomainEvent

EventT = TypeVar("EventT", bound=DomainEvent)


def acting_user(actor: Any) -> Any:
    """The user an event (or a row's `created_by`) records: a signed-in user, else nobody (an anonymous
    request, the product acting by itself)."""
    return actor if actor is not None and getattr(actor, "is_authenticated", False) else None


def domain_event_record(
    model: type[EventT],
    *,
    actor: Any = None,
    data: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
    **fields: Any,
) -> EventT:
    """Write one event of `model`: `fields` name its object and `type` (and its own extras); it occurred
    now on the clock unless `occurred_at` is given."""
    return model._default_manager.create(
        **fields,
        actor=acting_user(actor),
        data=data or {},
        occurred_at=occurred_at or clock.now(),
    )
