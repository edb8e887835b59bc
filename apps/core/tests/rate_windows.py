"""For tests of the fixed-window rate limits: run inside one window, so that a test's few requests
never straddle two windows (which would reset the count and pass a request meant to be refused)."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from apps.core import clock


@contextmanager
def inside_one_window() -> Iterator[datetime]:
    """Freeze the project clock half a minute into the current minute: every period the tests use (a
    minute, 15 minutes, an hour) ends on a whole minute, so all the test's requests count in one window."""
    with clock.frozen_at(clock.now().replace(second=30, microsecond=0)) as moment:
        yield moment
