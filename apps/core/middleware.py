"""Request limits and checks applied before any view runs."""

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import BadRequest, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from django.utils import translation
from django.utils.translation import gettext
from django.views import defaults

from apps.core.validation import Part, Unstorable, text_problem, text_storable


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
                # Before LocaleMiddleware: the answer speaks the request's language all the same.
                with translation.override(translation.get_language_from_request(request)):
                    message = gettext("The request body is %(length)s bytes; the limit is %(limit)s bytes.") % {
                        "length": f"{length:,}",
                        "limit": f"{limit:,}",
                    }
                return JsonResponse(
                    {
                        "code": "request_too_large",
                        "message": message,
                        "fields": {},
                    },
                    status=413,
                )
        return self.get_response(request)


class UnstorableTextMiddleware:
    """Refuse a request whose path, query string, form fields or cookies hold text no database can
    store — the NUL character, unpaired surrogates — with 400, before any view, filter or session
    lookup puts it into a query (PostgreSQL answers such a query with an error: a 500 before). Under
    /api/ the answer has the API's error shape, naming the parameter; elsewhere it is the plain 400
    page. JSON bodies are checked by the API's parsers (apps/core/api/parsers.py)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        api = request.path.startswith("/api/")
        try:
            found = _unstorable_parameter(request)
        except (MultiPartParserError, SuspiciousOperation, UnreadablePostError):
            if not api:
                raise  # Django's own 400 page
            with translation.override(translation.get_language_from_request(request)):
                message = gettext("The form body cannot be read.")
            return JsonResponse({"code": "parse_error", "message": message, "fields": {}}, status=400)
        if found is None:
            return self.get_response(request)
        name, problem = found
        # Before LocaleMiddleware: the answer speaks the request's language all the same.
        with translation.override(translation.get_language_from_request(request)):
            message, field_message = problem.about(name), problem.message()
        if api:
            return JsonResponse(
                {"code": "invalid", "message": message, "fields": {name: [field_message]}},
                status=400,
            )
        return defaults.bad_request(request, BadRequest(message))


FORM_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _unstorable_parameter(request: HttpRequest) -> tuple[str, Unstorable] | None:
    """(the parameter's name, what is wrong) for the first unstorable one, or None."""
    problem = text_problem(request.path_info)
    if problem:
        return "path", problem
    sources = [request.GET, request.COOKIES]
    if request.method == "POST" and request.content_type in FORM_CONTENT_TYPES:
        sources.append(request.POST)
    for source in sources:
        items = source.lists() if isinstance(source, QueryDict) else ((name, [value]) for name, value in source.items())
        for name, values in items:
            problem = text_problem(name)
            if problem:
                return text_storable(name), problem.of(Part.NAME)
            for value in values:
                problem = text_problem(value)
                if problem:
                    return name, problem
    return None
