"""Test settings: fast hashing, local files under a temporary media root, no eager Celery."""

import os
import tempfile

from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = "test-only-secret-key"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = tempfile.mkdtemp(prefix="billing-portal-media-")
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Tasks are scheduled on commit into an in-memory broker where nothing consumes them: tests assert
# the scheduling and call services directly. The end-to-end test runs a real worker on Redis
# (E2E_CELERY_BROKER_URL) instead.
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_URL = "memory://"
# Runs bill their chunks in the calling process (nothing consumes the memory broker); the fan-out
# through Celery is tested with a real worker.
BILLING_RUN_FAN_OUT = False
# The end-to-end tests' Redis. Each test process prefixes its broker keys with its own token (and
# deletes only those), so parallel workers and concurrent runs on one machine never share a queue.
E2E_CELERY_BROKER_URL = env("E2E_CELERY_BROKER_URL", default="redis://127.0.0.1:6379/15")
# Celery reads the CELERY_BROKER_URL environment variable *over* Django settings; CI exports it, so
# take it out of the environment or every test would publish its tasks to that Redis.
os.environ.pop("CELERY_BROKER_URL", None)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, so that `--reuse-db` skips the (slow) migrations on the next run.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test-db.sqlite3")}  # noqa: F405

# Rate limits high enough that no test meets them by accident; the tests of the limits set their own.
API_THROTTLE_RATES = {"api_key": "1000000/minute", "user": "1000000/minute", "anon": "1000000/minute"}
PORTAL_EMAIL_RATES = {"address": "1000000/minute", "address_total": "1000000/minute", "client": "1000000/minute"}
# Django's test client logs in without a request, which the admin login protection requires; its own
# tests switch it on.
AXES_ENABLED = False
