"""Request rate limits for the API: per API key on usage ingestion, per user everywhere else, per
client address for anonymous requests. See docs/security.md.

Each limit is a fixed window counter in the cache (`API_THROTTLE_CACHE`): one atomic increment per
request, whatever the rate. A request over the limit gets 429 `throttled` with a `Retry-After` header
(seconds until the window ends). The rates are read from `API_THROTTLE_RATES` on every request
("<count>/<second|minute|hour|day>", or empty for no limit). `rate_limit_hit` is the same counter for
other callers (the portal's email forms).

A cache that cannot be reached lets requests through (and logs it): the rate limit protects the
service, it must not take the service down with it.
"""

import logging
import math
import time

from django.conf import settings
from django.core.cache import caches
from rest_framework.throttling import BaseThrottle

from apps.core.network import client_address

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
    now = time.time()
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


class FixedWindowThrottle(BaseThrottle):
    scope = ""

    def __init__(self) -> None:
        self._wait: float | None = None

    def get_ident_key(self, request, view) -> str | None:
        """Who is counted; None: not this throttle's caller."""
        raise NotImplementedError

    def allow_request(self, request, view) -> bool:
        rate = settings.API_THROTTLE_RATES.get(self.scope)
        if not rate:
            return True
        ident = self.get_ident_key(request, view)
        if ident is None:
            return True
        self._wait = rate_limit_hit(scope=self.scope, ident=ident, rate=rate)
        return self._wait is None

    def get_ident(self, request) -> str:
        return client_address(request)

    def wait(self) -> float | None:
        return math.ceil(self._wait) if self._wait is not None else None


class UserRateThrottle(FixedWindowThrottle):
    """Staff API: per signed-in user (`API_THROTTLE_RATES["user"]`)."""

    scope = "user"

    def get_ident_key(self, request, view) -> str | None:
        user = request.user
        if user is None or not user.is_authenticated or getattr(user, "pk", None) is None:
            return None
        return str(user.pk)


class AnonRateThrottle(FixedWindowThrottle):
    """Anonymous requests (the schema, the docs, failed logins): per client address
    (`API_THROTTLE_RATES["anon"]`)."""

    scope = "anon"

    def get_ident_key(self, request, view) -> str | None:
        if request.user is not None and request.user.is_authenticated:
            return None
        return self.get_ident(request)
