"""The client's address, read the same way everywhere (the API's rate limits, the login lockout)."""

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str | None:
    """The address of the client that sent the request. Behind `API_NUM_PROXIES` proxies that append
    to X-Forwarded-For, it is the address the outermost of them saw (what a client cannot forge);
    with none, REMOTE_ADDR. The same rule as the API's rate limits (DRF's `NUM_PROXIES`)."""
    remote_addr = request.META.get("REMOTE_ADDR")
    num_proxies = settings.REST_FRAMEWORK.get("NUM_PROXIES") or 0
    forwarded_for = request.META.get("HTTP_X_FORWARDED_FOR")
    if num_proxies <= 0 or not forwarded_for:
        return remote_addr
    addresses = [address.strip() for address in forwarded_for.split(",")]
    return addresses[-min(num_proxies, len(addresses))] or remote_addr
