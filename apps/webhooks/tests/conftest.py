"""A real HTTP receiver on a free port of 127.0.0.1, scripted per test: answer codes in turn, or hang."""

import json
import threading
import time
from collections.abc import Iterator
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
    script: list[int | str] = field(default_factory=list)  # status codes, or "hang" (no answer in time)
    requests: list[dict] = field(default_factory=list)
    hang_seconds: float = 2.0

    def answer(self, headers: dict[str, str], body: bytes) -> int | str:
        verified = bool(self.secret) and signature_verify(
            secret=self.secret, header=headers.get(SIGNATURE_HEADER, ""), body=body
        )
        self.requests.append({"headers": headers, "body": json.loads(body), "verified": verified})
        if self.secret and not verified:
            return 400  # a receiver refuses what it cannot verify
        return self.script.pop(0) if self.script else 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            outcome = state.answer(dict(self.headers.items()), body)
            if outcome == "hang":
                time.sleep(state.hang_seconds)
                outcome = 200
            self.send_response(int(outcome))
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(f"answered {outcome}".encode())

        def log_message(self, format: str, *args) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def outbox_started(db) -> None:
    """Webhooks start from the events that exist when a source is first read: read them all once."""
    assert event_sources(), "no event source registered"
    webhook_events_collect()
