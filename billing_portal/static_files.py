"""Static files in production: WhiteNoise serves them from its middleware, which answers before the
Content Security Policy and X-Frame-Options middleware run. It gives every file those two headers
itself (`WHITENOISE_ADD_HEADERS_FUNCTION`), so that a static SVG or HTML file opened on its own runs
under the same policy as the pages and cannot be framed."""

from collections.abc import MutableMapping


def add_security_headers(headers: MutableMapping[str, str], path: str, url: str) -> None:
    """Called by WhiteNoise once per file, when it indexes the files at start-up."""
    from csp.utils import build_policy
    from django.conf import settings

    headers["Content-Security-Policy"] = build_policy()
    headers["X-Frame-Options"] = settings.X_FRAME_OPTIONS
