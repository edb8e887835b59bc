"""Payments: money received from a customer (by card through Stripe, or recorded by staff), the
invoices it pays (allocations), and money paid back (refunds). See docs/payments.md."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from djmoney.models.fields import MoneyField
from djmoney.money import Money

from apps.accounts.models import Customer
from apps.core.models import DomainEvent, TimeStampedModel
from apps.core.money import currency_choices
from apps.core.money_format import money_text

from .constants import (
    PaymentEventType,
    PaymentMethod,
    PaymentProvider,
    PaymentStatus,
    RefundStatus,
)
from .failures import payment_failure_text


def _money(**kwargs) -> MoneyField:
    return MoneyField(
        max_digits=19, decimal_places=4, currency_choices=currency_choices, default_currency=None, **kwargs
    )


class Payment(TimeStampedModel):
    """Money from one customer, in the customer's currency, allocated to one or more of its invoices;
    what is not allocated goes to the customer's credit balance. Only succeeded payments count."""

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="payments", verbose_name=_("customer")
    )
    provider = models.CharField(max_length=16, choices=PaymentProvider.choices, verbose_name=_("provider"))
    method = models.CharField(max_length=16, choices=PaymentMethod.choices, verbose_name=_("method"))
    amount = _money(verbose_name=_("amount"))
    status = models.CharField(
        max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.PENDING, verbose_name=_("status")
    )
    reference = models.CharField(
        max_length=255,
        blank=True,
        help_text=_("Manual payments: the bank reference, cheque number or receipt. Card payments: the card charged."),
        verbose_name=_("reference"),
    )
    provider_payment_id = models.CharField(
        _("provider payment ID"), max_length=255, blank=True, help_text=_("Stripe: the PaymentIntent id.")
    )
    idempotency_key = models.CharField(max_length=255, blank=True, verbose_name=_("idempotency key"))
    failure_code = models.CharField(max_length=64, blank=True, verbose_name=_("failure code"))
    failure_message = models.TextField(blank=True, verbose_name=_("failure message"))
    next_action_url = models.URLField(
        max_length=2000,
        blank=True,
        help_text=_("Where the customer completes the payment (e.g. 3-D Secure)."),
        verbose_name=_("next action URL"),
    )
    received_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When the money arrived (manual payments: as told by the bank)."),
        verbose_name=_("received at"),
    )
    # Set to zero in the payment's currency when the payment is created (see `save`).
    amount_refunded = _money(editable=False, help_text=_("Refunds that succeeded."), verbose_name=_("amount refunded"))
    balance_item = models.OneToOneField(
        "invoices.InvoiceItem",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="payment",
        help_text=_("The customer credit made of the money not allocated to invoices, while some of it waits."),
        verbose_name=_("balance item"),
    )
    card = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text=_("Card payments: the card charged (brand, last 4 digits, expiry), as it was when charged."),
        verbose_name=_("card"),
    )
    reversed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("reversed at"))
    reversal_reason = models.TextField(blank=True, verbose_name=_("reversal reason"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        verbose_name=_("created by"),
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0) & Q(amount_refunded__lte=F("amount")),
                name="payment_refunded_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(amount_refunded_currency=F("amount_currency")), name="payment_single_currency"
            ),
            models.UniqueConstraint(
                fields=["provider_payment_id"],
                condition=~Q(provider_payment_id=""),
                name="payment_provider_payment_id_unique",
            ),
            models.UniqueConstraint(
                fields=["idempotency_key"], condition=~Q(idempotency_key=""), name="payment_idempotency_key_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "-created_at"], name="payment_customer_idx"),
            models.Index(fields=["status", "created_at"], name="payment_status_idx"),
            models.Index(fields=["received_at"], name="payment_received_at_idx"),
        ]
        verbose_name = _("payment")
        verbose_name_plural = _("payments")

    def __str__(self) -> str:
        return gettext("Payment #%(id)s %(amount)s (%(status)s)") % {
            "id": self.pk,
            "amount": self.amount,
            "status": self.get_status_display(),
        }

    @property
    def failure_text(self) -> str:
        """Why it failed, in the active language (`failure_code` keeps Stripe's code)."""
        return payment_failure_text(failure_code=self.failure_code, failure_message=self.failure_message)

    def save(self, *args, **kwargs) -> None:
        # A new payment has refunded nothing, in its own currency.
        if self.amount_refunded is None and self.amount is not None:
            self.amount_refunded = Money(Decimal(0), self.amount.currency)
        super().save(*args, **kwargs)

    @property
    def currency(self) -> str:
        return str(self.amount.currency)

    @property
    def is_succeeded(self) -> bool:
        return self.status == PaymentStatus.SUCCEEDED


class PaymentAllocation(models.Model):
    """The part of a payment that pays one invoice. Only allocations of succeeded payments count as
    paid; while a payment is pending they say what it is meant to pay."""

    payment = models.ForeignKey(
        Payment, on_delete=models.CASCADE, related_name="allocations", verbose_name=_("payment")
    )
    invoice = models.ForeignKey(
        "invoices.Invoice", on_delete=models.PROTECT, related_name="payment_allocations", verbose_name=_("invoice")
    )
    amount = _money(verbose_name=_("amount"))
    created_at = models.DateTimeField(auto_now_add=True, editable=False, verbose_name=_("created at"))

    class Meta:
        ordering = ["payment", "id"]
        constraints = [
            models.UniqueConstraint(fields=["payment", "invoice"], name="payment_allocation_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_allocation_amount_positive"),
        ]
        verbose_name = _("payment allocation")
        verbose_name_plural = _("payment allocations")

    def __str__(self) -> str:
        return gettext("%(amount)s of payment #%(payment)s to invoice #%(invoice)s") % {
            "amount": money_text(self.amount.amount, str(self.amount.currency)),
            "payment": self.payment_id,
            "invoice": self.invoice_id,
        }


class Refund(TimeStampedModel):
    """Money paid back to the customer out of one payment: by Stripe to the card, or by staff outside
    the product (recorded). Usually made by a credit note of a paid invoice."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds", verbose_name=_("payment"))
    credit_note = models.ForeignKey(
        "invoices.CreditNote",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="refunds",
        verbose_name=_("credit note"),
    )
    amount = _money(verbose_name=_("amount"))
    status = models.CharField(
        max_length=16, choices=RefundStatus.choices, default=RefundStatus.PENDING, verbose_name=_("status")
    )
    provider_refund_id = models.CharField(_("provider refund ID"), max_length=255, blank=True)
    reason = models.TextField(blank=True, verbose_name=_("reason"))
    reference = models.CharField(
        max_length=255, blank=True, help_text=_("E.g. the bank transfer reference."), verbose_name=_("reference")
    )
    failure_code = models.CharField(max_length=64, blank=True, verbose_name=_("failure code"))
    failure_message = models.TextField(blank=True, verbose_name=_("failure message"))
    succeeded_at = models.DateTimeField(null=True, blank=True, verbose_name=_("succeeded at"))
    failed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("failed at"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        verbose_name=_("created by"),
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
            models.UniqueConstraint(
                fields=["provider_refund_id"], condition=~Q(provider_refund_id=""), name="refund_provider_id_unique"
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="refund_status_idx")]
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")

    def __str__(self) -> str:
        return gettext("Refund #%(id)s %(amount)s (%(status)s)") % {
            "id": self.pk,
            "amount": self.amount,
            "status": self.get_status_display(),
        }

    @property
    def failure_text(self) -> str:
        """Why it failed, in the active language (`failure_code` keeps Stripe's code)."""
        return payment_failure_text(failure_code=self.failure_code, failure_message=self.failure_message)

    @property
    def currency(self) -> str:
        return str(self.amount.currency)


class PaymentEvent(DomainEvent):
    """Append-only audit trail of everything that happened to a payment (and its refunds)."""

    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="events", verbose_name=_("payment"))
    type = models.CharField(max_length=32, choices=PaymentEventType.choices, verbose_name=_("type"))

    class Meta(DomainEvent.Meta):
        verbose_name = _("payment event")
        verbose_name_plural = _("payment events")


# Card collection keeps its link to Stripe customers next to its code (apps/payments/stripe/).
# Dunning's models live in their own module (apps/payments/dunning/models.py).
from .dunning.models import (  # noqa: E402
    CustomerDunningSetting,
    DunningCampaign,
    InvoiceDunning,
    InvoiceDunningEvent,
)
from .stripe.models import StripeCustomer, StripeDispute  # noqa: E402

__all__ = [
    "CustomerDunningSetting",
    "DunningCampaign",
    "InvoiceDunning",
    "InvoiceDunningEvent",
    "Payment",
    "PaymentAllocation",
    "PaymentEvent",
    "Refund",
    "StripeCustomer",
    "StripeDispute",
]
