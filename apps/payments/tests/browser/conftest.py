"""The browser of the portal's browser tests (Debian's headless Chromium driven by Playwright, against
a live server on 127.0.0.1), for the payments admin pages."""

from apps.portal.tests.browser.conftest import _sync_orm_beside_playwright, browser  # noqa: F401
