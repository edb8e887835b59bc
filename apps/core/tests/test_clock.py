from datetime import datetime

import pytest

from apps.core import clock
from apps.subscriptions.periods import utc


def test_frozen_clock_returns_the_moment_and_restores_afterwards():
    with clock.frozen_at(utc(2030, 5, 1)):
        assert clock.now() == utc(2030, 5, 1)
        with clock.frozen_at(utc(2031, 1, 1)):
            assert clock.now() == utc(2031, 1, 1)
        assert clock.now() == utc(2030, 5, 1)
    assert clock.now() > utc(2026, 1, 1)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="naive"):
        with clock.frozen_at(datetime(2030, 1, 1)):
            pass
