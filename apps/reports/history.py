"""A subscription's history as stretches of constant MRR: pure, over plain values (no ORM).

The caller replays the subscription's events into `StateChange`s (what the subscription was billed
at from a moment on) and passes its pauses and recurring discounts; `mrr_stretches` cuts its life
into half-open stretches `[start, end)` during which nothing that MRR depends on changed.
"""

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class BilledState:
    plan_id: int
    version_id: int
    quantity: int


@dataclass(frozen=True)
class StateChange:
    at: datetime
    state: BilledState


@dataclass(frozen=True)
class Window:
    """Something in force over `[start, end)` (`end` None: still in force)."""

    start: datetime
    end: datetime | None
    key: Hashable = None

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment and (self.end is None or moment < self.end)


@dataclass(frozen=True)
class Stretch:
    start: datetime
    end: datetime | None
    state: BilledState
    discount_keys: tuple[Hashable, ...]
    custom_price_keys: tuple[Hashable, ...] = ()


def mrr_stretches(
    *,
    begins_at: datetime,
    ends_at: datetime | None,
    initial: BilledState,
    changes: Sequence[StateChange],
    pauses: Sequence[Window] = (),
    discounts: Sequence[Window] = (),
    custom_prices: Sequence[Window] = (),
) -> list[Stretch]:
    """Stretches of `[begins_at, ends_at)` (the paid life of the subscription: from the end of its
    trial to its end) outside pauses, each with the billed state in force and the keys of the
    discounts and of the subscription's custom prices in force (in the order given), adjacent
    stretches with the same state, discounts and custom prices merged."""
    if ends_at is not None and ends_at <= begins_at:
        return []
    ordered = sorted(changes, key=lambda change: change.at)
    cuts = {begins_at}
    cuts.update(change.at for change in ordered)
    for window in (*pauses, *discounts, *custom_prices):
        cuts.add(window.start)
        if window.end is not None:
            cuts.add(window.end)
    bounds = sorted(cut for cut in cuts if cut >= begins_at and (ends_at is None or cut < ends_at))
    stretches: list[Stretch] = []
    for index, start in enumerate(bounds):
        end = bounds[index + 1] if index + 1 < len(bounds) else ends_at
        if any(pause.contains(start) for pause in pauses):
            continue
        state = initial
        for change in ordered:
            if change.at <= start:
                state = change.state
        keys = tuple(window.key for window in discounts if window.contains(start))
        prices = tuple(window.key for window in custom_prices if window.contains(start))
        previous = stretches[-1] if stretches else None
        if (
            previous is not None
            and previous.end == start
            and (previous.state, previous.discount_keys, previous.custom_price_keys) == (state, keys, prices)
        ):
            stretches[-1] = Stretch(previous.start, end, state, keys, prices)
        else:
            stretches.append(Stretch(start, end, state, keys, prices))
    return stretches
