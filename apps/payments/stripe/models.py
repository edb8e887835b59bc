"""The link between a billing customer and its Stripe customer (dj-stripe's `Customer` row)."""

from django.db import models
from django.utils.translation import gettext_lazy as _
from djmoney.models.fields import MoneyField

from apps.core.models import TimeStampedModel
from apps.core.money import currency_choices


class StripeCustomer(TimeStampedModel):
    """Our customer's Stripe customer, created the first time a card is added or charged."""

    customer = models.OneToOneField(
        "accounts.Customer", on_delete=models.PROTECT, related_name="stripe_link", verbose_name=_("customer")
    )
    djstripe_customer = models.OneToOneField(
        "djstripe.Customer",
        on_delete=models.PROTECT,
        to_field="id",
        related_name="billing_link",
        verbose_name=_("dj-stripe customer"),
    )

    class Meta:
        app_label = "payments"
        verbose_name = _("Stripe customer")
        verbose_name_plural = _("Stripe customers")

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

    payment = models.ForeignKey(
        "payments.Payment", on_delete=models.PROTECT, related_name="stripe_disputes", verbose_name=_("payment")
    )
    stripe_dispute_id = models.CharField(_("Stripe dispute ID"), max_length=255)
    amount = MoneyField(
        max_digits=19,
        decimal_places=4,
        currency_choices=currency_choices,
        default_currency=None,
        verbose_name=_("amount"),
    )
    reason = models.CharField(max_length=64, blank=True, verbose_name=_("reason"))

    class Meta:
        app_label = "payments"
        verbose_name = _("Stripe dispute")
        constraints = [models.UniqueConstraint(fields=["stripe_dispute_id"], name="stripe_dispute_id_unique")]
        verbose_name_plural = _("Stripe disputes")

    def __str__(self) -> str:
        return self.stripe_dispute_id
