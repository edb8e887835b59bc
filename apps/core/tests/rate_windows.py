"""For tests of the fixed-window rate limits: start well inside a window, so that a test's few
requests never straddle two windows (which would reset the count and pass a request meant to be
refused)."""

import time

# Every period the tests use (a minute, 15 minutes, an hour) ends on a whole minute.
MARGIN_SECONDS = 5


def wait_for_a_fresh_window() -> None:
    """Sleep past the next whole minute when fewer than MARGIN_SECONDS of the current one are left."""
    left = 60 - time.time() % 60
    if left < MARGIN_SECONDS:
        time.sleep(left + 0.05)
