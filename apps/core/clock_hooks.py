"""Moments of other apps on a test clock.

Advancing a test clock (`apps.billing.services.simulated_clocks.simulated_clock_advance`) runs, in order and at
the moment each falls due, everything that would have happened to the clock's customers. Billing is
built in; an app that acts at moments of its own (dunning: reminders, payment retries, end actions)
registers a hook here instead of being imported by `invoices`:

- `next_moment(test_clock_id, after, until)` returns the earliest moment in `(after, until]` (`after`
  is None for "at or before `until`") at which the app has something to do for the clock's customers,
  or None;
- `run(test_clock_id, moment)` does it, as its periodic task would have at that moment (the clock is
  frozen at `moment` while it runs).

At each moment, billing runs first, then the hooks in the order they were registered. Register from
an `AppConfig.ready()`; registering a name twice replaces the hook (module reloads in tests).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

NextMoment = Callable[[int, datetime | None, datetime], datetime | None]
Run = Callable[[int, datetime], None]


@dataclass(frozen=True)
class SimulatedClockHook:
    name: str
    next_moment: NextMoment
    run: Run


_hooks: dict[str, SimulatedClockHook] = {}


def simulated_clock_hook_register(*, name: str, next_moment: NextMoment, run: Run) -> None:
    _hooks[name] = SimulatedClockHook(name=name, next_moment=next_moment, run=run)


def simulated_clock_hook_unregister(*, name: str) -> None:
    _hooks.pop(name, None)


def simulated_clock_hooks() -> list[SimulatedClockHook]:
    return list(_hooks.values())
