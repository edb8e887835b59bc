from django.db import models


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    OPEN = "open", "Open"
    PAID = "paid", "Paid"
    VOID = "void", "Void"
    UNCOLLECTIBLE = "uncollectible", "Uncollectible"


# The invoice state machine: the only transitions any service may make.
INVOICE_TRANSITIONS: dict[str, frozenset[str]] = {
    InvoiceStatus.DRAFT: frozenset({InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.VOID}),
    InvoiceStatus.OPEN: frozenset({InvoiceStatus.PAID, InvoiceStatus.VOID, InvoiceStatus.UNCOLLECTIBLE}),
    InvoiceStatus.UNCOLLECTIBLE: frozenset({InvoiceStatus.PAID, InvoiceStatus.VOID}),
    InvoiceStatus.PAID: frozenset(),
    InvoiceStatus.VOID: frozenset(),
}

# Statuses of an invoice that has been issued to the customer (numbered and frozen).
FINALIZED_STATUSES = (InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.UNCOLLECTIBLE)


class InvoiceEventType(models.TextChoices):
    CREATED = "created", "Created"
    UPDATED = "updated", "Draft updated"
    FINALIZED = "finalized", "Finalized"
    PAID = "paid", "Marked paid"
    VOIDED = "voided", "Voided"
    MARKED_UNCOLLECTIBLE = "marked_uncollectible", "Marked uncollectible"
    PDF_RENDERED = "pdf_rendered", "PDF rendered"
    PDF_FAILED = "pdf_failed", "PDF rendering failed"
    EMAILED = "emailed", "Emailed to the customer"
    EMAIL_FAILED = "email_failed", "Email failed"


class BillingRunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    COMPLETED_WITH_ERRORS = "completed_with_errors", "Completed with errors"
    FAILED = "failed", "Failed"


class BillingRunTrigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    ADMIN = "admin", "Admin"
    COMMAND = "command", "Command"
    API = "api", "API"
    TEST_CLOCK = "test_clock", "Test clock"


class InvoiceLineKind(models.TextChoices):
    RECURRING = "recurring", "Recurring fee"
    USAGE = "usage", "Usage"
    MINIMUM = "minimum", "Minimum charge true-up"
    PRORATION = "proration", "Proration"
    DISCOUNT = "discount", "Discount"
    MANUAL = "manual", "Manual"


class BillingReason(models.TextChoices):
    SUBSCRIPTION_CYCLE = "subscription_cycle", "Subscription period"
    SUBSCRIPTION_UPDATE = "subscription_update", "Subscription change"
    MANUAL = "manual", "Manual"


class ProrationBehavior(models.TextChoices):
    PRORATE = "prorate", "Prorate on the next invoice"
    INVOICE_NOW = "invoice_now", "Prorate and invoice at once"
    NONE = "none", "No proration"


class ChangeTiming(models.TextChoices):
    NOW = "now", "Now"
    PERIOD_END = "period_end", "At the end of the current period"


# EU member states (ISO 3166-1 alpha-2): a business customer here with a tax ID on file, in another
# member state than the seller's, is billed under the reverse charge.
EU_COUNTRIES = frozenset(
    {
        "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT", "LT",
        "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
    }
)  # fmt: skip

REVERSE_CHARGE_NOTE = "Reverse charge: VAT to be accounted for by the recipient."
