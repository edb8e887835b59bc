"""Fixed-window rate limits, counted in the cache (`API_THROTTLE_CACHE`): one atomic increment per
hit, whatever the rate. Windows are read off the project clock (`apps.core.clock`), so a test runs
inside one window by freezing the clock instead of waiting for a fresh one.

Rates are "<count>/<[n]second|minute|hour|day>" (e.g. "600/minute", "3/15minute"), or empty for no
limit. A cache that cannot be reached lets requests through (and logs it): the rate limit protects
the service, it must not take the service down with it.
"""

import logging

from django.conf import settings
from django.core.cache import caches

from apps.core import clock

logger = logging.getLogger(__name__)

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """ "600/min" → (600, 60); "3/15minute" → (3, 900); None or "" → None (no limit)."""
    if not rate:
        return None
    count, _, period = rate.partition("/")
    period = period.strip().lower()
    digits = len(period) - len(period.lstrip("0123456789"))
    try:
        multiple = int(period[:digits]) if digits else 1
        seconds = _PERIODS[period[digits : digits + 1]]
        if multiple < 1:
            raise ValueError(period)
        return int(count), multiple * seconds
    except (KeyError, ValueError) as exc:
        raise ValueError(f"Bad throttle rate {rate!r}: use <count>/<[n]second|minute|hour|day>.") from exc


def rate_limit_hit(*, scope: str, ident: str, rate: str | None) -> float | None:
    """Count one request of `ident` in `scope` against `rate`: None while within it, else the seconds
    until its window ends. A cache that cannot be reached counts nothing (None, logged)."""
    limit = parse_rate(rate)
    if limit is None:
        return None
    count_allowed, period = limit
    now = clock.now().timestamp()
    window = int(now // period)
    key = f"throttle:{scope}:{ident}:{period}:{window}"
    cache = caches[settings.API_THROTTLE_CACHE]
    try:
        # add() is a no-op when the key exists; incr() is atomic (Redis INCR, locked in memory).
        cache.add(key, 0, timeout=period + 1)
        count = cache.incr(key)
    except ValueError:  # the key expired between add() and incr(): a new window
        count = 1
    except Exception:  # noqa: BLE001 - an unreachable cache must not refuse requests
        logger.warning("rate limit cache unavailable; %s request let through", scope, exc_info=True)
        return None
    if count <= count_allowed:
        return None
    return (window + 1) * period - now
