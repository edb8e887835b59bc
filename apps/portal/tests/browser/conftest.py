"""Browser tests of the portal: Playwright drives Debian's headless Chromium (the `browser` fixture of
the root conftest, shared with the admin's browser tests) against a live server on a free port of
127.0.0.1 (pytest-django's `live_server`), with axe-core injected for accessibility checks."""

import pytest
from django.conf import settings

# Loaded from our own static files, as the page's Content Security Policy allows (no inline script).
AXE_JS_PATH = "vendor/axe-core/axe.min.js"


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
