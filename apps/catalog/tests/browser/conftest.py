"""The admin's catalog pages in headless Chromium: the root conftest's `browser` and the portal's `page`
(live server on 127.0.0.1, Playwright on Debian's Chromium, Content Security Policy violations fail
the test)."""

from apps.portal.tests.browser.conftest import page  # noqa: F401
