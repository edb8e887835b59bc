"""Who is acting, and why: the context that every audit log entry is stamped with.

A change is made by someone: a staff user in the admin, an integrator through the API (a token, a
session or an API key), or the product itself (the billing run, a test clock advance, a Celery task).
The request middleware and the Celery hooks (`apps.audit`) set the actor here; services that have a
reason (a void reason, a cancellation reason) add it with `audit_reason`. The audit trail reads it
when it writes an entry; nothing here decides anything about the business.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from functools import wraps
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class AuditContext:
    request: Any = None  # the HttpRequest being served; its user is read when an entry is written
    system_actor: str = ""  # "billing run", "test clock", … when the product acts by itself
    user: Any = None  # the `actor` a service was called with, when no request tells who acts
    reason: str = ""


_context: ContextVar[AuditContext] = ContextVar("audit_context", default=AuditContext())  # noqa: B039


def audit_context() -> AuditContext:
    return _context.get()


@contextmanager
def _with(**changes: Any) -> Iterator[AuditContext]:
    token = _context.set(replace(_context.get(), **changes))
    try:
        yield _context.get()
    finally:
        _context.reset(token)


def audit_request(request: Any) -> Any:
    """The changes made while serving `request` are made by its user (resolved when written, so that
    the API's token and API-key authentication, which happen inside the view, are seen)."""
    return _with(request=request)


def audit_system_actor(name: str) -> Any:
    """The product acting by itself (e.g. "billing run"); a user who started it stays the actor."""
    return _with(system_actor=name)


def audit_reason(reason: str) -> Any:
    return _with(reason=reason or _context.get().reason)


def audited_with_reason(function: Callable[P, R]) -> Callable[P, R]:
    """For services taking a keyword `reason` (and `actor`): the changes they make carry both in the
    audit trail."""

    @wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        actor = kwargs.get("actor")
        user = actor if getattr(actor, "is_authenticated", False) and getattr(actor, "pk", None) else None
        context = _context.get()
        with _with(reason=str(kwargs.get("reason") or "") or context.reason, user=user or context.user):
            return function(*args, **kwargs)

    return wrapper


def audited_as(system_actor: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """For services that act as a named part of the product (e.g. "billing run", "test clock")."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with audit_system_actor(system_actor):
                return function(*args, **kwargs)

        return wrapper

    return decorate
