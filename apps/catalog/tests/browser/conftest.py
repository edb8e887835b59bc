"""The admin's catalog pages in headless Chromium: the portal's browser fixtures (live server on
127.0.0.1, Playwright on Debian's Chromium, Content Security Policy violations fail the test)."""

from apps.portal.tests.browser.conftest import _sync_orm_beside_playwright, browser, page  # noqa: F401
