"""The admin speaks each staff user's chosen language.

A staff user picks English or Simplified Chinese in the admin's header (`staff_language_set`); on
every admin page (`/admin/`, the finance dashboard and its exports included) that choice is
activated, whatever the browser's Accept-Language says. A staff user who has not chosen gets the
browser's language, as `LocaleMiddleware` picked it. The portal and the API are left alone: the
portal speaks its user's choice for the customer (`apps.portal.middleware`).
"""

from django.utils import translation

from apps.accounts.selectors import staff_language_for_user

ADMIN_PREFIX = "/admin/"


class StaffLanguageMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(ADMIN_PREFIX) and request.user.is_authenticated and request.user.is_staff:
            language = staff_language_for_user(user=request.user)
            if language:
                translation.activate(language)
                request.LANGUAGE_CODE = translation.get_language()
        return self.get_response(request)
