from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from apps.core.audit import audit_request


class AuditMiddleware:
    """Changes made while serving a request are made by its user (see `apps.audit.registration`)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with audit_request(request):
            return self.get_response(request)
