"""Production: every secret from the environment, PostgreSQL required, HTTPS only, secure cookies.

`DJANGO_SETTINGS_MODULE=billing_portal.settings.production manage.py check --deploy` passes with
these settings (tested in billing_portal/tests/test_production_settings.py). See docs/security.md.
"""

from django.core.exceptions import ImproperlyConfigured

from billing_portal.static_files import add_security_headers

from .base import *  # noqa: F403
from .base import EMAIL_BACKEND, MIDDLEWARE, database_pooling, env

DEBUG = False
# Secrets come from the environment only: no default, and no placeholder accepted.
SECRET_KEY = env("SECRET_KEY")
if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY in {"change-me", "insecure-local-only-key-change-me"}:
    raise ImproperlyConfigured(
        "SECRET_KEY must be a long random value (50+ characters), e.g. from "
        "`python -c 'import secrets; print(secrets.token_urlsafe(64))'`."
    )
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
# Outgoing webhooks over https only: plain http is for development.
if env.bool("WEBHOOK_ALLOW_HTTP", default=False):
    raise ImproperlyConfigured(
        "WEBHOOK_ALLOW_HTTP is for development only: webhooks are sent over https in production."
    )
WEBHOOK_ALLOW_HTTP = False
DATABASES = {"default": env.db("DATABASE_URL")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
database_pooling(DATABASES["default"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# HTTPS: behind a proxy that terminates TLS and sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancer probes over plain HTTP
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)  # one year
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)  # a working day

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Static files served by the app server itself (after `collectstatic`).
MIDDLEWARE = [MIDDLEWARE[0], "whitenoise.middleware.WhiteNoiseMiddleware", *MIDDLEWARE[1:]]
# WhiteNoise answers static files before the middleware that adds the Content Security Policy and
# X-Frame-Options runs (it sits right after SecurityMiddleware, which adds the others): it adds those
# two itself, the same as on every page.
WHITENOISE_ADD_HEADERS_FUNCTION = add_security_headers

# Email: configured explicitly, never the development console, which would print sign-in links and
# password resets into the worker's logs. See docs/security.md.
if not (env("EMAIL_URL", default="") or env("EMAIL_BACKEND", default="")):
    raise ImproperlyConfigured(
        "Set EMAIL_URL (e.g. smtp+tls://user:password@smtp.example.com:587) or EMAIL_BACKEND (with EMAIL_HOST, "
        "EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS): production sends sign-in links, "
        "password resets and bills by email."
    )
if EMAIL_BACKEND == "django.core.mail.backends.console.EmailBackend":
    raise ImproperlyConfigured(
        "The console email backend prints sign-in links and password resets into the logs: production needs "
        "a real one (EMAIL_URL=smtp+tls://…, or EMAIL_BACKEND)."
    )
