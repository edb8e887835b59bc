from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop, pgettext_lazy

from apps.core.event_details import event_choices_register


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    OPEN = "open", _("Open")
    PAID = "paid", _("Paid")
    VOID = "void", _("Void")
    UNCOLLECTIBLE = "uncollectible", _("Uncollectible")


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
    CREATED = "created", pgettext_lazy("event", "Created")
    UPDATED = "updated", _("Draft updated")
    FINALIZED = "finalized", _("Finalized")
    PAID = "paid", _("Marked paid")
    VOIDED = "voided", _("Voided")
    MARKED_UNCOLLECTIBLE = "marked_uncollectible", _("Marked uncollectible")
    PDF_RENDERED = "pdf_rendered", _("PDF rendered")
    PDF_FAILED = "pdf_failed", _("PDF rendering failed")
    CREDIT_NOTE_ISSUED = "credit_note_issued", _("Credit note issued")
    CREDIT_NOTE_VOIDED = "credit_note_voided", _("Credit note voided")
    CREDIT_NOTE_PDF_RENDERED = "credit_note_pdf_rendered", _("Credit note PDF rendered")
    CREDIT_NOTE_PDF_FAILED = "credit_note_pdf_failed", _("Credit note PDF rendering failed")
    EMAILED = "emailed", _("Emailed to the customer")
    EMAIL_FAILED = "email_failed", _("Email failed")
    PAYMENT_APPLIED = "payment_applied", _("Payment applied")
    PAYMENT_REVERSED = "payment_reversed", _("Payment reversed")
    REOPENED = "reopened", _("Due again (payment reversed)")
    REFUNDED = "refunded", pgettext_lazy("event", "Refund")


class BillingRunStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    COMPLETED_WITH_ERRORS = "completed_with_errors", _("Completed with errors")
    FAILED = "failed", _("Failed")
    INTERRUPTED = "interrupted", _("Interrupted (finished by a later run)")


class BillingRunTrigger(models.TextChoices):
    SCHEDULE = "schedule", _("Schedule")
    ADMIN = "admin", _("Admin")
    COMMAND = "command", _("Command")
    API = "api", _("API")
    TEST_CLOCK = "test_clock", _("Test clock")


class InvoiceLineKind(models.TextChoices):
    RECURRING = "recurring", _("Recurring fee")
    USAGE = "usage", _("Usage")
    MINIMUM = "minimum", _("Minimum charge true-up")
    PRORATION = "proration", _("Proration")
    DISCOUNT = "discount", _("Discount")
    MANUAL = "manual", _("Manual")
    # A one-off charge added by staff (a setup fee, professional services, a hardware order): billed on
    # the customer's next invoice, or on a one-off invoice issued at once.
    ONE_OFF = "one_off", _("One-off charge")
    # A credit from a credit note, taken off a later invoice after tax (it already carries its tax).
    CREDIT_NOTE = "credit_note", _("Credit from a credit note")
    # Money received and not allocated to an invoice (an overpayment), taken off a later invoice after
    # tax like a credit note's credit; positive when a reversed payment's credit had already been used.
    PAYMENT_CREDIT = "payment_credit", _("Credit from a payment")
    # What an invoice came to below zero (e.g. the credit for unused seats exceeding the new period's
    # fee), tax included: the invoice is issued with nothing due and this waits on the customer's
    # balance, taken off a later invoice after tax like a credit note's credit.
    INVOICE_CREDIT = "invoice_credit", _("Credit from an invoice")
    # Prepaid credits of the customer's wallets (apps.wallets) paying the invoice at finalization, taken
    # off the total after tax (purchased credits were taxed when bought).
    PREPAID_CREDITS = "prepaid_credits", _("Prepaid credits")
    # Prepaid credits bought: a prepayment, not a sale yet, so it carries no tax (the tax is charged on
    # the invoices the credits later pay); docs/credits.md.
    CREDIT_PURCHASE = "credit_purchase", _("Prepaid credits bought")
    # Progressive billing: the usage an interim invoice of the same period already billed, deducted
    # before tax (negative) from the usage of the period (or from a later interim invoice).
    PROGRESSIVE = "progressive", _("Usage already billed (progressive billing)")


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
    SUBSCRIPTION_CYCLE = "subscription_cycle", _("Subscription period")
    SUBSCRIPTION_UPDATE = "subscription_update", _("Subscription change")
    MANUAL = "manual", _("One-off invoice (issued by staff)")
    # Prepaid credits bought for a wallet (apps.wallets): granted once the invoice is paid.
    CREDIT_PURCHASE = "credit_purchase", _("Credit purchase")
    # Progressive billing: the usage of the period so far, invoiced when it reached a threshold (Stripe
    # names it the same way); the period's final invoice deducts it.
    SUBSCRIPTION_THRESHOLD = "subscription_threshold", _("Interim invoice (usage threshold)")


# Printed on the bill (translated there, in the customer's language).
REVERSE_CHARGE_NOTE = gettext_noop("Reverse charge: VAT to be accounted for by the recipient.")


# --- Credit notes ------------------------------------------------------------------------------------


class CreditNoteStatus(models.TextChoices):
    ISSUED = "issued", _("Issued")
    VOID = "void", _("Void")


class CreditNoteReason(models.TextChoices):
    DUPLICATE = "duplicate", _("Duplicate charge")
    PRODUCT_UNSATISFACTORY = "product_unsatisfactory", _("Product unsatisfactory")
    ORDER_CHANGE = "order_change", _("Order change")
    OTHER = "other", _("Other")


class CreditNoteLineKind(models.TextChoices):
    INVOICE_LINE = "invoice_line", _("Invoice line")
    ADJUSTMENT = "adjustment", _("Amount")
    DISCOUNT_SHARE = "discount_share", _("Share of the invoice's discounts")
    BALANCE_SHARE = "balance_share", _("Share of the balance applied on the invoice")


# Statuses of an invoice a credit note may be issued for (never a draft, never a void invoice).
CREDITABLE_STATUSES = (InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.UNCOLLECTIBLE)
# Unpaid statuses: a credit note reduces the amount due instead of being refunded or credited.
UNPAID_STATUSES = (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE)


# Event data names billing reasons, credit-note reasons and invoice statuses by these labels (apps.core.event_details).
event_choices_register("reason", BillingReason, CreditNoteReason)
event_choices_register("status", InvoiceStatus)
