from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from djmoney.models.fields import MoneyField
from djmoney.models.validators import MinMoneyValidator

from apps.core.models import TimeStampedModel
from apps.core.money import currency_choices

from .constants import BillingInterval

code_validator = RegexValidator(r"^[a-z0-9][a-z0-9_.-]*$", "Use lower-case letters, digits, '.', '_' and '-' only.")


class Product(TimeStampedModel):
    """Something the seller sells (e.g. "Cloud Hosting"); plans price it."""

    code = models.CharField(max_length=64, validators=[code_validator])
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    is_archived = models.BooleanField(default=False, help_text="Archived products take no new plans.")

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["code"],
                name="product_code_unique",
                violation_error_code="unique",
                violation_error_message="A product with this code already exists.",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Plan(TimeStampedModel):
    """How a product is sold: a recurring fee per billing interval, priced per currency."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="plans")
    code = models.CharField(max_length=64, validators=[code_validator])
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    interval = models.CharField(max_length=8, choices=BillingInterval.choices, default=BillingInterval.MONTH)
    interval_count = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1)],
        help_text="Bill every N intervals (e.g. 3 months).",
    )
    is_archived = models.BooleanField(default=False, help_text="Archived plans take no new subscriptions.")

    class Meta:
        ordering = ["product__name", "name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["code"],
                name="plan_code_unique",
                violation_error_code="unique",
                violation_error_message="A plan with this code already exists.",
            ),
            models.CheckConstraint(condition=Q(interval_count__gte=1), name="plan_interval_count_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def interval_label(self) -> str:
        if self.interval_count == 1:
            return {"day": "daily", "week": "weekly", "month": "monthly", "year": "yearly"}[self.interval]
        return f"every {self.interval_count} {self.interval}s"

    def price_for(self, currency: str) -> "PlanPrice | None":
        return next((price for price in self.prices.all() if str(price.amount.currency) == currency), None)


class PlanPrice(TimeStampedModel):
    """The flat fee of a plan per billing period in one currency (one row per currency)."""

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="prices")
    amount = MoneyField(
        max_digits=19,
        decimal_places=6,
        currency_choices=currency_choices,
        default_currency=None,
        validators=[MinMoneyValidator(0)],
        help_text="Fee per billing period per unit of quantity.",
    )

    class Meta:
        ordering = ["plan", "amount_currency"]
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "amount_currency"],
                name="plan_price_currency_unique",
                violation_error_message="This plan already has a price in this currency.",
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="plan_price_amount_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.plan}: {self.amount}"
