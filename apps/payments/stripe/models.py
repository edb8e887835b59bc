"""The link between a billing customer and its Stripe customer (dj-stripe's `Customer` row)."""

from django.db import models
from djmoney.models.fields import MoneyField

from apps.core.models import TimeStampedModel
from apps.core.money import currency_choices


class StripeCustomer(TimeStampedModel):
    """Our customer's Stripe customer, created the first time a card is added or charged."""

    customer = models.OneToOneField("accounts.Customer", on_delete=models.PROTECT, related_name="stripe_link")
    djstripe_customer = models.OneToOneField(
        "djstripe.Customer", on_delete=models.PROTECT, to_field="id", related_name="billing_link"
    )

    class Meta:
        app_label = "payments"
        verbose_name = "Stripe customer"

    def __str__(self) -> str:
        return str(self.djstripe_customer_id)

    @property
    def stripe_customer_id(self) -> str:
        return str(self.djstripe_customer_id)

    @property
    def default_payment_method_id(self) -> str | None:
        settings = (self.djstripe_customer.stripe_data or {}).get("invoice_settings") or {}
        value = settings.get("default_payment_method")
        if isinstance(value, dict):
            return str(value["id"])
        return value or None


class StripeDispute(TimeStampedModel):
    """A dispute (chargeback) a customer's bank opened on one of our card payments, as Stripe reported
    it (`charge.dispute.created`). Recorded once per dispute for staff to answer in Stripe."""

    payment = models.ForeignKey("payments.Payment", on_delete=models.PROTECT, related_name="stripe_disputes")
    stripe_dispute_id = models.CharField("Stripe dispute ID", max_length=255)
    amount = MoneyField(max_digits=19, decimal_places=4, currency_choices=currency_choices, default_currency=None)
    reason = models.CharField(max_length=64, blank=True)

    class Meta:
        app_label = "payments"
        verbose_name = "Stripe dispute"
        constraints = [models.UniqueConstraint(fields=["stripe_dispute_id"], name="stripe_dispute_id_unique")]

    def __str__(self) -> str:
        return self.stripe_dispute_id
