from apps.accounts.models import ApiKey
from apps.core.api.throttling import FixedWindowThrottle


class ApiKeyRateThrottle(FixedWindowThrottle):
    """Usage ingestion: requests per API key (`API_THROTTLE_RATES["api_key"]`), whoever sends them."""

    scope = "api_key"

    def get_ident_key(self, request, view) -> str | None:
        return str(request.auth.pk) if isinstance(request.auth, ApiKey) else None
