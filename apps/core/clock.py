"""The one clock of the product.

Every service asks this module for the time, so tests and staff can run the product at any moment
(`frozen_at`) without patching. Returned datetimes are aware and in UTC.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from django.utils import timezone

_frozen_at: ContextVar[datetime | None] = ContextVar("frozen_at", default=None)


def now() -> datetime:
    """The current time: the frozen moment when one is set, else the wall clock (UTC)."""
    frozen = _frozen_at.get()
    if frozen is not None:
        return frozen
    return timezone.now()


def ensure_aware(moment: datetime) -> datetime:
    """Return `moment` in UTC; refuse naive datetimes rather than guess their zone."""
    if timezone.is_naive(moment):
        raise ValueError(f"naive datetime {moment!r}: the billing clock only takes aware datetimes")
    return moment.astimezone(UTC)


@contextmanager
def frozen_at(moment: datetime) -> Iterator[datetime]:
    """Run the enclosed code as if it were `moment` (used by tests, demo data and test clocks)."""
    moment = ensure_aware(moment)
    token = _frozen_at.set(moment)
    try:
        yield moment
    finally:
        _frozen_at.reset(token)
