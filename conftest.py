"""Fixtures shared by every app's tests."""

import os
import shutil
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.utils import translation
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient

from apps.accounts.tests.factories import UserFactory

# Property tests check what holds, not how fast: no per-example deadline and no "too slow" health check,
# which fail at random on a machine busy with the other test workers (seen: 256 ms for an example that
# takes 0.2 ms when the machine is quiet).
hypothesis_settings.register_profile(
    "billing-portal", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
hypothesis_settings.load_profile("billing-portal")


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
def _default_language():
    """Each test starts and ends in the default language. A request through the test client activates
    the language of its user (portal, admin) in this thread and nothing switches it back, so a later
    test calling a service directly would otherwise speak the language of whatever test ran before it
    in the same process (which depends on how the suite is split between workers)."""
    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Each test stores its files (PDF bills) in a folder of its own: stored PDFs are never overwritten,
    and invoice numbers start again in every test's database transaction."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def _entitlements_version_grants_forgotten():
    """The plan versions' grants each process keeps per catalog generation: a test database rolled back
    gives its ids to the next test's versions, which production never does."""
    from apps.subscriptions.entitlements import version_grants_forget

    version_grants_forget()
    yield


# --- Browser tests (marker `browser`): one headless Chromium for the session, whatever app's tests
# use it (the portal's pages, the admin's). Playwright drives Debian's Chromium (it cannot download its
# own here; `make system-deps` installs it).

# The live server listens on a free port of 127.0.0.1 only (never a fixed port, never all interfaces).
os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", "127.0.0.1")

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def _sync_orm_beside_playwright():
    """Playwright's sync API runs an event loop in this thread; Django's ORM calls made by the test
    itself (fixtures, assertions) are still plain synchronous code. Only while browser tests run."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="session")
def browser(_sync_orm_beside_playwright):
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `make system-deps` (requirements/system.txt).")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


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


# --- Parallel runs (pytest-xdist, `make test` runs one worker per core) ---------------------------
# Each worker has its own test database; the end-to-end tests prefix their Redis keys per process and
# the fault tests start their own servers on free ports, so any test can run beside any other.

# The API fuzzing cannot be split: schemathesis gives all its generated tests one node id, and pytest-xdist
# would run only the first of them. Under xdist it is skipped; `make test` runs it in a stage of its own.
_FUZZ_UNDER_XDIST = pytest.mark.skip(reason="the API fuzzing runs in a single-process stage (pytest -n 0 -m fuzz)")


def pytest_collection_modifyitems(config, items):
    under_xdist = hasattr(config, "workerinput")
    for item in items:
        if under_xdist and item.get_closest_marker("fuzz"):
            item.add_marker(_FUZZ_UNDER_XDIST)
