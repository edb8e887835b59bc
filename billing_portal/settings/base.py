"""Settings shared by every environment. Values come from the environment (see .env.example)."""

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
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "djstripe",
    # ours
    "apps.core",
    "apps.accounts",
    "apps.catalog",
    "apps.subscriptions",
    "apps.usage",
    "apps.invoices",
    "apps.payments",
    "apps.reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(BASE_DIR / "media")))
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

LOGIN_URL = "admin:login"

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
# Days between issue and due date unless the customer has its own terms.
INVOICE_PAYMENT_TERMS_DAYS = env.int("INVOICE_PAYMENT_TERMS_DAYS", default=14)

# Payments (docs/payments.md): money received beyond what its invoices owe is credited to the
# customer's balance (taken off the next invoices); false refuses such payments instead.
PAYMENT_OVERPAYMENT_TO_BALANCE = env.bool("PAYMENT_OVERPAYMENT_TO_BALANCE", default=True)

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

# --- Celery --------------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/0")
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
    "apps.invoices.tasks.credit_note_render_pdf_task": {"queue": "pdf"},
    "apps.invoices.tasks.invoice_email_task": {"queue": "email"},
}
# Queue a refresh of the finance reports when a billing run closes (the demo data loader turns it off
# while it replays months of runs, then rebuilds the reports once).
REPORTS_REFRESH_AFTER_BILLING_RUN = env.bool("REPORTS_REFRESH_AFTER_BILLING_RUN", default=True)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Declared here; django-celery-beat's database scheduler installs these entries when beat starts.
CELERY_BEAT_SCHEDULE = {
    "billing-run-daily": {
        "task": "apps.invoices.tasks.billing_run_task",
        "schedule": crontab(minute=5, hour=0),
    },
    "finalize-due-drafts-hourly": {
        "task": "apps.invoices.tasks.invoice_finalize_due_drafts_task",
        "schedule": crontab(minute=15),
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
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.core.api.permissions.StaffModelPermissions"],
    "DEFAULT_PAGINATION_CLASS": "apps.core.api.pagination.DefaultPagination",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "apps.core.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "apps.core.api.exception_handler.api_exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Billing Portal API",
    "DESCRIPTION": "Customers, catalog, subscriptions, invoices and payments. Amounts are decimal strings with a "
    "currency.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAdminUser"],  # schema and docs: staff only
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
    },
}

# --- Stripe (dj-stripe; payments arrive in a later release) ------------------------------------
STRIPE_LIVE_MODE = env.bool("STRIPE_LIVE_MODE", default=False)
STRIPE_TEST_SECRET_KEY = env("STRIPE_TEST_SECRET_KEY", default="sk_test_" + "0" * 32)
STRIPE_LIVE_SECRET_KEY = env("STRIPE_LIVE_SECRET_KEY", default="")
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_USE_NATIVE_JSONFIELD = True

# Bills are emailed through Django's email backend: the console in development (set EMAIL_BACKEND,
# EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS for SMTP).
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
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
    },
}
