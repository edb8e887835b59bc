"""A proxy in front of localstripe that loses the answer to a request after Stripe acted on it.

The request reaches localstripe whole (so the charge happens); the client then gets no answer:
`drop` closes the connection at once, `stall` says nothing until the client gives up on its own
timeout. The proxy listens on a free port of 127.0.0.1 and stops with its context manager.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Forwarded:
    method: str
    path: str
    idempotency_key: str | None
    answered: bool


@dataclass
class FlakyProxy:
    upstream: str
    lose: str = "drop"  # or "stall"
    lose_path_prefix: str = "/v1/payment_intents"
    answers_to_lose: int = 1
    forwarded: list[Forwarded] = field(default_factory=list)
    url: str = ""

    def requests_to(self, path_prefix: str) -> list[Forwarded]:
        return [f for f in self.forwarded if f.path.startswith(path_prefix)]


def _handler(proxy: FlakyProxy) -> type[BaseHTTPRequestHandler]:
    upstream = urllib.parse.urlsplit(proxy.upstream)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in {"host", "connection"}}
            connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            connection.close()
            with lock:
                lose = (
                    self.command == "POST"
                    and self.path.startswith(proxy.lose_path_prefix)
                    and proxy.answers_to_lose > 0
                )
                if lose:
                    proxy.answers_to_lose -= 1
                proxy.forwarded.append(
                    Forwarded(self.command, self.path, self.headers.get("Idempotency-Key"), answered=not lose)
                )
            if lose:
                if proxy.lose == "stall":
                    # Say nothing until the client closes the connection (its timeout).
                    with contextlib.suppress(OSError):
                        while self.connection.recv(1024):
                            pass
                self.close_connection = True
                return
            self.send_response(response.status)
            for name, value in response.getheaders():
                if name.lower() not in {"transfer-encoding", "connection", "content-length"}:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = _forward

    return Handler


@contextlib.contextmanager
def flaky_proxy(upstream: str, **options: object) -> Iterator[FlakyProxy]:
    proxy = FlakyProxy(upstream=upstream, **options)  # type: ignore[arg-type]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    server.daemon_threads = True
    host, port = server.server_address[:2]
    proxy.url = f"http://{host}:{port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
