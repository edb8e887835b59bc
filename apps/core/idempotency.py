"""`Idempotency-Key` support for mutating API endpoints.

A client that may retry a POST (timeouts, lost connections) sends a unique `Idempotency-Key` header.
The first successful response is stored per (user, key) with a fingerprint of the request
(method, path, body). A replay with the same key and the same request gets the stored status and
body back without the work being done again; the same key on a different request is refused with
409 `idempotency_key_reused`.

Only successful (2xx) responses are stored. A request that fails (validation, invalid transition)
writes nothing, so the client may fix it and send it again under the same key.

Two modes:
- atomic (default): the record and the work commit in one transaction. A concurrent request with
  the same key waits on the unique constraint and then replays the stored response.
- `atomic=False`, for work that manages its own transactions (a billing run commits subscription by
  subscription): the key is reserved and committed first; a concurrent request with the same key gets
  409 `idempotency_request_in_progress`; if the work fails, the reservation is released.
"""

import hashlib
import json
from collections.abc import Callable
from functools import wraps

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.errors import Conflict, ValidationFailed
from apps.core.models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255


def request_fingerprint(request: Request) -> str:
    """SHA-256 of what makes a request the same request: method, full path and (parsed) body."""
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    payload = "\n".join([request.method or "", request.get_full_path(), body])
    return hashlib.sha256(payload.encode()).hexdigest()


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValidationFailed(
            gettext("The %(header)s header must be 1 to %(max_key_length)s characters.")
            % {"header": HEADER, "max_key_length": MAX_KEY_LENGTH},
            fields={HEADER: [gettext("Give 1 to %(max_key_length)s characters.") % {"max_key_length": MAX_KEY_LENGTH}]},
        )
    return key


def _replay(record: IdempotencyRecord, fingerprint: str) -> Response:
    if record.request_fingerprint != fingerprint:
        raise Conflict(
            gettext("This %(header)s was already used for a different request.") % {"header": HEADER},
            code="idempotency_key_reused",
            fields={HEADER: [gettext("Use a new key for a new request.")]},
        )
    if record.response_status is None:
        raise Conflict(
            gettext("A request with this %(header)s is still being processed; retry later.") % {"header": HEADER},
            code="idempotency_request_in_progress",
        )
    return Response(record.response_body, status=record.response_status, headers={REPLAY_HEADER: "true"})


def _store(record: IdempotencyRecord, response: Response) -> None:
    record.response_status = response.status_code
    record.response_body = response.data
    record.completed_at = timezone.now()
    record.save(update_fields=["response_status", "response_body", "completed_at"])


def _reserve(request: Request, key: str, fingerprint: str) -> IdempotencyRecord | None:
    """Insert the record for (user, key); None when it already exists (a replay or a reuse)."""
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(user=request.user, key=key, request_fingerprint=fingerprint)
    except IntegrityError:
        return None


def _existing(request: Request, key: str) -> IdempotencyRecord:
    return IdempotencyRecord.objects.get(user=request.user, key=key)


def idempotent(view_method: Callable | None = None, *, atomic: bool = True):
    """Decorate a viewset method (create or a POST @action) to honour the `Idempotency-Key` header.

    Apply it under `@action` / `@extend_schema`. The OpenAPI header parameter is added by
    `apps.core.api.schema.AutoSchema` for every method marked this way.
    """

    def decorate(method: Callable) -> Callable:
        @wraps(method)
        def wrapper(self, request: Request, *args, **kwargs) -> Response:
            key = _idempotency_key(request)
            if key is None:
                return method(self, request, *args, **kwargs)
            fingerprint = request_fingerprint(request)
            if atomic:
                return _run_atomic(method, self, request, key, fingerprint, args, kwargs)
            return _run_reserved(method, self, request, key, fingerprint, args, kwargs)

        wrapper.idempotent = True  # read by the schema generator
        return wrapper

    return decorate(view_method) if view_method is not None else decorate


def _run_atomic(method, view, request, key, fingerprint, args, kwargs) -> Response:
    with transaction.atomic():
        record = _reserve(request, key, fingerprint)
        if record is None:
            return _replay(_existing(request, key), fingerprint)
        response = method(view, request, *args, **kwargs)
        if not response.status_code < 300:
            transaction.set_rollback(True)
            return response
        _store(record, response)
        return response


def _run_reserved(method, view, request, key, fingerprint, args, kwargs) -> Response:
    record = _reserve(request, key, fingerprint)
    if record is None:
        return _replay(_existing(request, key), fingerprint)
    try:
        response = method(view, request, *args, **kwargs)
    except BaseException:
        record.delete()
        raise
    if response.status_code < 300:
        _store(record, response)
    else:
        record.delete()
    return response
