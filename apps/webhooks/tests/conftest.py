"""A real HTTP receiver on a free port of 127.0.0.1, scripted per test: answer codes in turn, or hang.

Webhooks go to public addresses over https only (apps/webhooks/egress.py); the receiver's tests let
plain http and 127.0.0.1 through with the two settings made for that (`WEBHOOK_ALLOW_HTTP`,
`WEBHOOK_ALLOWED_PRIVATE_NETWORKS`), not by switching the check off.
"""

import json
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.core.outbox import event_sources
from apps.webhooks.constants import SIGNATURE_HEADER
from apps.webhooks.services import webhook_events_collect
from apps.webhooks.signing import signature_verify


@dataclass
class Receiver:
    url: str
    secret: str = ""
    # Status codes in turn, or "hang" (no answer in time); a 3xx points at `location`.
    script: list[int | str] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)
    hang_seconds: float = 2.0
    location: str = ""
    answer_body: bytes = b""  # instead of "answered <status>"
    tls_server_names: list[str | None] = field(default_factory=list)  # SNI of each TLS handshake

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> int | str:
        verified = bool(self.secret) and signature_verify(
            secret=self.secret, header=headers.get(SIGNATURE_HEADER, ""), body=body
        )
        self.requests.append(
            {"method": method, "path": path, "headers": headers, "body": json.loads(body) if body else None,
             "verified": verified}
        )  # fmt: skip
        if self.secret and not verified:
            return 400  # a receiver refuses what it cannot verify
        return self.script.pop(0) if self.script else 200


@contextmanager
def _serve(state: Receiver, *, tls: ssl.SSLContext | None = None) -> Iterator[ThreadingHTTPServer]:
    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            outcome = state.answer(self.command, self.path, dict(self.headers.items()), body)
            if outcome == "hang":
                time.sleep(state.hang_seconds)
                outcome = 200
            self.send_response(int(outcome))
            self.send_header("Content-Type", "text/plain")
            if 300 <= int(outcome) < 400:
                self.send_header("Location", state.location)
            self.end_headers()
            self.wfile.write(state.answer_body or f"answered {outcome}".encode())

        do_POST = do_GET = _handle  # noqa: N815 - the http.server API

        def log_message(self, format: str, *args) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls is not None:
        tls.sni_callback = lambda sock, server_name, context: state.tls_server_names.append(server_name)
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def allow_local_receivers(settings) -> None:
    """The two settings made for local receivers: plain http, and 127.0.0.1 let through."""
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.1/32"]


@pytest.fixture
def receiver(allow_local_receivers) -> Iterator[Receiver]:
    state = Receiver(url="")
    with _serve(state) as server:
        state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
        yield state


@pytest.fixture
def other_receiver(allow_local_receivers) -> Iterator[Receiver]:
    """A second receiver (where a redirect would lead)."""
    state = Receiver(url="")
    with _serve(state) as server:
        state.url = f"http://127.0.0.1:{server.server_address[1]}/elsewhere"
        yield state


@pytest.fixture
def tls_certificate(tmp_path) -> tuple[str, str]:
    """A self-signed certificate (and its key) for the host name `hooks.test`."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    certificate, key = tmp_path / "hooks.test.pem", tmp_path / "hooks.test.key"
    subprocess.run(  # noqa: S603
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",  # noqa: S607
         "-days", "2", "-subj", "/CN=hooks.test", "-addext", "subjectAltName=DNS:hooks.test",
         "-keyout", str(key), "-out", str(certificate)],
        check=True, capture_output=True,
    )  # fmt: skip
    return str(certificate), str(key)


@pytest.fixture
def tls_receiver(allow_local_receivers, tls_certificate) -> Iterator[Receiver]:
    """An https receiver on 127.0.0.1 whose certificate is valid for `hooks.test` only."""
    certificate, key = tls_certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    state = Receiver(url="")
    with _serve(state, tls=context) as server:
        state.url = f"https://hooks.test:{server.server_address[1]}/hooks"
        yield state


@pytest.fixture
def outbox_started(db) -> None:
    """Webhooks start from the events that exist when a source is first read: read them all once."""
    assert event_sources(), "no event source registered"
    webhook_events_collect()
