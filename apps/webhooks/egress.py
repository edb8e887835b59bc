"""Where webhooks may go, and sending one request there (docs/audit-and-webhooks.md, "Where webhooks
may go").

- **https only**, unless `WEBHOOK_ALLOW_HTTP` is on (local development and tests).
- **Public addresses only**: the host is resolved, and refused when *any* of its addresses is
  loopback, private, shared (100.64/10), link-local, multicast, reserved, site-local or unspecified,
  IPv4 or IPv6 — an IPv4 address carried inside an IPv6 one (IPv4-mapped, 6to4, NAT64) is judged as
  IPv4. `WEBHOOK_ALLOWED_PRIVATE_NETWORKS` (empty by default) lets chosen networks through, e.g. a
  test receiver on 127.0.0.1.
- **No DNS rebinding**: at every send the host is resolved once, the addresses are checked, and the
  socket connects to those very addresses; the name is never looked up again, so a DNS answer that
  changes between the check and the connection cannot move the request. The request still names the
  host: in its Host header and, over https, as the TLS server name (SNI) whose certificate must be
  valid for it.
- **No redirects**: a 3xx is an answer like any other, recorded (and a failed attempt).
- **Bounded, generic records**: the answer's status and at most `RESPONSE_EXCERPT_CHARS` of its body;
  an error is one of a few classes (`constants.ERROR_*`), never the socket's text.

Requests go straight to the receiver: proxy variables (`HTTPS_PROXY`) are not used, since a proxy would
resolve the host again.
"""

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from typing import cast
from urllib.parse import quote, urlsplit

from django.conf import settings

from .constants import (
    ERROR_ADDRESS_NOT_ALLOWED,
    ERROR_CONNECTION_FAILED,
    ERROR_CONNECTION_REFUSED,
    ERROR_HOST_NOT_FOUND,
    ERROR_NOT_HTTP,
    ERROR_REDIRECT_NOT_FOLLOWED,
    ERROR_SCHEME_NOT_ALLOWED,
    ERROR_TIMEOUT,
    ERROR_TLS,
    RESPONSE_EXCERPT_CHARS,
)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
SocketAddress = tuple[str, int] | tuple[str, int, int, int]

URL_SCHEME_MESSAGE = "Use an https:// URL: webhooks are sent over TLS only."
URL_ADDRESS_MESSAGE = (
    "This host is, or resolves to, a loopback, private, link-local, multicast, reserved or unspecified "
    "address: webhooks are sent to public addresses only."
)

# IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64, RFC 6052 and RFC 8215).
_NAT64_NETWORKS = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
# Bytes read from an answer's body: enough for RESPONSE_EXCERPT_CHARS characters of UTF-8.
_EXCERPT_BYTES = RESPONSE_EXCERPT_CHARS * 4


# --- Addresses -------------------------------------------------------------------------------------


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in network for network in _NAT64_NETWORKS):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _is_public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def allowed_private_networks() -> list[Network]:
    """`WEBHOOK_ALLOWED_PRIVATE_NETWORKS` as networks ("127.0.0.1/32", "10.1.0.0/16", "::1/128")."""
    return [ipaddress.ip_network(item, strict=False) for item in settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS]


def address_allowed(address: Address) -> bool:
    """Whether a webhook may be sent to `address`: a public address, or one in
    `WEBHOOK_ALLOWED_PRIVATE_NETWORKS`. The unspecified address (0.0.0.0, ::) and multicast never are."""
    if isinstance(address, ipaddress.IPv6Address):
        address = ipaddress.IPv6Address(str(address).split("%", 1)[0])  # the zone (fe80::1%eth0) aside
        embedded = _embedded_ipv4(address)
        if embedded is not None and address.ipv4_mapped is not None:
            address = embedded  # ::ffff:a.b.c.d is a.b.c.d
        elif embedded is not None and not address_allowed(embedded):
            return False
    if address.is_unspecified or address.is_multicast:
        return False
    if _is_public(address):
        return True
    return any(address.version == network.version and address in network for network in allowed_private_networks())


# --- Destinations ----------------------------------------------------------------------------------


class DestinationRefused(Exception):
    """The URL may not be sent to; `error` is what the attempt records (a `constants.ERROR_*`)."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass(frozen=True)
class Destination:
    """A URL checked for sending: the host as named, and the addresses it resolved to (all allowed)."""

    scheme: str
    host: str
    port: int
    target: str  # the path and query, as the request line carries them
    addresses: tuple[tuple[socket.AddressFamily, SocketAddress], ...]


def _schemes() -> set[str]:
    return {"https", "http"} if settings.WEBHOOK_ALLOW_HTTP else {"https"}


def destination_resolve(url: str) -> Destination:
    """Check `url` and resolve its host, once; raise `DestinationRefused` when it may not be sent to."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # a port that is not a number, brackets that do not close
        raise DestinationRefused(ERROR_HOST_NOT_FOUND) from exc
    scheme = parts.scheme.lower()
    if scheme not in _schemes():
        raise DestinationRefused(ERROR_SCHEME_NOT_ALLOWED)
    host = parts.hostname or ""
    if not host:
        raise DestinationRefused(ERROR_HOST_NOT_FOUND)
    port = port or (443 if scheme == "https" else 80)
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError, ValueError) as exc:  # not found, or not a host name at all
        raise DestinationRefused(ERROR_HOST_NOT_FOUND) from exc
    addresses: list[tuple[socket.AddressFamily, SocketAddress]] = []
    for family, _, _, _, socket_address in found:
        if family not in (socket.AF_INET, socket.AF_INET6):
            raise DestinationRefused(ERROR_ADDRESS_NOT_ALLOWED)
        if not address_allowed(ipaddress.ip_address(socket_address[0])):
            raise DestinationRefused(ERROR_ADDRESS_NOT_ALLOWED)
        checked = (family, cast("SocketAddress", socket_address))
        if checked not in addresses:
            addresses.append(checked)
    if not addresses:
        raise DestinationRefused(ERROR_HOST_NOT_FOUND)
    target = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    if parts.query:
        target += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    return Destination(scheme=scheme, host=host, port=port, target=target, addresses=tuple(addresses))


def url_problem(url: str) -> str | None:
    """Why an endpoint may not have this URL (a field error), or None. A host that does not resolve
    (yet) is accepted: it is checked again, like every host, at each send."""
    try:
        destination_resolve(url)
    except DestinationRefused as exc:
        if exc.error == ERROR_SCHEME_NOT_ALLOWED:
            return URL_SCHEME_MESSAGE
        if exc.error == ERROR_ADDRESS_NOT_ALLOWED:
            return URL_ADDRESS_MESSAGE
    return None


# --- Sending ---------------------------------------------------------------------------------------


def _connect(addresses: tuple[tuple[socket.AddressFamily, SocketAddress], ...], timeout: float | None) -> socket.socket:
    """A TCP connection to the first of `addresses` that answers (the addresses checked, not the name)."""
    failure: OSError = OSError("no address")
    for family, socket_address in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(socket_address)
        except OSError as exc:
            sock.close()
            failure = exc
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    raise failure


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """http.client's connection to `host` (its Host header), over a socket to a checked address."""

    def __init__(self, destination: Destination, *, timeout: float) -> None:
        super().__init__(destination.host, destination.port, timeout=timeout)
        self.destination = destination

    def connect(self) -> None:
        self.sock = _connect(self.destination.addresses, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """The same over TLS: the server name (SNI) and the certificate check are the host's."""

    def __init__(self, destination: Destination, *, timeout: float) -> None:
        self.tls = ssl.create_default_context()  # certificate and host name checked
        super().__init__(destination.host, destination.port, timeout=timeout, context=self.tls)
        self.destination = destination

    def connect(self) -> None:
        sock = _connect(self.destination.addresses, self.timeout)
        try:
            self.sock = self.tls.wrap_socket(sock, server_hostname=self.destination.host)
        except BaseException:
            sock.close()
            raise


@dataclass(frozen=True)
class Answer:
    """What became of one request: the status (None when none came), an excerpt of the body, and the
    error's class ("" when the receiver answered 2xx, 4xx or 5xx)."""

    status: int | None
    excerpt: str
    error: str


def _excerpt(raw: bytes) -> str:
    # NUL cannot be stored in a PostgreSQL text column; undecodable bytes become U+FFFD.
    return raw.decode(errors="replace").replace("\x00", "\ufffd")[:RESPONSE_EXCERPT_CHARS]


def webhook_post(url: str, *, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    """POST `body` to `url` if it may be sent there (see the module's rules); never raises for the
    network's sake."""
    try:
        destination = destination_resolve(url)
    except DestinationRefused as exc:
        return Answer(None, "", exc.error)
    connection_class = _PinnedHTTPSConnection if destination.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(destination, timeout=timeout)
    try:
        connection.request("POST", destination.target, body=body, headers=headers)
        response = connection.getresponse()
        status = response.status
        excerpt = _excerpt(response.read(_EXCERPT_BYTES))
    except TimeoutError:
        return Answer(None, "", ERROR_TIMEOUT.format(seconds=timeout))
    except ConnectionRefusedError:
        return Answer(None, "", ERROR_CONNECTION_REFUSED)
    except (ssl.SSLError, ssl.CertificateError):
        return Answer(None, "", ERROR_TLS)
    except http.client.HTTPException:
        return Answer(None, "", ERROR_NOT_HTTP)
    except (OSError, ValueError):
        return Answer(None, "", ERROR_CONNECTION_FAILED)
    finally:
        connection.close()
    return Answer(status, excerpt, ERROR_REDIRECT_NOT_FOLLOWED if 300 <= status < 400 else "")
