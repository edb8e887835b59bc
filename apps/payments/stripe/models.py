"""The link between a billing customer and its Stripe customer (dj-stripe's `Customer` row)."""

from django.db import models

from apps.core.models import TimeStampedModel


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
