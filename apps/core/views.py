import math

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views import defaults
from django.views.decorators.http import require_GET


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and database reachability, for load balancers and uptime checks."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:  # noqa: BLE001 - any database failure means "not healthy"
        return JsonResponse({"status": "error", "database": "unreachable"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404 for a URL that matches no route: the API's error shape under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "not_found", "message": "Not found.", "fields": {}}, status=404)
    return defaults.page_not_found(request, exception)


def login_locked_out(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """django-axes' answer to a locked-out login (`AXES_LOCKOUT_CALLABLE`): a page in the admin's or
    the portal's style, in the request's language, saying the account is locked for now and when to
    try again (429, with Retry-After). Each refused attempt starts the cool-off again."""
    from axes.helpers import get_cool_off
    from django.conf import settings
    from django.contrib import admin
    from django.shortcuts import render

    cool_off = get_cool_off(request)
    seconds = math.ceil(cool_off.total_seconds()) if cool_off else None
    context = {"minutes": max(1, math.ceil(seconds / 60)) if seconds else None}
    if request.path.startswith(reverse("portal:dashboard")):
        from apps.portal.views import _base_context

        template, context = "portal/locked_out.html", {**_base_context(request, None), **context}
    else:
        template = "admin/locked_out.html"
        context = {**admin.site.each_context(request), "title": _("This account is temporarily locked"), **context}
    response = render(request, template, context, status=settings.AXES_HTTP_RESPONSE_CODE)
    if seconds:
        response["Retry-After"] = str(seconds)
    return response
