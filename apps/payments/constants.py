from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from apps.core.event_details import event_choices_register


class PaymentProvider(models.TextChoices):
    STRIPE = "stripe", _("Stripe")
    MANUAL = "manual", _("Manual (recorded by staff)")


class PaymentMethod(models.TextChoices):
    CARD = "card", _("Card")
    BANK_TRANSFER = "bank_transfer", _("Bank transfer")
    CHEQUE = "cheque", _("Cheque")
    CASH = "cash", _("Cash")
    OTHER = "other", _("Other")


# Methods staff record by hand (money that arrived outside the product).
MANUAL_METHODS = (PaymentMethod.BANK_TRANSFER, PaymentMethod.CHEQUE, PaymentMethod.CASH, PaymentMethod.OTHER)
MANUAL_METHOD_CHOICES = [(method.value, method.label) for method in MANUAL_METHODS]


class PaymentStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    REQUIRES_ACTION = "requires_action", _("Requires action (e.g. 3-D Secure)")
    PROCESSING = "processing", _("Processing")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELED = "canceled", _("Canceled")
    REVERSED = "reversed", _("Reversed")


# The payment state machine: the only transitions any service may make. A failed attempt may still
# succeed later (a PaymentIntent confirmed again after a decline); a retry by dunning is a new payment.
# One exception, outside this table: money the provider took for a payment canceled here is still
# recorded (`payment_mark_succeeded_after_cancel`), as an anomaly for staff.
PAYMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    PaymentStatus.PENDING: frozenset(
        {
            PaymentStatus.REQUIRES_ACTION,
            PaymentStatus.PROCESSING,
            PaymentStatus.SUCCEEDED,
            PaymentStatus.FAILED,
            PaymentStatus.CANCELED,
        }
    ),
    PaymentStatus.REQUIRES_ACTION: frozenset(
        {PaymentStatus.PROCESSING, PaymentStatus.SUCCEEDED, PaymentStatus.FAILED, PaymentStatus.CANCELED}
    ),
    PaymentStatus.PROCESSING: frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.FAILED, PaymentStatus.CANCELED}),
    PaymentStatus.FAILED: frozenset(
        {PaymentStatus.REQUIRES_ACTION, PaymentStatus.PROCESSING, PaymentStatus.SUCCEEDED, PaymentStatus.CANCELED}
    ),
    # Money received: only a wrong manual payment is undone (reversed); card payments are refunded.
    PaymentStatus.SUCCEEDED: frozenset({PaymentStatus.REVERSED}),
    PaymentStatus.CANCELED: frozenset(),
    PaymentStatus.REVERSED: frozenset(),
}

# Statuses in which the payment may still succeed.
OPEN_PAYMENT_STATUSES = (
    PaymentStatus.PENDING,
    PaymentStatus.REQUIRES_ACTION,
    PaymentStatus.PROCESSING,
    PaymentStatus.FAILED,
)


class PaymentEventType(models.TextChoices):
    CREATED = "created", pgettext_lazy("event", "Created")
    REQUIRES_ACTION = "requires_action", _("Requires action")
    PROCESSING = "processing", _("Processing")
    SUCCEEDED = "succeeded", pgettext_lazy("event", "Succeeded")
    SUCCEEDED_AFTER_CANCEL = "succeeded_after_cancel", _("Succeeded at the provider after being canceled here")
    FAILED = "failed", pgettext_lazy("event", "Failed")
    CANCELED = "canceled", _("Canceled")
    REVERSED = "reversed", _("Reversed")
    ALLOCATED = "allocated", _("Allocated to invoices")
    CREDITED_TO_BALANCE = "credited_to_balance", _("Credited to the customer's balance")
    REFUND_CREATED = "refund_created", _("Refund created")
    REFUND_SUCCEEDED = "refund_succeeded", _("Refund succeeded")
    REFUND_FAILED = "refund_failed", _("Refund failed")


class RefundStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


REFUND_TRANSITIONS: dict[str, frozenset[str]] = {
    RefundStatus.PENDING: frozenset({RefundStatus.SUCCEEDED, RefundStatus.FAILED}),
    RefundStatus.SUCCEEDED: frozenset(),
    RefundStatus.FAILED: frozenset(),
}


# Event data names payment methods, providers and payment and refund statuses by these labels
# (apps.core.event_details).
event_choices_register("method", PaymentMethod)
event_choices_register("provider", PaymentProvider)
event_choices_register("status", PaymentStatus, RefundStatus)
