"""The address of the client that sent a request, read the same way everywhere: the API's rate
limits, the portal's email limits and the login lockout.

Behind proxies that append to `X-Forwarded-For`, `API_NUM_PROXIES` (DRF's `NUM_PROXIES`) says how
many: the client's own address is the one that many entries from the end. With 0 (the default) the
header is ignored, since any client can write it, and the address is `REMOTE_ADDR`.
"""

from django.http import HttpRequest
from rest_framework.settings import api_settings


def client_address(request: HttpRequest) -> str:
    """The client's address (DRF's rule, so that the API and the pages count the same client)."""
    meta = request.META
    remote_addr = meta.get("REMOTE_ADDR") or ""
    forwarded = meta.get("HTTP_X_FORWARDED_FOR")
    num_proxies = api_settings.NUM_PROXIES
    if num_proxies is not None:
        if num_proxies == 0 or not forwarded:
            return remote_addr
        addresses = forwarded.split(",")
        return addresses[-min(num_proxies, len(addresses))].strip()
    return "".join(forwarded.split()) if forwarded else remote_addr
