"""Settings shared by every environment. Values come from the environment (see .env.example)."""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("SECRET_KEY", default="insecure-local-only-key-change-me")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    # third party
    "djmoney",
    "django_countries",
    "django_filters",
    "nested_admin",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "djstripe",
    "axes",
    "csp",
    "auditlog",
    "sesame",
    # ours
    "apps.core",
    "apps.accounts",
    "apps.catalog",
    "apps.subscriptions",
    "apps.usage",
    "apps.invoices",
    "apps.wallets",
    "apps.billing",
    "apps.alerts",
    "apps.portal",
    "apps.payments",
    "apps.webhooks",
    "apps.audit",
    "apps.reports",
    "apps.backoffice",
    "apps.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "apps.core.middleware.ApiRequestSizeLimitMiddleware",
    "csp.middleware.CSPMiddleware",
    # Before anything reads the session or the request's parameters: NUL or unpaired surrogates → 400.
    "apps.core.middleware.UnstorableTextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.audit.middleware.AuditMiddleware",
    "apps.backoffice.middleware.StaffLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "apps.portal.middleware.PortalMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a locked-out login into its 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "billing_portal.urls"
WSGI_APPLICATION = "billing_portal.wsgi.application"
ASGI_APPLICATION = "billing_portal.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: SQLite by default (zero set-up), PostgreSQL through DATABASE_URL.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Wait for a writer instead of failing at once with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# The portal, its emails and PDF bills speak these; the admin speaks each staff user's choice (else the browser's).
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Where `collectstatic` gathers the static files (served by WhiteNoise in production).
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(BASE_DIR / "media")))
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

LOGIN_URL = "admin:login"

# Persistent database connections (seconds; 0 closes each at the end of its request), checked before
# reuse so that a restarted database costs no failed request.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True


# Behind a connection pooler in transaction mode (PgBouncer `pool_mode = transaction`), each
# transaction may run on another server connection: nothing may outlive a transaction. So no
# server-side cursors outside one (`.iterator()` then reads in chunks client-side). Django's psycopg
# backend binds parameters client-side by default and so prepares no statements, and every lock the
# product takes is a transaction-level one. See docs/scaling.md.
def database_pooling(database: dict) -> dict:
    """`database` set for a transaction-mode pooler when DATABASE_TRANSACTION_POOLING is on."""
    if env.bool("DATABASE_TRANSACTION_POOLING", default=False) and database["ENGINE"].endswith("postgresql"):
        database["DISABLE_SERVER_SIDE_CURSORS"] = True
    return database


database_pooling(DATABASES["default"])

# --- Caches --------------------------------------------------------------------------------------
# In-process memory by default; production shares one between web processes (API rate limits count
# across them): CACHE_URL=redis://127.0.0.1:6379/1. See docs/security.md.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
# How long a customer's computed entitlements stay in the cache (seconds); any change that affects them
# makes the cached answer stale at once, whatever this is (docs/entitlements.md).
ENTITLEMENTS_CACHE_SECONDS = env.int("ENTITLEMENTS_CACHE_SECONDS", default=3600)

# --- Security (docs/security.md) -----------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    # Admin login brute-force protection (django-axes): refuses a locked-out login before any password check.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    # The portal's passwordless sign-in links (one-time, short-lived).
    "sesame.backends.ModelBackend",
]
SESAME_MAX_AGE = env.int("PORTAL_LOGIN_LINK_MAX_AGE", default=15 * 60)
SESAME_ONE_TIME = True
# How long an invitation to a customer's portal team stays open (seconds; default 7 days).
PORTAL_INVITATION_MAX_AGE = env.int("PORTAL_INVITATION_MAX_AGE", default=7 * 24 * 3600)
# After AXES_FAILURE_LIMIT failed logins (admin or portal) for one username from one address, that pair is locked out
# for AXES_COOLOFF_MINUTES (429); a successful login resets the count.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
# The client's address behind the proxies (API_NUM_PROXIES), as the API's rate limits read it: without
# it every login behind a proxy would come from the proxy's address, and a few wrong passwords from
# anywhere would lock a username out for everyone.
AXES_CLIENT_IP_CALLABLE = "apps.core.network.client_address"
# The locked-out page: the admin's or the portal's, translated, saying when to try again.
AXES_LOCKOUT_CALLABLE = "apps.backoffice.views.login_locked_out"

# Headers on every response. HSTS and secure cookies are switched on by the production settings.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# Content Security Policy (django-csp) for the admin, the portal, the API docs and every other page:
# scripts only from our own static files (no inline script, no eval), styles from our files plus
# inline style attributes (the admin and the docs set them), images from us and data: URIs, nothing
# framed, forms posted only to us. The ReDoc page starts a web worker from a blob: URL.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}
if report_uri := env("CSP_REPORT_URI", default=""):
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["report-uri"] = [report_uri]

# --- Money -------------------------------------------------------------------------------------
# Currencies the seller bills in. Anything else is refused as "not a valid choice".
CURRENCIES = env.list("CURRENCIES", default=["USD", "EUR", "GBP", "CHF", "CAD", "AUD", "JPY", "SEK", "KWD"])
CURRENCY_CHOICES = None  # django-money derives the choices from CURRENCIES
DEFAULT_CURRENCY = env("DEFAULT_CURRENCY", default="USD")

# --- Billing -------------------------------------------------------------------------------------
# Invoice numbers: one gapless counter per prefix (and per year when the format uses {year}).
INVOICE_NUMBER_PREFIX = env("INVOICE_NUMBER_PREFIX", default="INV")
INVOICE_NUMBER_FORMAT = env("INVOICE_NUMBER_FORMAT", default="{prefix}-{year}-{sequence:06d}")
# Credit notes have a gapless series of their own (same mechanism, their own counter rows).
CREDIT_NOTE_NUMBER_PREFIX = env("CREDIT_NOTE_NUMBER_PREFIX", default="CN")
CREDIT_NOTE_NUMBER_FORMAT = env("CREDIT_NOTE_NUMBER_FORMAT", default="{prefix}-{year}-{sequence:06d}")
# Hours a draft invoice waits for staff review before the billing run finalizes it (0 = at once).
INVOICE_DRAFT_GRACE_HOURS = env.int("INVOICE_DRAFT_GRACE_HOURS", default=0)
# The billing run splits due subscriptions into chunks of this many; with fan-out (production) each
# chunk is a Celery task on the `billing` queue, so more workers bill more chunks at once.
BILLING_RUN_CHUNK_SIZE = env.int("BILLING_RUN_CHUNK_SIZE", default=500)
BILLING_RUN_FAN_OUT = env.bool("BILLING_RUN_FAN_OUT", default=True)
# A running run with no chunk finished for this long lost its workers; the next run closes it as
# interrupted (and bills what it left).
BILLING_RUN_STALE_MINUTES = env.int("BILLING_RUN_STALE_MINUTES", default=30)

# The billing run's invoices: "per_subscription" (one each) or "per_customer" (one invoice for all of a
# customer's subscriptions renewing on the same date, in one currency). Customers can override it.
INVOICE_GROUPING = env("INVOICE_GROUPING", default="per_subscription")

# Usage events are accepted when dated at most this long before, or this far after, the time of
# ingestion (the customer's test clock time for test customers). See docs/usage.md.
USAGE_EVENT_MAX_AGE_DAYS = env.int("USAGE_EVENT_MAX_AGE_DAYS", default=35)
USAGE_EVENT_MAX_FUTURE_MINUTES = env.int("USAGE_EVENT_MAX_FUTURE_MINUTES", default=60)
# Transaction ids stay taken at least this long after the key table's rotation (PostgreSQL): at least
# the max age above plus a day, and the longest period of a plan billing usage plus the longest
# lateness window plus a day (63 with monthly plans); the rotation refuses a shorter one. See
# docs/scaling.md, "Rotating the transaction ids".
USAGE_EVENT_KEY_RETENTION_DAYS = env.int("USAGE_EVENT_KEY_RETENTION_DAYS", default=63)
# Days between issue and due date unless the customer has its own terms.
INVOICE_PAYMENT_TERMS_DAYS = env.int("INVOICE_PAYMENT_TERMS_DAYS", default=14)

# Payments (docs/payments.md): money received beyond what its invoices owe is credited to the
# customer's balance (taken off the next invoices); false refuses such payments instead.
PAYMENT_OVERPAYMENT_TO_BALANCE = env.bool("PAYMENT_OVERPAYMENT_TO_BALANCE", default=True)
# Bills whose rendering was never queued (the broker was down when they were finalized) are rendered
# by a sweep every 10 minutes: invoices issued more than MIN_AGE minutes and less than MAX_AGE days ago.
INVOICE_PDF_SWEEP_MIN_AGE_MINUTES = env.int("INVOICE_PDF_SWEEP_MIN_AGE_MINUTES", default=5)
INVOICE_PDF_SWEEP_MAX_AGE_DAYS = env.int("INVOICE_PDF_SWEEP_MAX_AGE_DAYS", default=7)

# Email each bill (PDF attached) to the customer's email and billing contacts once it is rendered.
INVOICE_EMAIL_ON_FINALIZE = env.bool("INVOICE_EMAIL_ON_FINALIZE", default=True)

# The seller as printed on every bill (snapshotted onto the invoice at finalization).
SELLER = {
    "name": env("SELLER_NAME", default="Acme Cloud Ltd."),
    "address_lines": env.list("SELLER_ADDRESS_LINES", default=["1 Market Street", "Dublin D02 XY45", "Ireland"]),
    "email": env("SELLER_EMAIL", default="billing@acme-cloud.example"),
    "website": env("SELLER_WEBSITE", default="acme-cloud.example"),
    "tax_id": env("SELLER_TAX_ID", default="IE1234567X"),
    "country": env("SELLER_COUNTRY", default="IE"),
    "company_registration": env("SELLER_COMPANY_REGISTRATION", default="Registered in Ireland No. 654321"),
    "bank_name": env("SELLER_BANK_NAME", default="Bank of Example"),
    "iban": env("SELLER_IBAN", default="IE29 AIBK 9311 5212 3456 78"),
    "bic": env("SELLER_BIC", default="AIBKIE2D"),
    # Printed at the top of every bill: a path under static/ or an absolute path (SVG, PNG or JPEG).
    "logo": env("SELLER_LOGO", default="invoices/logo.svg"),
}

# Dunning actions counted in days from the due date happen at this hour (UTC) of their day; retries
# keep the time of day of the failed payment. See docs/payments.md (Dunning).
DUNNING_ACTION_HOUR = env.int("DUNNING_ACTION_HOUR", default=9)
# --- Outgoing webhooks (docs/audit-and-webhooks.md) -----------------------------------------------
# Seconds between two collections of new domain events into webhook deliveries (Celery beat).
WEBHOOK_COLLECT_EVERY_SECONDS = env.float("WEBHOOK_COLLECT_EVERY_SECONDS", default=15.0)
WEBHOOK_COLLECT_BATCH_SIZE = env.int("WEBHOOK_COLLECT_BATCH_SIZE", default=500)
# A domain row is expected to be committed within this many seconds of being written (longer than the
# longest transaction, a billing chunk's): the collector looks back that far for late commits.
WEBHOOK_OUTBOX_SETTLE_SECONDS = env.int("WEBHOOK_OUTBOX_SETTLE_SECONDS", default=3600)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# Attempts of one delivery (the first included); the wait after the n-th failure is
# base × 2^(n-1) seconds, at most the cap: 1 min, 2, 4, … 8 attempts span about 2 hours.
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=8)
WEBHOOK_RETRY_BASE_SECONDS = env.int("WEBHOOK_RETRY_BASE_SECONDS", default=60)
WEBHOOK_RETRY_MAX_SECONDS = env.int("WEBHOOK_RETRY_MAX_SECONDS", default=6 * 3600)
# An endpoint whose attempts fail this many times in a row is turned off (staff turn it on again).
WEBHOOK_DISABLE_AFTER_FAILURES = env.int("WEBHOOK_DISABLE_AFTER_FAILURES", default=50)
# Where webhooks may go (apps/webhooks/egress.py, docs/security.md): https only, to public addresses
# only. Plain http is for development (the local settings turn it on; production refuses it).
WEBHOOK_ALLOW_HTTP = env.bool("WEBHOOK_ALLOW_HTTP", default=False)
# Networks let through although they are not public (CIDR, e.g. "10.20.0.0/16" for receivers inside
# your own network); empty: public addresses only.
WEBHOOK_ALLOWED_PRIVATE_NETWORKS = env.list("WEBHOOK_ALLOWED_PRIVATE_NETWORKS", default=[])

# --- Audit trail ---------------------------------------------------------------------------------
AUDITLOG_DISABLE_REMOTE_ADDR = env.bool("AUDITLOG_DISABLE_REMOTE_ADDR", default=False)
AUDITLOG_STORE_JSON_CHANGES = True

# --- Celery --------------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/0")
# Deployments (or test runs) that share one Redis database keep apart by a prefix on every broker key.
_broker_key_prefix = env("CELERY_BROKER_KEY_PREFIX", default="")
CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": _broker_key_prefix} if _broker_key_prefix else {}
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 15 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 14 * 60
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ROUTES = {
    "apps.invoices.tasks.billing_run_task": {"queue": "billing"},
    "apps.invoices.tasks.billing_run_chunk_task": {"queue": "billing"},
    "apps.invoices.tasks.invoice_render_pdf_task": {"queue": "pdf"},
    "apps.invoices.tasks.invoice_render_pdfs_task": {"queue": "pdf"},
    "apps.invoices.tasks.invoice_render_missing_pdfs_task": {"queue": "pdf"},
    "apps.invoices.tasks.credit_note_render_pdf_task": {"queue": "pdf"},
    "apps.invoices.tasks.invoice_email_task": {"queue": "email"},
    "apps.accounts.tasks.portal_login_link_request_task": {"queue": "email"},
    "apps.accounts.tasks.portal_login_link_email_task": {"queue": "email"},
    "apps.accounts.tasks.customer_invitation_send_task": {"queue": "email"},
    "apps.accounts.tasks.portal_password_reset_request_task": {"queue": "email"},
    "apps.accounts.tasks.portal_password_reset_email_task": {"queue": "email"},
    "apps.webhooks.tasks.webhook_events_collect_task": {"queue": "webhooks"},
    "apps.webhooks.tasks.webhook_delivery_attempt_task": {"queue": "webhooks"},
    "apps.webhooks.tasks.webhook_deliveries_requeue_due_task": {"queue": "webhooks"},
    "apps.alerts.tasks.alerts_evaluate_customers_task": {"queue": "alerts"},
    "apps.alerts.tasks.alerts_evaluate_all_task": {"queue": "alerts"},
    "apps.alerts.tasks.alert_crossing_notify_task": {"queue": "email"},
    "apps.billing.tasks.progressive_evaluate_customers_task": {"queue": "billing"},
    "apps.billing.tasks.progressive_evaluate_all_task": {"queue": "billing"},
}
# Queue a refresh of the finance reports when a billing run closes (the demo data loader turns it off
# while it replays months of runs, then rebuilds the reports once).
REPORTS_REFRESH_AFTER_BILLING_RUN = env.bool("REPORTS_REFRESH_AFTER_BILLING_RUN", default=True)
# Alerts: usage recorded asks for an evaluation of its customer's alerts, at most once per this many
# seconds per customer (the evaluation runs that much later, on the `alerts` queue).
ALERTS_EVALUATION_DELAY_SECONDS = env.int("ALERTS_EVALUATION_DELAY_SECONDS", default=10)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Declared here; django-celery-beat's database scheduler installs these entries when beat starts.
CELERY_BEAT_SCHEDULE = {
    "billing-run-daily": {
        "task": "apps.invoices.tasks.billing_run_task",
        "schedule": crontab(minute=5, hour=0),
    },
    "render-missing-pdfs": {
        "task": "apps.invoices.tasks.invoice_render_missing_pdfs_task",
        "schedule": crontab(minute="*/10"),
    },
    "finalize-due-drafts-hourly": {
        "task": "apps.invoices.tasks.invoice_finalize_due_drafts_task",
        "schedule": crontab(minute=15),
    },
    # Dunning: start dunnings whose moment came, run due reminders, retries and end actions once.
    "dunning-run-hourly": {
        "task": "apps.payments.dunning.tasks.dunning_run_task",
        "schedule": crontab(minute=30),
    },
    "webhook-events-collect": {
        "task": "apps.webhooks.tasks.webhook_events_collect_task",
        "schedule": WEBHOOK_COLLECT_EVERY_SECONDS,
    },
    "webhook-deliveries-requeue-due": {
        "task": "apps.webhooks.tasks.webhook_deliveries_requeue_due_task",
        "schedule": crontab(),  # every minute
    },
    # Prepaid credits whose expiry day has come leave the wallets (idempotent; a missed day catches up).
    "wallet-credits-expire-daily": {
        "task": "apps.wallets.tasks.wallet_credits_expire_task",
        "schedule": crontab(minute=1, hour=0),
    },
    # Alerts are evaluated as usage arrives; this sweep catches an evaluation that was lost and spend
    # that moved without usage (docs/alerts.md).
    "alerts-evaluate-all": {
        "task": "apps.alerts.tasks.alerts_evaluate_all_task",
        "schedule": crontab(minute="*/15"),
    },
    # Usage events' monthly partitions (PostgreSQL): months ahead created, the DEFAULT partition emptied.
    "usage-partitions-ensure-daily": {
        "task": "apps.usage.tasks.usage_partitions_ensure_task",
        "schedule": crontab(minute=40, hour=3),
    },
    # The transaction ids' key table (PostgreSQL): a new generation once per retention, expired ones
    # dropped; a no-op on the other days.
    "usage-keys-rotate-daily": {
        "task": "apps.usage.tasks.usage_keys_rotate_task",
        "schedule": crontab(minute=50, hour=3),
    },
    # Progressive billing is evaluated as usage arrives; this sweep catches an evaluation that was lost
    # (docs/billing-rules.md, "Progressive billing").
    "progressive-evaluate-all": {
        "task": "apps.billing.tasks.progressive_evaluate_all_task",
        "schedule": crontab(minute="*/15"),
    },
    # Incremental: only what changed since the last refresh (and every billing run queues one too).
    "reports-refresh": {
        "task": "apps.reports.tasks.reports_refresh_task",
        "schedule": crontab(minute="*/10"),
    },
}

# --- API -----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: an anonymous request gets 401 with `WWW-Authenticate: Token` (session still works).
    # Users' tokens are stored hashed (`apps.accounts.models.UserToken`), not as DRF's plain-text ones.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.api.authentication.UserTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        # Last: a credential meant for another part of the API gets a 401 saying where it works.
        "apps.accounts.api.authentication.MisplacedCredentialAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.core.api.permissions.StaffModelPermissions"],
    # JSON that the database could not store (NUL, unpaired surrogates, 1e400) is refused as a field
    # error, and a body too deep to parse is a 400 (apps/core/api/parsers.py).
    "DEFAULT_PARSER_CLASSES": [
        "apps.core.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "apps.core.api.pagination.DefaultPagination",
    "DEFAULT_FILTER_BACKENDS": [
        "apps.core.api.filters.StrictFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "apps.core.api.schema.AutoSchema",
    # Per user (staff API) and per client address (anonymous); the ingestion endpoints count per API
    # key instead. Rates: API_THROTTLE_RATES below.
    "DEFAULT_THROTTLE_CLASSES": [
        "apps.core.api.throttling.UserRateThrottle",
        "apps.core.api.throttling.AnonRateThrottle",
    ],
    # Proxies in front of the app that append to X-Forwarded-For (0: the client address is REMOTE_ADDR).
    "NUM_PROXIES": env.int("API_NUM_PROXIES", default=0),
    "EXCEPTION_HANDLER": "apps.core.api.exception_handler.api_exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
# Requests allowed per window: "<count>/<second|minute|hour|day>"; empty for no limit. A request over
# the limit gets 429 with Retry-After. The defaults leave room for 100,000 usage events a second per
# API key (1,000-event batches).
API_THROTTLE_RATES = {
    "api_key": env("API_THROTTLE_API_KEY_RATE", default="6000/minute"),
    "user": env("API_THROTTLE_USER_RATE", default="1200/minute"),
    "anon": env("API_THROTTLE_ANON_RATE", default="120/minute"),
}
API_THROTTLE_CACHE = "default"
# The portal's emails that anyone may ask for (sign-in links and password resets), counted in the
# same cache, together for both forms: per email address and client address ("address": someone
# asking for another's address from elsewhere does not use up the owner's count), per email address
# from anywhere ("address_total", looser: no mailbox flood from many networks; above what one client
# address may reach alone, 12 an hour), past either the form answers as usual but nothing is sent,
# and that is logged; and per client address ("client"; past it: 429 and a form error).
# "<count>/<[n]second|minute|hour|day>"; empty for no limit. See docs/security.md.
PORTAL_EMAIL_RATES = {
    "address": env("PORTAL_EMAIL_ADDRESS_RATE", default="3/15minute"),
    "address_total": env("PORTAL_EMAIL_ADDRESS_TOTAL_RATE", default="15/hour"),
    "client": env("PORTAL_EMAIL_CLIENT_RATE", default="20/hour"),
}
# Largest API request body (bytes); larger ones get 413 before they are read. A full batch of 1,000
# usage events is ~200 KB.
API_MAX_REQUEST_BYTES = env.int("API_MAX_REQUEST_BYTES", default=4 * 1024 * 1024)
# Largest batch of usage events in one request.
USAGE_EVENTS_MAX_BATCH = env.int("USAGE_EVENTS_MAX_BATCH", default=1000)

SPECTACULAR_SETTINGS = {
    "TITLE": "Billing Portal API",
    "DESCRIPTION": (BASE_DIR / "apps" / "core" / "api" / "schema_description.md").read_text(),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and the docs describe the API and hold no data: public. Every endpoint they describe
    # keeps its own authentication and permissions.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "InvoiceStatusEnum": "apps.invoices.constants.InvoiceStatus",
        "SubscriptionStatusEnum": "apps.subscriptions.constants.SubscriptionStatus",
        "BillingRunStatusEnum": "apps.invoices.constants.BillingRunStatus",
        "ChargeKindEnum": "apps.catalog.constants.ChargeKind",
        "FeatureKindEnum": "apps.catalog.constants.FeatureKind",
        "AlertKindEnum": "apps.alerts.constants.AlertKind",
        "AlertOriginEnum": "apps.alerts.constants.AlertOrigin",
        "InvoiceLineKindEnum": "apps.invoices.constants.InvoiceLineKind",
        "PriceModelEnum": "apps.catalog.constants.PriceModelChoice",
        "CreditNoteStatusEnum": "apps.invoices.constants.CreditNoteStatus",
        "CreditNoteLineKindEnum": "apps.invoices.constants.CreditNoteLineKind",
        "CreditNoteReasonEnum": "apps.invoices.constants.CreditNoteReason",
        "PaymentStatusEnum": "apps.payments.constants.PaymentStatus",
        "PaymentMethodEnum": "apps.payments.constants.PaymentMethod",
        "ManualPaymentMethodEnum": "apps.payments.constants.MANUAL_METHOD_CHOICES",
        "PaymentProviderEnum": "apps.payments.constants.PaymentProvider",
        "RefundStatusEnum": "apps.payments.constants.RefundStatus",
        "PortalLanguageEnum": "apps.accounts.constants.PortalLanguage",
    },
}

# --- Stripe (dj-stripe at the edge; see docs/payments.md) --------------------------------------
STRIPE_LIVE_MODE = env.bool("STRIPE_LIVE_MODE", default=False)
# A placeholder test key keeps dj-stripe's checks quiet when card payments are off.
STRIPE_TEST_SECRET_KEY = env("STRIPE_TEST_SECRET_KEY", default="sk_test_" + "0" * 32)
STRIPE_LIVE_SECRET_KEY = env("STRIPE_LIVE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY = env("STRIPE_PUBLISHABLE_KEY", default="pk_test_localstripe")
# Another Stripe API server, e.g. the local fake one (`make localstripe`): http://127.0.0.1:8420.
# Empty: Stripe itself.
STRIPE_API_BASE = env("STRIPE_API_BASE", default="")
# Card payments on or off. Off (no Stripe key and no STRIPE_API_BASE), invoices are paid manually only.
STRIPE_ENABLED = env.bool(
    "STRIPE_ENABLED",
    default=bool(STRIPE_API_BASE or env("STRIPE_TEST_SECRET_KEY", default="") or STRIPE_LIVE_SECRET_KEY),
)
# Seconds before a request to Stripe counts as timed out; network failures are retried this many
# times at once by the client, with the same idempotency key, before the task retries later.
STRIPE_TIMEOUT_SECONDS = env.int("STRIPE_TIMEOUT_SECONDS", default=30)
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=2)
# Largest Stripe webhook body (bytes); larger ones get 413 before they are read (our events are a few KB).
STRIPE_WEBHOOK_MAX_BYTES = env.int("STRIPE_WEBHOOK_MAX_BYTES", default=256 * 1024)
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_USE_NATIVE_JSONFIELD = True
# dj-stripe's migrations, squashed: its own take ~45 s of CPU on a fresh database (see the module).
MIGRATION_MODULES = {"djstripe": "billing_portal.djstripe_migrations"}
# Where customers reach the portal: links in emails (the pay link of an invoice) start with it.
PORTAL_BASE_URL = env("PORTAL_BASE_URL", default="http://127.0.0.1:8000")
# Bills, sign-in links and password resets are emailed through Django's email backend: the console in
# development. Either one URL, EMAIL_URL (smtp+tls://user:password@smtp.example.com:587, or
# smtp+ssl://…:465; see django-environ), or EMAIL_BACKEND with EMAIL_HOST, EMAIL_PORT,
# EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS / EMAIL_USE_SSL. Production requires one of them
# and refuses the console (billing_portal/settings/production.py).
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
if env("EMAIL_URL", default=""):
    _email = env.email_url("EMAIL_URL")
    EMAIL_BACKEND = _email["EMAIL_BACKEND"]
    EMAIL_HOST = _email["EMAIL_HOST"] or EMAIL_HOST
    EMAIL_PORT = _email["EMAIL_PORT"] or EMAIL_PORT
    EMAIL_HOST_USER = _email["EMAIL_HOST_USER"] or ""
    EMAIL_HOST_PASSWORD = _email["EMAIL_HOST_PASSWORD"] or ""
    EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS", False))
    EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL", False))
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)  # seconds; a send holds the invoice's row lock
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default=SELLER["email"])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
        "stripe": {"level": "WARNING"},  # one INFO line per request and per response otherwise
        "axes.apps": {"level": "WARNING"},  # its start-up banner on every command
    },
}
