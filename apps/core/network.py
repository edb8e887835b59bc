"""The address of the client that sent a request, read the same way everywhere: the API's rate
limits, the portal's email limits and the login lockout.

Behind proxies that append to `X-Forwarded-For`, `API_NUM_PROXIES` (DRF's `NUM_PROXIES`) says how
many: the client's own address is the one that many entries from the end. With 0 (the default) the
header is ignored, since any client can write it, and the address is `REMOTE_ADDR`.

Some proxies write the address with its port (`1.2.3.4:5678`, `[2001:db8::1]:443`): the port and the
brackets are dropped. Anything that is still not an IP address is not used (the login lockout stores
the address in an `inet` column): the address is then `REMOTE_ADDR`, the proxy's.
"""

import ipaddress

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
        candidate = addresses[-min(num_proxies, len(addresses))]
    elif forwarded:
        candidate = "".join(forwarded.split())
    else:
        return remote_addr
    return ip_address_or_none(candidate) or remote_addr


def ip_address_or_none(value: str) -> str | None:
    """`value` as an IP address without a port or brackets (`[::1]:443` → `::1`), or None if it is not one."""
    value = value.strip()
    if value.startswith("["):  # [IPv6] or [IPv6]:port
        value, closed, port = value[1:].partition("]")
        if not closed or (port and not (port.startswith(":") and port[1:].isdigit())):
            return None
    elif value.count(":") == 1:  # IPv4:port (an IPv6 address has two colons at least)
        value, _, port = value.partition(":")
        if not port.isdigit():
            return None
    if "%" in value:  # an IPv6 zone (fe80::1%eth0) is no client's address and does not fit an inet column
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None
