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


# --- A summary line per hardening stage (API fuzzing, fault tests) at the end of the run ---------
_STAGES = {"fuzz": "API fuzzing (schemathesis)", "faults": "Fault tests (PostgreSQL/Redis crashes)"}
_stage_outcomes: dict[str, dict[str, int]] = {marker: {} for marker in _STAGES}


def pytest_runtest_logreport(report):
    for marker in _STAGES:
        if marker in report.keywords and (report.when == "call" or report.outcome != "passed"):
            outcomes = _stage_outcomes[marker]
            outcomes[report.outcome] = outcomes.get(report.outcome, 0) + 1


def pytest_terminal_summary(terminalreporter):
    for marker, title in _STAGES.items():
        outcomes = _stage_outcomes[marker]
        if outcomes:
            counts = ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items()))
            terminalreporter.write_line(f"{title}: {counts}")
