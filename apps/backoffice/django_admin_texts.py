"""Texts of Django's own admin templates that Django's Simplified Chinese catalog does not translate
yet (the app list's column heads for screen readers, the login page's link), and the name of a
third-party app the admin lists that has no Chinese catalog. Listed here so that they
are in our catalog (locale/zh_Hans), which comes before Django's; never imported."""

from django.utils.translation import gettext_noop

DJANGO_ADMIN_TEXTS = [
    gettext_noop("Model name"),
    gettext_noop("Add link"),
    gettext_noop("Change or view list link"),
    gettext_noop("Error:"),
    gettext_noop("Forgotten your login credentials?"),
    # django-auditlog's app (no Chinese catalog of its own).
    gettext_noop("Audit log"),
]
