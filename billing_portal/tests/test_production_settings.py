"""The production settings: `check --deploy` clean, HTTPS and secure cookies, secrets and the email
configuration from the environment only, security headers on static files. Each check runs in a
fresh process with the production settings module."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

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
        and not key.startswith(("EMAIL_", "STATIC_"))
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
        "EMAIL_URL": "smtp+tls://billing:mail-secret@smtp.example.com:587",
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


EMAIL_DUMP = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({name: getattr(s, name) for name in [
    "EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD", "EMAIL_USE_TLS",
    "EMAIL_USE_SSL",
]}))
"""
SMTP = "django.core.mail.backends.smtp.EmailBackend"


def test_production_refuses_to_start_without_an_email_configuration():
    """Without one, sign-in links and password resets went to the console backend: into the logs."""
    environment = _production_environment()
    del environment["EMAIL_URL"]

    for command in (["manage.py", "check"], ["-c", EMAIL_DUMP]):
        result = _run(command, **environment)

        assert result.returncode != 0, result.stdout
        assert "ImproperlyConfigured: Set EMAIL_URL (e.g. smtp+tls://user:password@smtp.example.com:587)" in (
            result.stderr
        )


def test_production_refuses_the_console_email_backend_even_when_asked_for():
    for setting in (
        {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"},
        {"EMAIL_URL": "consolemail://"},
    ):
        environment = {**_production_environment(), "EMAIL_URL": "", **setting}

        result = _run(["manage.py", "check"], **environment)

        assert result.returncode != 0, setting
        assert "The console email backend prints sign-in links and password resets into the logs" in result.stderr


def test_the_email_configuration_comes_from_email_url_or_the_email_variables():
    by_url = _run(["-c", EMAIL_DUMP], **_production_environment())
    by_variables = _run(
        ["-c", EMAIL_DUMP],
        **{**_production_environment(), "EMAIL_URL": ""},
        EMAIL_BACKEND=SMTP,
        EMAIL_HOST="mail.example.com",
        EMAIL_PORT="465",
        EMAIL_HOST_USER="bills",
        EMAIL_HOST_PASSWORD="other-secret",
        EMAIL_USE_SSL="true",
    )

    assert by_url.returncode == 0, by_url.stderr
    assert json.loads(by_url.stdout) == {
        "EMAIL_BACKEND": SMTP,
        "EMAIL_HOST": "smtp.example.com",
        "EMAIL_PORT": 587,
        "EMAIL_HOST_USER": "billing",
        "EMAIL_HOST_PASSWORD": "mail-secret",
        "EMAIL_USE_TLS": True,
        "EMAIL_USE_SSL": False,
    }
    assert by_variables.returncode == 0, by_variables.stderr
    assert json.loads(by_variables.stdout) == {
        "EMAIL_BACKEND": SMTP,
        "EMAIL_HOST": "mail.example.com",
        "EMAIL_PORT": 465,
        "EMAIL_HOST_USER": "bills",
        "EMAIL_HOST_PASSWORD": "other-secret",
        "EMAIL_USE_TLS": False,
        "EMAIL_USE_SSL": True,
    }


def test_development_keeps_the_console_email_backend():
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", EMAIL_DUMP],
        cwd=settings.BASE_DIR,
        env={
            **{key: value for key, value in os.environ.items() if not key.startswith("EMAIL_")},
            "DJANGO_SETTINGS_MODULE": "billing_portal.settings.local",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"


STATIC_GET = """
import json, django
django.setup()
from django.test import Client
response = Client().get(
    "/static/catalog/picture.svg", HTTP_HOST="billing.example.com", HTTP_X_FORWARDED_PROTO="https"
)
print(json.dumps({"status": response.status_code, "body": b"".join(response.streaming_content).decode(),
                  **{name: response.get(name) for name in [
    "Content-Type", "Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy",
    "Cross-Origin-Opener-Policy", "Strict-Transport-Security",
]}}))
"""


def test_static_files_carry_the_content_security_policy_and_frame_options(tmp_path):
    """WhiteNoise (production) answers static files before the CSP and X-Frame-Options middleware run."""
    from .test_security_headers import POLICY, _directives

    picture = tmp_path / "catalog" / "picture.svg"
    picture.parent.mkdir()
    picture.write_text('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')

    result = _run(["-c", STATIC_GET], **_production_environment(), STATIC_ROOT=str(tmp_path))

    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert (answer["status"], answer["Content-Type"]) == (200, "image/svg+xml")
    assert answer["body"] == Path(picture).read_text()
    assert _directives(answer["Content-Security-Policy"]) == _directives(POLICY)
    assert answer["X-Frame-Options"] == "DENY"
    assert answer["X-Content-Type-Options"] == "nosniff"
    assert answer["Referrer-Policy"] == "same-origin"
    assert answer["Cross-Origin-Opener-Policy"] == "same-origin"
    assert answer["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


def test_behind_a_transaction_pooler_no_server_side_cursor_outlives_a_transaction():
    """DATABASE_TRANSACTION_POOLING (PgBouncer in transaction mode, docs/scaling.md): `.iterator()`
    reads client-side instead of through a server-side cursor held across transactions."""
    dump = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps(s.DATABASES['default'].get('DISABLE_SERVER_SIDE_CURSORS', False)))"
    )

    direct = _run(["-c", dump], **_production_environment())
    pooled = _run(["-c", dump], **_production_environment(), DATABASE_TRANSACTION_POOLING="true")

    assert direct.returncode == pooled.returncode == 0, direct.stderr + pooled.stderr
    assert (json.loads(direct.stdout), json.loads(pooled.stdout)) == (False, True)
