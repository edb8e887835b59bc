"""Request rate limits for the API: per API key on usage ingestion, per user everywhere else, per
client address for anonymous requests. See docs/security.md.

Each limit is a fixed window counter in the cache (`API_THROTTLE_CACHE`): one atomic increment per
request, whatever the rate. A request over the limit gets 429 `throttled` with a `Retry-After` header
(seconds until the window ends). The rates are read from `API_THROTTLE_RATES` on every request
("<count>/<second|minute|hour|day>", or empty for no limit). The counter is `apps.core.rate_limits`,
which the portal's email forms use too.
"""

import math

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from apps.core.network import client_address
from apps.core.rate_limits import rate_limit_hit


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
