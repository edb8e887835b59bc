from django.db import models
from django.utils.translation import gettext_noop


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

# The one way back from paid: a payment that paid the invoice is reversed (apps.payments), so money is
# due on it again. No staff action or other service makes these transitions.
INVOICE_REOPEN_TRANSITIONS: dict[str, frozenset[str]] = {
    InvoiceStatus.PAID: frozenset({InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE}),
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
    CREDIT_NOTE_ISSUED = "credit_note_issued", "Credit note issued"
    CREDIT_NOTE_VOIDED = "credit_note_voided", "Credit note voided"
    CREDIT_NOTE_PDF_RENDERED = "credit_note_pdf_rendered", "Credit note PDF rendered"
    CREDIT_NOTE_PDF_FAILED = "credit_note_pdf_failed", "Credit note PDF rendering failed"
    EMAILED = "emailed", "Emailed to the customer"
    EMAIL_FAILED = "email_failed", "Email failed"
    PAYMENT_APPLIED = "payment_applied", "Payment applied"
    PAYMENT_REVERSED = "payment_reversed", "Payment reversed"
    REOPENED = "reopened", "Due again (payment reversed)"
    REFUNDED = "refunded", "Refund"


class BillingRunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    COMPLETED_WITH_ERRORS = "completed_with_errors", "Completed with errors"
    FAILED = "failed", "Failed"
    INTERRUPTED = "interrupted", "Interrupted (finished by a later run)"


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
    # A one-off charge added by staff (a setup fee, professional services, a hardware order): billed on
    # the customer's next invoice, or on a one-off invoice issued at once.
    ONE_OFF = "one_off", gettext_noop("One-off charge")
    # A credit from a credit note, taken off a later invoice after tax (it already carries its tax).
    CREDIT_NOTE = "credit_note", "Credit from a credit note"
    # Money received and not allocated to an invoice (an overpayment), taken off a later invoice after
    # tax like a credit note's credit; positive when a reversed payment's credit had already been used.
    PAYMENT_CREDIT = "payment_credit", "Credit from a payment"
    # What an invoice came to below zero (e.g. the credit for unused seats exceeding the new period's
    # fee), tax included: the invoice is issued with nothing due and this waits on the customer's
    # balance, taken off a later invoice after tax like a credit note's credit.
    INVOICE_CREDIT = "invoice_credit", "Credit from an invoice"
    # Prepaid credits of the customer's wallets (apps.wallets) paying the invoice at finalization, taken
    # off the total after tax (purchased credits were taxed when bought).
    PREPAID_CREDITS = "prepaid_credits", "Prepaid credits"
    # Prepaid credits bought: a prepayment, not a sale yet, so it carries no tax (the tax is charged on
    # the invoices the credits later pay); docs/credits.md.
    CREDIT_PURCHASE = "credit_purchase", "Prepaid credits bought"


# Lines that carry no tax of their own: balance credits taken off the total after tax, and prepaid
# credits bought (taxed when they are consumed).
AFTER_TAX_LINE_KINDS = frozenset(
    {
        InvoiceLineKind.CREDIT_NOTE,
        InvoiceLineKind.PAYMENT_CREDIT,
        InvoiceLineKind.INVOICE_CREDIT,
        InvoiceLineKind.PREPAID_CREDITS,
        InvoiceLineKind.CREDIT_PURCHASE,
    }
)


class BillingReason(models.TextChoices):
    SUBSCRIPTION_CYCLE = "subscription_cycle", "Subscription period"
    SUBSCRIPTION_UPDATE = "subscription_update", "Subscription change"
    MANUAL = "manual", "One-off invoice (issued by staff)"
    # Prepaid credits bought for a wallet (apps.wallets): granted once the invoice is paid.
    CREDIT_PURCHASE = "credit_purchase", "Credit purchase"


# Printed on the bill (translated there, in the customer's language).
REVERSE_CHARGE_NOTE = gettext_noop("Reverse charge: VAT to be accounted for by the recipient.")


# --- Credit notes ------------------------------------------------------------------------------------


class CreditNoteStatus(models.TextChoices):
    ISSUED = "issued", "Issued"
    VOID = "void", "Void"


class CreditNoteReason(models.TextChoices):
    DUPLICATE = "duplicate", gettext_noop("Duplicate charge")
    PRODUCT_UNSATISFACTORY = "product_unsatisfactory", gettext_noop("Product unsatisfactory")
    ORDER_CHANGE = "order_change", gettext_noop("Order change")
    OTHER = "other", "Other"


class CreditNoteLineKind(models.TextChoices):
    INVOICE_LINE = "invoice_line", "Invoice line"
    ADJUSTMENT = "adjustment", "Amount"
    DISCOUNT_SHARE = "discount_share", "Share of the invoice's discounts"
    BALANCE_SHARE = "balance_share", "Share of the balance applied on the invoice"


# Statuses of an invoice a credit note may be issued for (never a draft, never a void invoice).
CREDITABLE_STATUSES = (InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.UNCOLLECTIBLE)
# Unpaid statuses: a credit note reduces the amount due instead of being refunded or credited.
UNPAID_STATUSES = (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE)
