"""The production settings: `check --deploy` clean, HTTPS and secure cookies, secrets from the
environment only. Each check runs in a fresh process with the production settings module."""

import json
import os
import secrets
import subprocess
import sys

from django.conf import settings

SETTINGS_DUMP = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({name: getattr(s, name) for name in [
    "DEBUG", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD",
    "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "X_FRAME_OPTIONS",
    "SECURE_CONTENT_TYPE_NOSNIFF", "SECURE_REFERRER_POLICY", "SECURE_REDIRECT_EXEMPT", "SECURE_PROXY_SSL_HEADER",
]}))
"""


def _run(args: list[str], **environment: str) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        # Nothing of the test process's own settings (e.g. DJANGO_ALLOW_ASYNC_UNSAFE of the browser tests).
        if key not in ("SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")
    }
    env.update(DJANGO_SETTINGS_MODULE="billing_portal.settings.production", **environment)
    return subprocess.run(  # noqa: S603
        [sys.executable, *args], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )


def _production_environment() -> dict[str, str]:
    return {
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "billing.example.com",
        "DATABASE_URL": "postgres://billing@db.example.com:5432/billing",
    }


def test_check_deploy_reports_no_issue():
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **_production_environment())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_https_hsts_and_secure_cookies():
    result = _run(["-c", SETTINGS_DUMP], **_production_environment())

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "DEBUG": False,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31_536_000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "X_FRAME_OPTIONS": "DENY",
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "SECURE_REFERRER_POLICY": "same-origin",
        "SECURE_REDIRECT_EXEMPT": ["^healthz$"],
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
    }


def test_the_secret_key_must_come_from_the_environment():
    environment = _production_environment()
    del environment["SECRET_KEY"]

    result = _run(["manage.py", "check"], **environment)

    assert result.returncode != 0
    assert "Set the SECRET_KEY environment variable" in result.stderr


def test_a_placeholder_or_short_secret_key_is_refused():
    for weak in ("change-me", "a" * 60, secrets.token_urlsafe(20)):
        result = _run(["manage.py", "check"], **{**_production_environment(), "SECRET_KEY": weak})

        assert result.returncode != 0, weak
        assert "SECRET_KEY must be a long random value" in result.stderr


def test_the_database_and_hosts_must_come_from_the_environment():
    for missing in ("DATABASE_URL", "ALLOWED_HOSTS"):
        environment = _production_environment()
        del environment[missing]

        result = _run(["manage.py", "check"], **environment)

        assert result.returncode != 0
        assert f"Set the {missing} environment variable" in result.stderr


def test_webhooks_go_over_https_to_public_addresses_only_in_production():
    dump = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.WEBHOOK_ALLOW_HTTP, s.WEBHOOK_ALLOWED_PRIVATE_NETWORKS]))"
    )

    default = _run(["-c", dump], **_production_environment())
    http_asked = _run(["manage.py", "check"], **_production_environment(), WEBHOOK_ALLOW_HTTP="true")

    assert default.returncode == 0, default.stderr
    assert json.loads(default.stdout) == [False, []]
    assert http_asked.returncode != 0
    assert "WEBHOOK_ALLOW_HTTP is for development only" in http_asked.stderr
