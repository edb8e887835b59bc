"""Fixtures shared by every app's tests."""

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from apps.accounts.tests.factories import UserFactory


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def make_staff(db):
    """make_staff("invoices.view_invoice", ...) → a staff user holding exactly those permissions."""

    def _make(*perms: str, username: str | None = None):
        user = UserFactory(is_staff=True, **({"username": username} if username else {}))
        for perm in perms:
            app_label, codename = perm.split(".")
            user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        return user

    return _make


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Each test stores its files (PDF bills) in a folder of its own: stored PDFs are never overwritten,
    and invoice numbers start again in every test's database transaction."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return settings.MEDIA_ROOT
