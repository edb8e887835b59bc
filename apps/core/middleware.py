"""Request limits applied before any view runs."""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse


class ApiRequestSizeLimitMiddleware:
    """Refuse an API request whose body is larger than `API_MAX_REQUEST_BYTES` with 413 and the API's
    error shape, before anything reads it. (Django's `DATA_UPLOAD_MAX_MEMORY_SIZE` guards form posts
    and `request.body`; DRF's parsers read the stream directly and are not covered by it.)"""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/"):
            limit = settings.API_MAX_REQUEST_BYTES
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if limit and length > limit:
                return JsonResponse(
                    {
                        "code": "request_too_large",
                        "message": f"The request body is {length:,} bytes; the limit is {limit:,} bytes.",
                        "fields": {},
                    },
                    status=413,
                )
        return self.get_response(request)
