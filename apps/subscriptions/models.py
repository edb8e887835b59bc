from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Customer
from apps.catalog import pricing
from apps.catalog.constants import PackageRounding
from apps.catalog.models import NOT_NEGATIVE, Charge, Coupon, Plan, PlanVersion, ThresholdFields
from apps.catalog.progressive import ThresholdSchedule, schedule_text
from apps.core.models import DomainEvent, TimeStampedModel
from apps.core.money import currency_choices

from .constants import BILLABLE_STATUSES, SubscriptionEventType, SubscriptionStatus
from .periods import Period


class SubscriptionQuerySet(models.QuerySet):
    def due_for_billing(self, now):
        """Subscriptions whose next period has begun and is not invoiced yet."""
        return self.filter(status__in=BILLABLE_STATUSES, next_billing_at__lte=now, cancel_at_period_end=False)

    def due_to_end(self, now):
        """Subscriptions canceled at period end whose period has ended."""
        return self.filter(status__in=BILLABLE_STATUSES, next_billing_at__lte=now, cancel_at_period_end=True)


class Subscription(TimeStampedModel):
    """A customer's subscription to a plan.

    The recurring fee is billed in advance: when a period begins (`next_billing_at`), the billing run
    invoices it and makes it the current period.
    """

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="subscriptions", verbose_name=_("customer")
    )
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions", verbose_name=_("plan"))
    plan_version = models.ForeignKey(
        PlanVersion,
        on_delete=models.PROTECT,
        related_name="subscriptions",
        help_text=_("The prices this subscription is billed at (kept when the plan gets a new version)."),
        verbose_name=_("plan version"),
    )
    pending_plan_version = models.ForeignKey(
        PlanVersion,
        on_delete=models.PROTECT,
        related_name="pending_subscriptions",
        null=True,
        blank=True,
        help_text=_("A version migration scheduled for the start of the next period."),
        verbose_name=_("pending plan version"),
    )
    quantity = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)], verbose_name=_("quantity"))
    currency = models.CharField(max_length=3, choices=currency_choices, editable=False, verbose_name=_("currency"))
    status = models.CharField(
        max_length=16, choices=SubscriptionStatus.choices, default=SubscriptionStatus.ACTIVE, verbose_name=_("status")
    )
    billing_anchor_at = models.DateTimeField(
        help_text=_("Periods are counted from this moment (UTC)."), verbose_name=_("billing anchor at")
    )
    started_at = models.DateTimeField(verbose_name=_("started at"))
    trial_end_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When the free trial ends (billing starts)."), verbose_name=_("trial end at")
    )
    paused_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When the current pause began."), verbose_name=_("paused at")
    )
    current_period_start_at = models.DateTimeField(verbose_name=_("current period start at"))
    current_period_end_at = models.DateTimeField(verbose_name=_("current period end at"))
    next_billing_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When the next period begins and is invoiced; empty once nothing more will be billed."),
        verbose_name=_("next billing at"),
    )
    cancel_at_period_end = models.BooleanField(
        default=False,
        help_text=_("Ends when the current period ends instead of renewing."),
        verbose_name=_("cancel at period end"),
    )
    canceled_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When the cancellation was asked for."), verbose_name=_("canceled at")
    )
    ended_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When the subscription stopped."), verbose_name=_("ended at")
    )
    cancellation_reason = models.TextField(blank=True, verbose_name=_("cancellation reason"))
    # Progressive billing: interim invoices were issued whose usage the invoice closing their period
    # must deduct. The billing run's bulk path leaves such a subscription to the one-by-one path.
    interim_invoices_pending = models.BooleanField(
        default=False,
        db_default=False,
        editable=False,
        help_text=_("Interim invoices (progressive billing) await their deduction on the period's final invoice."),
        verbose_name=_("interim invoices pending"),
    )

    objects = SubscriptionQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="subscription_quantity_positive"),
            models.CheckConstraint(
                condition=Q(current_period_end_at__gt=F("current_period_start_at")),
                name="subscription_period_not_empty",
            ),
        ]
        indexes = [
            # The billing run's query: due, billable subscriptions ordered by due time.
            models.Index(
                fields=["next_billing_at"],
                name="subscription_due_idx",
                condition=Q(status__in=["trialing", "active", "past_due"]),
            ),
            models.Index(fields=["customer", "status"], name="subscription_customer_idx"),
        ]
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")

    def __str__(self) -> str:
        return f"{self.customer} — {self.plan} ×{self.quantity}"

    @property
    def current_period(self) -> Period:
        return Period(self.current_period_start_at, self.current_period_end_at)


class SubscriptionEvent(DomainEvent):
    """Append-only record of what happened to a subscription: who, when, why."""

    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="events", verbose_name=_("subscription")
    )
    type = models.CharField(max_length=32, choices=SubscriptionEventType.choices, verbose_name=_("type"))

    class Meta(DomainEvent.Meta):
        verbose_name = _("subscription event")
        verbose_name_plural = _("subscription events")


class ScheduledChange(models.Model):
    """A plan or quantity change registered now and applied by the billing run when `effective_at`
    (the end of the current period) comes. At most one is pending per subscription."""

    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="scheduled_changes", verbose_name=_("subscription")
    )
    effective_at = models.DateTimeField(verbose_name=_("effective at"))
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+", verbose_name=_("plan"))
    plan_version = models.ForeignKey(
        PlanVersion, on_delete=models.PROTECT, related_name="scheduled_changes", verbose_name=_("plan version")
    )
    quantity = models.PositiveIntegerField(validators=[MinValueValidator(1)], verbose_name=_("quantity"))
    created_at = models.DateTimeField(verbose_name=_("created at"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    applied_at = models.DateTimeField(null=True, blank=True, verbose_name=_("applied at"))
    canceled_at = models.DateTimeField(null=True, blank=True, verbose_name=_("canceled at"))

    class Meta:
        ordering = ["effective_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription"],
                condition=Q(applied_at__isnull=True, canceled_at__isnull=True),
                name="scheduled_change_one_pending",
                violation_error_message="This subscription already has a scheduled change.",
            ),
        ]
        verbose_name = _("scheduled change")
        verbose_name_plural = _("scheduled changes")

    def __str__(self) -> str:
        return gettext("%(plan)s ×%(quantity)s from %(start)s") % {
            "plan": self.plan,
            "quantity": self.quantity,
            "start": f"{self.effective_at:%Y-%m-%d}",
        }


class SubscriptionSegment(models.Model):
    """A closed stretch of a subscription's billing period, billed at the prices it was on then.

    When a subscription changes plan or quantity in the middle of a period (or pauses), the stretch
    [`start_at`, `end_at`) before the change is closed out with the plan, version and quantity it had:
    its usage (the old version's tiers applied to the usage of that stretch alone) and its fees billed
    in arrears (× its share of `period_start_at`–`period_end_at`) go on the subscription's next invoice,
    as lines that name the stretch's dates. The rest of the period is billed at the prices in force when
    it closes. `billed_at` is set by the invoice that bills it (once)."""

    class Reason(models.TextChoices):
        CHANGE = "change", _("Plan or quantity changed")
        PAUSE = "pause", _("Paused")

    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="segments", verbose_name=_("subscription")
    )
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+", verbose_name=_("plan"))
    plan_version = models.ForeignKey(
        PlanVersion, on_delete=models.PROTECT, related_name="segments", verbose_name=_("plan version")
    )
    quantity = models.PositiveIntegerField(validators=[MinValueValidator(1)], verbose_name=_("quantity"))
    start_at = models.DateTimeField(verbose_name=_("start at"))
    end_at = models.DateTimeField(verbose_name=_("end at"))
    period_start_at = models.DateTimeField(
        help_text=_("The billing period the stretch is a part of."), verbose_name=_("period start at")
    )
    period_end_at = models.DateTimeField(verbose_name=_("period end at"))
    reason = models.CharField(max_length=16, choices=Reason.choices, verbose_name=_("reason"))
    created_at = models.DateTimeField(verbose_name=_("created at"))
    billed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("billed at"))

    class Meta:
        ordering = ["subscription", "start_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(end_at__gt=F("start_at")), name="subscription_segment_not_empty"),
            models.UniqueConstraint(fields=["subscription", "start_at"], name="subscription_segment_unique_start"),
        ]
        verbose_name = _("subscription segment")
        verbose_name_plural = _("subscription segments")

    def __str__(self) -> str:
        return gettext("%(plan)s ×%(quantity)s from %(start)s to %(end)s") % {
            "plan": self.plan,
            "quantity": self.quantity,
            "start": f"{self.start_at:%Y-%m-%d %H:%M}",
            "end": f"{self.end_at:%Y-%m-%d %H:%M}",
        }


class Discount(TimeStampedModel):
    """A redeemed coupon: it discounts the invoices of one subscription, or of every subscription of one
    customer, until its duration is used up (`periods_applied` counts the invoices discounted so far)."""

    coupon = models.ForeignKey(Coupon, on_delete=models.PROTECT, related_name="discounts", verbose_name=_("coupon"))
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="discounts", verbose_name=_("customer")
    )
    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="discounts",
        verbose_name=_("subscription"),
    )
    starts_at = models.DateTimeField(help_text=_("When the coupon was redeemed (UTC)."), verbose_name=_("starts at"))
    periods_applied = models.PositiveIntegerField(
        default=0, help_text=_("Invoices discounted so far."), verbose_name=_("periods applied")
    )
    ended_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When the discount stopped applying (its duration used up)."),
        verbose_name=_("ended at"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )

    class Meta:
        # The table kept its name when the model moved here from the catalog (coupons stay there).
        db_table = "catalog_discount"
        ordering = ["-starts_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(customer__isnull=False, subscription__isnull=True)
                | Q(customer__isnull=True, subscription__isnull=False),
                name="discount_exactly_one_target",
                violation_error_message="A discount applies to a customer or to a subscription, not both.",
            ),
            models.UniqueConstraint(
                fields=["coupon", "customer"],
                condition=Q(ended_at__isnull=True, customer__isnull=False),
                name="discount_active_coupon_customer_unique",
                violation_error_message="This coupon is already applied to this customer.",
            ),
            models.UniqueConstraint(
                fields=["coupon", "subscription"],
                condition=Q(ended_at__isnull=True, subscription__isnull=False),
                name="discount_active_coupon_subscription_unique",
                violation_error_message="This coupon is already applied to this subscription.",
            ),
        ]
        indexes = [
            models.Index(fields=["subscription", "ended_at"], name="discount_subscription_idx"),
            models.Index(fields=["customer", "ended_at"], name="discount_customer_idx"),
        ]
        verbose_name = _("discount")
        verbose_name_plural = _("discounts")

    def __str__(self) -> str:
        return gettext("%(coupon)s on %(target)s") % {"coupon": self.coupon.code, "target": self.target_label}

    @property
    def target_label(self) -> str:
        if self.subscription_id is not None:
            return f"subscription #{self.subscription_id}"
        return str(self.customer) if self.customer_id is not None else "nobody"

    @property
    def is_active(self) -> bool:
        limit = self.coupon.period_limit
        return self.ended_at is None and (limit is None or self.periods_applied < limit)


class CustomerEntitlements(models.Model):
    """What a customer's subscriptions granted when last computed: feature code → value (docs/
    entitlements.md). Compared with a fresh computation after every subscription change, so that a
    change is recorded (`EntitlementsChange`) once, and only when a value changed."""

    customer = models.OneToOneField(
        Customer, on_delete=models.CASCADE, related_name="entitlements", verbose_name=_("customer")
    )
    values = models.JSONField(default=dict, blank=True, verbose_name=_("values"))
    updated_at = models.DateTimeField(null=True, blank=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("customer entitlements")
        verbose_name_plural = _("customer entitlements")

    def __str__(self) -> str:
        return gettext("Entitlements of customer #%(customer)s") % {"customer": self.customer_id}


class EntitlementsChange(models.Model):
    """Append-only: a customer's entitlements changed (the `customer.entitlements_changed` webhook)."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="entitlements_changes", verbose_name=_("customer")
    )
    occurred_at = models.DateTimeField(verbose_name=_("occurred at"))
    features = models.JSONField(
        default=list, help_text=_("The entitlements after the change, feature by feature."), verbose_name=_("features")
    )
    previous_values = models.JSONField(
        default=dict, help_text=_("Feature code → value before the change."), verbose_name=_("previous values")
    )

    class Meta:
        ordering = ["occurred_at", "id"]
        verbose_name = _("entitlements change")
        verbose_name_plural = _("entitlements changes")

    def __str__(self) -> str:
        return gettext("Entitlements of customer #%(customer)s changed at %(at)s") % {
            "customer": self.customer_id,
            "at": f"{self.occurred_at:%Y-%m-%d %H:%M}",
        }


def _override_amount_field(help_text: str = "", **kwargs: Any) -> "models.DecimalField[Any, Any]":
    # As a catalog price's: unit prices may carry more decimals than the currency.
    return models.DecimalField(max_digits=28, decimal_places=12, help_text=help_text, validators=NOT_NEGATIVE, **kwargs)


class SubscriptionPriceOverride(TimeStampedModel):
    """A price negotiated for one subscription: it replaces the price of one charge of the subscription's
    plan version (every price of the charge: its default, dimension and peak prices) in the
    subscription's currency, without a new plan version (docs/credits.md, "Custom prices per
    subscription").

    Its fields are a catalog price's, read by the charge's price model, and validated by the same rules
    (`apps.catalog.services.price_problems`). It belongs to the version its charge is on: after a change
    to another version the subscription is billed at that version's prices."""

    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="price_overrides", verbose_name=_("subscription")
    )
    charge = models.ForeignKey(
        Charge, on_delete=models.PROTECT, related_name="subscription_price_overrides", verbose_name=_("charge")
    )
    currency = models.CharField(max_length=3, choices=currency_choices, verbose_name=_("currency"))
    amount = _override_amount_field(
        _("Flat: the fee. Per unit: the price of one unit. Package: the price of one package."),
        default=Decimal(0),
        verbose_name=_("amount"),
    )
    tiers = models.JSONField(
        default=list,
        blank=True,
        help_text=_(
            'Graduated, volume, graduated percentage: a list of tiers, e.g. [{"up_to": "1000", '
            '"unit_amount": "0.05"}, {"up_to": null, "unit_amount": "0.03", "flat_amount": "0"}].'
        ),
        verbose_name=_("tiers"),
    )
    package_size = models.PositiveIntegerField(
        default=1, help_text=_("Package: units per package."), verbose_name=_("package size")
    )
    package_rounding = models.CharField(
        max_length=8,
        choices=PackageRounding.choices,
        default=PackageRounding.UP,
        help_text=_("Package: round up or down."),
        verbose_name=_("package rounding"),
    )
    included_units = models.DecimalField(
        max_digits=19,
        decimal_places=6,
        default=Decimal(0),
        validators=NOT_NEGATIVE,
        help_text=_("Free units per period, taken off before pricing (percentage: free transactions)."),
        verbose_name=_("included units"),
    )
    percentage = models.DecimalField(
        max_digits=7,
        decimal_places=4,
        default=Decimal(0),
        help_text=_("Percentage: e.g. 2.9 for 2.9 %."),
        verbose_name=_("percentage"),
    )
    fixed_fee = _override_amount_field(
        _("Percentage: fixed fee per transaction."), default=Decimal(0), verbose_name=_("fixed fee")
    )
    min_per_transaction = _override_amount_field(
        _("Percentage: lowest fee per transaction."), null=True, blank=True, verbose_name=_("min per transaction")
    )
    max_per_transaction = _override_amount_field(
        _("Percentage: highest fee per transaction."), null=True, blank=True, verbose_name=_("max per transaction")
    )
    minimum_amount = _override_amount_field(
        _("Minimum charge per period; a true-up line makes up the difference."),
        null=True,
        blank=True,
        verbose_name=_("minimum amount"),
    )
    note = models.CharField(
        max_length=255, blank=True, help_text=_("Why: e.g. the contract or deal it comes from."), verbose_name=_("note")
    )

    class Meta:
        verbose_name = _("subscription price override")
        verbose_name_plural = _("subscription price overrides")
        ordering = ["subscription", "charge__position", "charge_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "charge"],
                name="subscription_price_override_unique",
                violation_error_message="This subscription already has a custom price for this charge.",
            ),
            models.CheckConstraint(
                condition=Q(amount__gte=0, fixed_fee__gte=0, included_units__gte=0, package_size__gte=1)
                & Q(percentage__gte=0, percentage__lte=100),
                name="subscription_price_override_amounts_not_negative",
                violation_error_message="Amounts, included units and percentages cannot be negative.",
            ),
        ]

    def __str__(self) -> str:
        charge = self.charge.name if self.charge_id else "New custom price"
        return f"{charge} ({self.currency}, custom)"

    # What the billing engine reads of a price besides its terms: a custom price names no group and no hours.
    @property
    def dimension_values(self) -> dict[str, str]:
        return {}

    @property
    def time_window(self) -> str:
        return ""

    def to_spec(self) -> pricing.PriceSpec:
        """The pure price the engine computes with, in the charge's price model (raises ValueError on
        tiers that are not numbers: `price_problems` refuses them before they are saved)."""
        return pricing.PriceSpec(
            model=pricing.PriceModel(self.charge.price_model),
            currency=self.currency,
            amount=Decimal(self.amount),
            tiers=tuple(
                pricing.Tier(
                    up_to=None if tier.get("up_to") in (None, "") else Decimal(str(tier["up_to"])),
                    unit_amount=Decimal(str(tier.get("unit_amount") or 0)),
                    flat_amount=Decimal(str(tier.get("flat_amount") or 0)),
                    percentage=Decimal(str(tier.get("percentage") or 0)),
                )
                for tier in self.tiers or ()
            ),
            package_size=Decimal(self.package_size),
            package_rounding=pricing.PackageRounding(self.package_rounding),
            included_units=Decimal(self.included_units),
            percentage=Decimal(self.percentage),
            fixed_fee=Decimal(self.fixed_fee),
            min_per_transaction=self.min_per_transaction,
            max_per_transaction=self.max_per_transaction,
            minimum_amount=self.minimum_amount,
        )


class SubscriptionProgressiveBilling(TimeStampedModel, ThresholdFields):
    """The subscription's own progressive billing thresholds, in its currency, instead of its plan
    version's (docs/billing-rules.md, "Progressive billing"). No amounts and no `every`: progressive
    billing is off for this subscription, whatever its plan says."""

    subscription = models.OneToOneField(
        Subscription, on_delete=models.CASCADE, related_name="progressive_billing", verbose_name=_("subscription")
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(every__isnull=True) | Q(every__gt=0),
                name="subscription_progressive_every_positive",
                violation_error_message="A recurring threshold is more than 0.",
            ),
        ]
        verbose_name = _("custom progressive billing")
        verbose_name_plural = _("custom progressive billing")

    def __str__(self) -> str:
        return schedule_text(self.schedule, self.subscription.currency)

    @property
    def schedule(self) -> ThresholdSchedule:
        return ThresholdSchedule.of(self.amounts, self.every, self.scope)
