from apps.portal.tests.browser.conftest import page  # noqa: F401 - the portal's browser page
