from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
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


@csrf_exempt  # an answer for any method: a POST to no endpoint is a 404, not a CSRF refusal
def api_not_found(request: HttpRequest) -> JsonResponse:
    """An address under /api/ that matches no endpoint (a trailing slash, a typo)."""
    return JsonResponse({"code": "not_found", "message": gettext("Not found."), "fields": {}}, status=404)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404 for a URL that matches no route: the API's error shape under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "not_found", "message": gettext("Not found."), "fields": {}}, status=404)
    return defaults.page_not_found(request, exception)
