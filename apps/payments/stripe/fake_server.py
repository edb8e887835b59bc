"""A local fake Stripe for tests and the demo: localstripe, bound to 127.0.0.1, kept in memory.

localstripe (a dev requirement) listens on every interface, pickles its whole state to
``/tmp/localstripe.pickle`` on every write and lacks three things our code relies on:

* ``GET /v1/account`` — dj-stripe asks for the account before it syncs any object;
* Stripe's ``resource_missing`` error for an unknown object (dj-stripe skips such objects);
* filters on ``GET /v1/payment_intents`` — ``customer`` and ``created[gt|gte|lt|lte]``, which the card
  collection uses to find the PaymentIntent of an attempt whose answer was lost (localstripe refuses
  any filter there);
* ``Idempotency-Key`` — Stripe stores the response of a POST sent with a key and returns it again for
  a retry with the same key and the same parameters (and refuses the key with other parameters).
  Our charges depend on it: a timed-out request is retried with the same key and must not charge
  twice, so the fake server has to behave like Stripe here or the tests would prove nothing.

Run it with ``python -m apps.payments.stripe.fake_server [--port 8420]`` (``make localstripe``);
``--port 0`` picks a free port. The first line printed is ``localstripe listening on <url>``.
This module imports nothing from Django, so the test session can start it as a plain subprocess.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import cast

from aiohttp import web
from aiohttp.typedefs import Middleware

ACCOUNT_ID = "acct_localstripe0001"


async def _account(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "id": ACCOUNT_ID,
            "object": "account",
            "business_profile": {"name": "Local fake Stripe"},
            "business_type": "company",
            "charges_enabled": True,
            "country": "IE",
            "created": 1700000000,
            "default_currency": "eur",
            "details_submitted": True,
            "email": "localstripe@example.com",
            "livemode": False,
            "metadata": {},
            "payouts_enabled": True,
            "settings": {"dashboard": {"display_name": "localstripe", "timezone": "Etc/UTC"}},
            "type": "standard",
        }
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def idempotency_middleware(
    saved: dict[str, tuple[str, int, bytes]],
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """Stripe's idempotent requests: a POST with a known key gets the first response again."""
    in_flight: set[str] = set()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key:
            return await handler(request)
        body = await request.read()
        fingerprint = hashlib.sha256(request.path.encode() + b"\n" + body).hexdigest()
        if key in saved:
            first_fingerprint, status, payload = saved[key]
            if first_fingerprint != fingerprint:
                error = {
                    "error": {
                        "type": "idempotency_error",
                        "message": (
                            "Keys for idempotent requests can only be used with the same parameters they were "
                            f"first used with. Try using a key other than '{key}' if you meant to execute a "
                            "different request."
                        ),
                    }
                }
                return web.json_response(error, status=400)
            return web.Response(
                body=payload,
                status=status,
                content_type="application/json",
                headers={"Idempotency-Key": key, "Idempotent-Replayed": "true"},
            )
        if key in in_flight:  # the same key still being answered: Stripe refuses the second request
            error = {
                "error": {
                    "type": "idempotency_error",
                    "message": "There is currently another in-progress request using this Stripe Idempotency Key.",
                }
            }
            return web.json_response(error, status=409)
        in_flight.add(key)
        try:
            response = await handler(request)
        finally:
            in_flight.discard(key)
        if isinstance(response, web.Response) and response.status < 500:
            payload = response.body if isinstance(response.body, bytes) else b""
            saved[key] = (fingerprint, response.status, payload)
            response.headers["Idempotency-Key"] = key
        return response

    return middleware


@web.middleware
async def not_found_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Stripe's answer for a missing object (`resource_missing`, "No such …"), which clients and
    dj-stripe recognise, instead of localstripe's bare "Not Found"."""
    try:
        response = await handler(request)
    except web.HTTPNotFound as not_found:  # no such route: a resource localstripe does not know (disputes)
        response = not_found
    parts = request.path.strip("/").split("/")
    if response.status == 404 and len(parts) >= 3 and parts[0] == "v1":
        resource, object_id = parts[1].rstrip("s").replace("_", " "), parts[2]
        error = {
            "error": {
                "code": "resource_missing",
                "message": f"No such {resource}: '{object_id}'",
                "param": "id",
                "type": "invalid_request_error",
            }
        }
        return web.json_response(error, status=404)
    return response


async def _forget_idempotency_keys(request: web.Request) -> web.Response:
    request.app[SAVED_RESPONSES].clear()
    return web.Response()


SAVED_RESPONSES = web.AppKey("saved_responses", dict)
CREATED_FILTERS = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__}


def _payment_intents_filterable() -> None:
    """``GET /v1/payment_intents?customer=…&created[gte]=…`` as Stripe answers it: the customer's
    PaymentIntents created in that range, newest first (localstripe refuses any filter there)."""
    from localstripe import resources

    plain = resources.PaymentIntent._api_list_all.__func__

    def _api_list_all(cls, url, customer=None, created=None, limit=None, starting_after=None, **kwargs):  # type: ignore[no-untyped-def]
        if created is not None and (
            not isinstance(created, dict)
            or set(created) - set(CREATED_FILTERS)
            or not all(str(v).isdigit() for v in created.values())
        ):
            raise resources.UserError(400, "Bad request: created takes gt, gte, lt or lte with a timestamp")
        page = plain(cls, url, limit=limit, starting_after=starting_after, **kwargs)
        if customer is not None:
            page._list = [intent for intent in page._list if intent.customer == customer]
        for operator, value in (created or {}).items():
            page._list = [intent for intent in page._list if CREATED_FILTERS[operator](intent.created, int(value))]
        page._list.sort(key=lambda intent: intent.created, reverse=True)
        return page

    resources.PaymentIntent._api_list_all = classmethod(_api_list_all)  # type: ignore[arg-type]


def build_app() -> web.Application:
    """localstripe's application, with its disk dump off, ``GET /v1/account`` and idempotent POSTs."""
    from localstripe import resources, server

    # Keep the state in memory only: no pickle in /tmp shared by every process on the machine.
    resources.Store.dump_to_disk = lambda self: None
    _payment_intents_filterable()
    app: web.Application = server.app
    saved: dict[str, tuple[str, int, bytes]] = {}
    app[SAVED_RESPONSES] = saved
    app.router.add_get("/v1/account", _account)
    # Tests start each case from nothing: `DELETE /_config/data` (localstripe's) empties the objects,
    # this one the saved idempotent responses.
    app.router.add_delete("/_config/idempotency_keys", _forget_idempotency_keys)
    app.middlewares.insert(0, cast(Middleware, not_found_middleware))
    app.middlewares.insert(0, cast(Middleware, idempotency_middleware(saved)))
    return app


def bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)  # connections wait in the backlog until the server accepts them
    return sock


@contextlib.contextmanager
def running(port: int = 0) -> Iterator[str]:
    """Start the fake server in a subprocess on a free port of 127.0.0.1; yields its base URL and
    stops it on exit (used by the test session)."""
    process = subprocess.Popen(  # noqa: S603 - our own module, run by the current interpreter
        [sys.executable, "-m", "apps.payments.stripe.fake_server", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=str(Path(__file__).resolve().parents[3]),
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("localstripe listening on "):
            raise RuntimeError(f"localstripe did not start (exit code {process.poll()}): {line!r}")
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=8420, help="0 picks a free port (default 8420)")
    args = parser.parse_args(argv)
    sock = bind(args.port)
    app = build_app()
    host, port = sock.getsockname()[:2]
    print(f"localstripe listening on http://{host}:{port}", flush=True)
    web.run_app(app, sock=sock, print=None, access_log=None, handle_signals=True)


if __name__ == "__main__":
    main(sys.argv[1:])
