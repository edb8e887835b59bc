"""Pages of the back office outside the admin's own views."""

import math

from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from apps.accounts.constants import PortalLanguage
from apps.accounts.selectors import staff_language_for_user
from apps.accounts.services import staff_language_set
from apps.core.errors import ApplicationError
from apps.portal.views import portal_base_context


def login_locked_out(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """django-axes' answer to a locked-out login (`AXES_LOCKOUT_CALLABLE`): a page in the admin's or
    the portal's style, in the request's language, saying the account is locked for now and when to
    try again (429, with Retry-After). Each refused attempt starts the cool-off again."""
    cool_off = get_cool_off(request)
    seconds = math.ceil(cool_off.total_seconds()) if cool_off else None
    context = {"minutes": max(1, math.ceil(seconds / 60)) if seconds else None}
    if request.path.startswith(reverse("portal:dashboard")):
        template, context = "portal/locked_out.html", {**portal_base_context(request, None), **context}
    else:
        template = "admin/locked_out.html"
        context = {**admin.site.each_context(request), "title": _("This account is temporarily locked"), **context}
    response = render(request, template, context, status=settings.AXES_HTTP_RESPONSE_CODE)
    if seconds:
        response["Retry-After"] = str(seconds)
    return response


def staff_language(request: HttpRequest) -> HttpResponse:
    """The staff user's choice of the admin's language (linked from the admin's header). GET shows
    the choice; POST saves it and goes back to the page the user came from."""
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}, require_https=False):
        next_url = ""
    errors: list[str] = []
    if request.method == "POST":
        try:
            staff_language_set(user=request.user, language=request.POST.get("language", ""))
        except ApplicationError as error:
            errors = [message for messages in error.fields.values() for message in messages] or [error.message]
        else:
            return redirect(next_url or reverse("admin:index"))
    context = {
        **admin.site.each_context(request),
        "title": _("Language of the admin"),
        "languages": PortalLanguage.choices,
        "current": staff_language_for_user(user=request.user) or "",
        "next": next_url,
        "errors": errors,
    }
    return render(request, "admin/staff_language.html", context)
