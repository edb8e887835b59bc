"""Browser tests of the portal: Playwright drives Debian's headless Chromium against a live server on a
free port of 127.0.0.1 (pytest-django's `live_server`), with axe-core injected for accessibility checks."""

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings

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
# Loaded from our own static files, as the page's Content Security Policy allows (no inline script).
AXE_JS_PATH = "vendor/axe-core/axe.min.js"


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


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, accept_downloads=True, locale="en-GB")
    context.set_default_timeout(15_000)
    page = context.new_page()
    # Anything the Content Security Policy blocks (an inline script, a foreign origin) fails the test.
    blocked = []
    page.on(
        "console", lambda message: blocked.append(message.text) if "Content Security Policy" in message.text else None
    )
    yield page
    context.close()
    assert blocked == []


def axe_violations(page, *, impacts=("serious", "critical")) -> list[dict]:
    """Run axe-core (WCAG 2 A/AA rules) on the page; the violations of the given impacts."""
    origin = "/".join(page.url.split("/")[:3])
    page.add_script_tag(url=f"{origin}/{settings.STATIC_URL.strip('/')}/{AXE_JS_PATH}")
    result = page.evaluate(
        """async () => await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa']}})"""
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in impacts
    ]
