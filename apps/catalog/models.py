from decimal import Decimal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext, gettext_lazy
from django.utils.translation import gettext_lazy as _
from djmoney.money import Money

from apps.core.models import TimeStampedModel
from apps.core.money import currency_choices
from apps.core.money_format import money_text

from . import pricing
from .constants import (
    DEFAULT_LATENESS_WINDOW_DAYS,
    INTERVAL_ADJECTIVES,
    INTERVAL_EVERY,
    MAX_LATENESS_WINDOW_DAYS,
    MAX_LIMIT,
    PERCENTILE_INTERVAL_MINUTES,
    UNLIMITED,
    USAGE_ONLY_MODELS,
    BillingInterval,
    BillingTiming,
    ChargeKind,
    CouponDuration,
    DiscountType,
    FeatureKind,
    MetricAggregation,
    PackageRounding,
    PriceModelChoice,
    PriceTimeWindow,
    ThresholdScope,
    TrialUsage,
    WeightedTimeUnit,
)
from .progressive import ThresholdSchedule, schedule_text

NOT_NEGATIVE = [MinValueValidator(Decimal(0), gettext_lazy("This cannot be negative."))]
code_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9_.-]*$", gettext_lazy("Use lower-case letters, digits, '.', '_' and '-' only.")
)
property_name_validator = RegexValidator(
    r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", gettext_lazy("Use letters, digits, '.', '_' and '-' only (no spaces).")
)
group_by_validator = RegexValidator(
    r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(,[A-Za-z0-9_][A-Za-z0-9_.-]*)?$",
    gettext_lazy(
        "Name one event property, or two separated by a comma (e.g. region,tier); letters, digits, "
        "'.', '_' and '-' only."
    ),
)

# A usage event's group key joins the values of its metric's group properties (one or two) with this.
GROUP_KEY_SEPARATOR = "|"


def group_key_of(values: "list[str] | tuple[str, ...]") -> str:
    """The group key of the values of a metric's group properties, in the metric's order."""
    return GROUP_KEY_SEPARATOR.join(values)


class Product(TimeStampedModel):
    """Something the seller sells (e.g. "Cloud Hosting"); plans price it."""

    code = models.CharField(max_length=64, validators=[code_validator], verbose_name=_("code"))
    name = models.CharField(max_length=255, verbose_name=_("name"))
    description = models.TextField(blank=True, verbose_name=_("description"))
    is_archived = models.BooleanField(
        default=False, help_text=_("Archived products take no new plans."), verbose_name=_("is archived")
    )

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["code"],
                name="product_code_unique",
                violation_error_code="unique",
                violation_error_message=gettext_lazy("A product with this code already exists."),
            )
        ]
        verbose_name = _("product")
        verbose_name_plural = _("products")

    def __str__(self) -> str:
        return self.name


class Plan(TimeStampedModel):
    """How a product is sold: a billing interval and a history of versions, each with its charges.

    New subscriptions take the plan's latest version; existing subscribers stay on theirs until staff
    migrate them (grandfathering).
    """

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="plans", verbose_name=_("product"))
    code = models.CharField(max_length=64, validators=[code_validator], verbose_name=_("code"))
    name = models.CharField(max_length=255, verbose_name=_("name"))
    description = models.TextField(blank=True, verbose_name=_("description"))
    interval = models.CharField(
        max_length=8, choices=BillingInterval.choices, default=BillingInterval.MONTH, verbose_name=_("interval")
    )
    interval_count = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1)],
        help_text=_("Bill every N intervals (e.g. 3 months)."),
        verbose_name=_("interval count"),
    )
    trial_days = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(730)],
        help_text=_("Days of free trial for new subscribers (0 for none); a subscription may override it."),
        verbose_name=_("trial days"),
    )
    trial_usage = models.CharField(
        max_length=24,
        choices=TrialUsage.choices,
        default=TrialUsage.FREE,
        help_text=_(
            "Usage during a trial: free (shown at zero on the first invoice after the trial), or billed "
            "on that invoice at the plan's prices."
        ),
        verbose_name=_("trial usage"),
    )
    is_archived = models.BooleanField(
        default=False, help_text=_("Archived plans take no new subscriptions."), verbose_name=_("is archived")
    )

    class Meta:
        ordering = ["product__name", "name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["code"],
                name="plan_code_unique",
                violation_error_code="unique",
                violation_error_message=gettext_lazy("A plan with this code already exists."),
            ),
            models.CheckConstraint(condition=Q(interval_count__gte=1), name="plan_interval_count_positive"),
        ]
        verbose_name = _("plan")
        verbose_name_plural = _("plans")

    def __str__(self) -> str:
        return self.name

    @property
    def interval_label(self) -> str:
        """How often the plan bills, in the active language ("monthly", "every 3 months"): written on
        bills in the customer's language (see `apps.invoices.services.lifecycle.bill_language`)."""
        if self.interval_count == 1:
            return str(INTERVAL_ADJECTIVES[self.interval])
        return INTERVAL_EVERY[self.interval] % {"count": self.interval_count}

    @property
    def current_version(self) -> "PlanVersion | None":
        """The version new subscribers get: the latest one (uses prefetched versions when loaded)."""
        versions = list(self.versions.all())
        return max(versions, key=lambda version: version.number) if versions else None


class PlanVersion(TimeStampedModel):
    """One edition of a plan's prices. Immutable once it has subscribers: changing prices then means a
    new version, and existing subscribers keep theirs until migrated."""

    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="versions", verbose_name=_("plan"))
    number = models.PositiveIntegerField(verbose_name=_("number"))
    notes = models.TextField(
        blank=True, help_text=_("What changed in this version (for staff)."), verbose_name=_("notes")
    )

    class Meta:
        ordering = ["plan", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "number"],
                name="plan_version_number_unique",
                violation_error_message=gettext_lazy("This plan already has a version with this number."),
            ),
            models.CheckConstraint(condition=Q(number__gte=1), name="plan_version_number_positive"),
        ]
        verbose_name = _("plan version")
        verbose_name_plural = _("plan versions")

    def __str__(self) -> str:
        return f"{self.plan} v{self.number}"

    @property
    def currencies(self) -> set[str]:
        """Currencies in which every charge of this version has a price (uses prefetched rows)."""
        charges = list(self.charges.all())
        if not charges:
            return set()
        sets = [{price.currency for price in charge.prices.all()} for charge in charges]
        return set.intersection(*sets)

    def progressive_billing_for(self, currency: str) -> "ProgressiveBilling | None":
        """The version's progressive billing thresholds in `currency` (uses prefetched rows when loaded)."""
        return next((row for row in self.progressive_billing.all() if row.currency == currency), None)

    def minimum_commitment_for(self, currency: str) -> "MinimumCommitment | None":
        """The version's minimum commitment per period in `currency` (uses prefetched rows when loaded)."""
        return next((row for row in self.minimum_commitments.all() if row.currency == currency), None)


class Charge(models.Model):
    """Something a plan version bills each period: a recurring fee (in advance by default, or in
    arrears when `billing_timing` says so) or usage (always in arrears)."""

    plan_version = models.ForeignKey(
        PlanVersion, on_delete=models.CASCADE, related_name="charges", verbose_name=_("plan version")
    )
    position = models.PositiveSmallIntegerField(default=0, verbose_name=_("position"))
    kind = models.CharField(
        max_length=16, choices=ChargeKind.choices, default=ChargeKind.RECURRING, verbose_name=_("kind")
    )
    name = models.CharField(
        max_length=255, help_text=_('Shown on the invoice line, e.g. "Platform fee".'), verbose_name=_("name")
    )
    price_model = models.CharField(
        max_length=32,
        choices=PriceModelChoice.choices,
        default=PriceModelChoice.PER_UNIT,
        verbose_name=_("price model"),
    )
    metric_code = models.CharField(
        max_length=64,
        blank=True,
        validators=[code_validator],
        help_text=_("Usage charges: the billable metric whose aggregate is the quantity."),
        verbose_name=_("metric code"),
    )
    billing_timing = models.CharField(
        max_length=16,
        choices=BillingTiming.choices,
        default=BillingTiming.IN_ADVANCE,
        help_text=_(
            "Recurring charges: billed when the period begins (in advance) or when it ends (in arrears). "
            "Usage charges are always billed in arrears."
        ),
        verbose_name=_("billing timing"),
    )
    pooled_allowance = models.DecimalField(
        max_digits=19,
        decimal_places=6,
        null=True,
        blank=True,
        validators=NOT_NEGATIVE,
        help_text=_(
            "Usage charges: units of the metric each subscription adds to a pool shared by all of the "
            "customer's subscriptions on the same plan (e.g. 1 GB per SIM); usage beyond the pool is priced by the "
            "charge's price. Empty: no pool."
        ),
        verbose_name=_("pooled allowance"),
    )
    pool_code = models.CharField(
        max_length=64,
        blank=True,
        validators=[code_validator],
        help_text=_(
            'Pooled charges: the code of a pool shared across plans (e.g. "iot-data"). The customer\'s '
            "subscriptions whose charges on this metric name the same pool share one pool, each adding its own "
            "plan's allowance. Empty: the pool of the customer's subscriptions on this plan."
        ),
        verbose_name=_("pool code"),
    )
    peak_start_hour = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(23)],
        help_text=_(
            "Usage charges: the hour peak hours start (0–23, in the customer's time zone); usage in peak "
            "hours is priced by the charge's peak price and billed on its own line. Empty: no peak hours."
        ),
        verbose_name=_("peak start hour"),
    )
    peak_end_hour = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(23)],
        help_text=_("The hour peak hours end (0–23, excluded; before the start: they run past midnight)."),
        verbose_name=_("peak end hour"),
    )

    class Meta:
        ordering = ["plan_version", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="recurring", metric_code="") | Q(kind="usage") & ~Q(metric_code=""),
                name="charge_metric_only_on_usage",
                violation_error_message=gettext_lazy("Usage charges need a metric code; recurring charges have none."),
            ),
            models.CheckConstraint(
                condition=~Q(kind="recurring", price_model__in=sorted(USAGE_ONLY_MODELS)),
                name="charge_percentage_only_on_usage",
                violation_error_message=gettext_lazy(
                    "Percentage and graduated percentage prices apply to usage charges only."
                ),
            ),
            models.CheckConstraint(
                condition=Q(billing_timing__in=["in_advance", "in_arrears"]),
                name="charge_billing_timing_valid",
                violation_error_message=gettext_lazy("A charge is billed in advance or in arrears."),
            ),
            models.CheckConstraint(
                condition=Q(peak_start_hour__isnull=True, peak_end_hour__isnull=True)
                | Q(kind="usage", peak_start_hour__lte=23, peak_end_hour__lte=23)
                & ~Q(peak_start_hour=F("peak_end_hour")),
                name="charge_peak_hours_valid",
                violation_error_message=gettext_lazy(
                    "Peak hours are a start and an end hour (0–23) that differ, on a usage charge; leave both "
                    "empty for none."
                ),
            ),
            models.CheckConstraint(
                condition=Q(pooled_allowance__isnull=True) | Q(kind="usage", pooled_allowance__gt=0),
                name="charge_pooled_allowance_on_usage",
                violation_error_message=gettext_lazy(
                    "Only usage charges have a pooled allowance, and it is more than 0."
                ),
            ),
            models.CheckConstraint(
                condition=Q(pool_code="") | Q(pooled_allowance__isnull=False),
                name="charge_pool_code_pooled",
                violation_error_message=gettext_lazy("Only a charge with a pooled allowance names a pool."),
            ),
        ]
        verbose_name = _("charge")
        verbose_name_plural = _("charges")

    def __str__(self) -> str:
        return self.name

    def price_for(self, currency: str) -> "Price | None":
        """The charge's (default) price in `currency`: the one that names no dimension values and no
        time window (with peak hours: the off-peak price). A billing run chunk, which loads its prices
        once and never changes them, sets `frozen_default_prices` ({currency: price}) first."""
        frozen = self.__dict__.get("frozen_default_prices")
        if frozen is not None:
            return frozen.get(currency)
        return next(
            (
                price
                for price in self.prices.all()
                if price.currency == currency and not price.dimension_values and not price.time_window
            ),
            None,
        )

    def peak_price_for(self, currency: str) -> "Price | None":
        """The charge's price for its peak hours in `currency`, if it has one (else peak hours are priced
        by the default price)."""
        return next(
            (price for price in self.prices.all() if price.currency == currency and price.time_window == "peak"),
            None,
        )

    @property
    def has_peak_hours(self) -> bool:
        return self.kind == ChargeKind.USAGE and self.peak_start_hour is not None and self.peak_end_hour is not None

    def peak_hours(self) -> frozenset[int]:
        """The local hours of the day (0–23) in the peak window: [start, end), past midnight when end < start."""
        start, end = self.peak_start_hour, self.peak_end_hour
        if start is None or end is None:
            return frozenset()
        return frozenset(range(start, end)) if start < end else frozenset([*range(start, 24), *range(0, end)])

    def price_for_group(self, currency: str, values: dict[str, str]) -> "Price | None":
        """The price of a group of usage (`values`: {"region": "eu", "tier": "gold"}): the charge's
        price for exactly these values if it has one, else its default price."""
        if values:
            for price in self.prices.all():
                if price.currency == currency and price.dimension_values == values and not price.time_window:
                    return price
        return self.price_for(currency)

    @property
    def is_billed_in_arrears(self) -> bool:
        """Billed when its period ends: usage always, a recurring fee when set to."""
        return self.kind == ChargeKind.USAGE or self.billing_timing == BillingTiming.IN_ARREARS

    @property
    def is_pooled(self) -> bool:
        return self.kind == ChargeKind.USAGE and self.pooled_allowance is not None

    @property
    def has_dimension_prices(self) -> bool:
        return any(price.dimension_values for price in self.prices.all())


def _amount_field(help_text: str = "", **kwargs) -> models.DecimalField:
    # Unit prices may carry more decimals than the currency (e.g. 0.00012 per request); amounts are
    # rounded only on invoice lines.
    return models.DecimalField(max_digits=28, decimal_places=12, help_text=help_text, validators=NOT_NEGATIVE, **kwargs)


class Price(models.Model):
    """A charge's price in one currency. Which fields apply depends on the charge's price model."""

    charge = models.ForeignKey(Charge, on_delete=models.CASCADE, related_name="prices", verbose_name=_("charge"))
    currency = models.CharField(max_length=3, choices=currency_choices, verbose_name=_("currency"))
    amount = _amount_field(
        _("Flat: the fee. Per unit: the price of one unit. Package: the price of one package."),
        default=Decimal(0),
        verbose_name=_("amount"),
    )
    package_size = models.PositiveIntegerField(
        default=1, help_text=_("Package: units per package."), verbose_name=_("package size")
    )
    package_rounding = models.CharField(
        max_length=8,
        choices=PackageRounding.choices,
        default=PackageRounding.UP,
        help_text=_("Package: count a started package in full (up) or only whole packages (down)."),
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
    dimension_values = models.JSONField(
        default=dict,
        blank=True,
        help_text=_(
            'Usage charges on a grouped metric: the group this price is for, e.g. {"region": "eu", "tier": '
            '"gold"} (a value for each property the metric groups by); empty for the default price.'
        ),
        verbose_name=_("dimension values"),
    )
    time_window = models.CharField(
        max_length=8,
        choices=PriceTimeWindow.choices,
        default=PriceTimeWindow.ALL_HOURS,
        blank=True,
        help_text=_(
            "Usage charges with peak hours: the price of the peak hours (peak), or of every other hour "
            "(empty: the default price)."
        ),
        verbose_name=_("time window"),
    )
    fixed_fee = _amount_field(
        _("Percentage: fixed fee per transaction."), default=Decimal(0), verbose_name=_("fixed fee")
    )
    min_per_transaction = _amount_field(
        _("Percentage: lowest fee per transaction."), null=True, blank=True, verbose_name=_("min per transaction")
    )
    max_per_transaction = _amount_field(
        _("Percentage: highest fee per transaction."), null=True, blank=True, verbose_name=_("max per transaction")
    )
    minimum_amount = _amount_field(
        _("Minimum charge per period; a true-up line makes up the difference."),
        null=True,
        blank=True,
        verbose_name=_("minimum amount"),
    )

    class Meta:
        ordering = ["charge", "currency", "id"]  # a currency's prices in the order they were given
        constraints = [
            models.UniqueConstraint(
                fields=["charge", "currency", "dimension_values", "time_window"],
                name="price_charge_currency_unique",
                violation_error_message=gettext_lazy(
                    "This charge already has a price in this currency (for these dimension values and hours)."
                ),
            ),
            models.CheckConstraint(
                condition=Q(amount__gte=0, fixed_fee__gte=0, included_units__gte=0, package_size__gte=1)
                & Q(percentage__gte=0, percentage__lte=100),
                name="price_amounts_not_negative",
                violation_error_message=gettext_lazy("Amounts, included units and percentages cannot be negative."),
            ),
            models.CheckConstraint(
                condition=Q(package_rounding__in=PackageRounding.values),
                name="price_package_rounding_known",
                violation_error_message=gettext_lazy("A package price rounds up or down."),
            ),
        ]
        verbose_name = _("price")
        verbose_name_plural = _("prices")

    def __str__(self) -> str:
        charge = self.charge.name if self.charge_id else "New price"
        dimensions = f", {dimension_label(self.dimension_values)}" if self.dimension_values else ""
        return f"{charge} ({self.currency}{dimensions})"

    @property
    def amount_money(self) -> Money:
        return Money(self.amount, self.currency)

    def to_spec(self) -> pricing.PriceSpec:
        """The pure price the engine computes with (tiers from prefetched rows when loaded). A billing
        run chunk, which loads its prices once and never changes them, sets `frozen_spec` first."""
        frozen = self.__dict__.get("frozen_spec")
        if frozen is not None:
            return frozen
        return pricing.PriceSpec(
            model=pricing.PriceModel(self.charge.price_model),
            currency=self.currency,
            amount=self.amount,
            tiers=tuple(
                pricing.Tier(
                    up_to=tier.up_to,
                    unit_amount=tier.unit_amount,
                    flat_amount=tier.flat_amount,
                    percentage=tier.percentage,
                )
                for tier in sorted(self.tiers.all(), key=lambda tier: tier.position)
            ),
            package_size=Decimal(self.package_size),
            package_rounding=pricing.PackageRounding(self.package_rounding),
            included_units=self.included_units,
            percentage=self.percentage,
            fixed_fee=self.fixed_fee,
            min_per_transaction=self.min_per_transaction,
            max_per_transaction=self.max_per_transaction,
            minimum_amount=self.minimum_amount,
        )


def dimension_label(values: dict) -> str:
    """{"region": "eu", "tier": "gold"} → "region eu, tier gold"."""
    return ", ".join(f"{name} {value}" for name, value in values.items())


class PriceTier(models.Model):
    """A tier of a graduated or volume price: units up to `up_to` (inclusive; empty on the last,
    open-ended tier), each at `unit_amount`, plus an optional flat fee for reaching the tier. A
    graduated percentage tier takes `percentage` of the amount up to `up_to` instead of a unit price."""

    price = models.ForeignKey(Price, on_delete=models.CASCADE, related_name="tiers", verbose_name=_("price"))
    position = models.PositiveSmallIntegerField(default=0, verbose_name=_("position"))
    up_to = models.DecimalField(
        max_digits=19,
        decimal_places=6,
        null=True,
        blank=True,
        help_text=_("Last unit of the tier; empty = no limit."),
        verbose_name=_("up to"),
    )
    unit_amount = _amount_field(_("Price per unit in this tier."), default=Decimal(0), verbose_name=_("unit amount"))
    flat_amount = _amount_field(
        _("Flat fee for reaching this tier."), default=Decimal(0), verbose_name=_("flat amount")
    )
    percentage = models.DecimalField(
        max_digits=7,
        decimal_places=4,
        default=Decimal(0),
        help_text=_("Graduated percentage: the share of the amount in this tier, e.g. 2 for 2 %."),
        verbose_name=_("percentage"),
    )

    class Meta:
        ordering = ["price", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(unit_amount__gte=0, flat_amount__gte=0) & (Q(up_to__isnull=True) | Q(up_to__gt=0)),
                name="price_tier_amounts_not_negative",
                violation_error_message=gettext_lazy(
                    "Tier bounds must be positive and tier prices cannot be negative."
                ),
            ),
            models.CheckConstraint(
                condition=Q(percentage__gte=0, percentage__lte=100),
                name="price_tier_percentage_range",
                violation_error_message=gettext_lazy("A tier's percentage is between 0 and 100."),
            ),
        ]
        verbose_name = _("price tier")
        verbose_name_plural = _("price tiers")

    def __str__(self) -> str:
        return gettext("up to %(up_to)s") % {"up_to": self.up_to} if self.up_to is not None else gettext("and above")


class MinimumCommitment(models.Model):
    """What a subscriber to a plan version commits to spend per period in one currency: when the
    period's charges (fees and usage, before tax and discounts) come to less, the invoice that closes
    the period gets a true-up line for the difference (docs/pricing.md, "Minimum commitment")."""

    plan_version = models.ForeignKey(
        PlanVersion, on_delete=models.CASCADE, related_name="minimum_commitments", verbose_name=_("plan version")
    )
    currency = models.CharField(max_length=3, choices=currency_choices, verbose_name=_("currency"))
    amount = models.DecimalField(
        max_digits=19,
        decimal_places=6,
        help_text=_("The least the period's charges come to, before tax and discounts."),
        verbose_name=_("amount"),
    )

    class Meta:
        ordering = ["plan_version", "currency"]
        constraints = [
            models.UniqueConstraint(
                fields=["plan_version", "currency"],
                name="minimum_commitment_currency_unique",
                violation_error_message=gettext_lazy("This version already has a minimum commitment in this currency."),
            ),
            models.CheckConstraint(
                condition=Q(amount__gt=0),
                name="minimum_commitment_positive",
                violation_error_message=gettext_lazy("A minimum commitment is more than 0."),
            ),
        ]
        verbose_name = _("minimum commitment")
        verbose_name_plural = _("minimum commitments")

    def __str__(self) -> str:
        return gettext("%(amount)s per period") % {"amount": money_text(self.amount, self.currency)}

    @property
    def amount_money(self) -> Money:
        return Money(self.amount, self.currency)


class ThresholdFields(models.Model):
    """The thresholds of progressive billing, on a plan version (ProgressiveBilling) or on one
    subscription of its own (subscriptions.SubscriptionProgressiveBilling)."""

    amounts = models.JSONField(
        default=list,
        blank=True,
        help_text=_('Usage amounts to date that trigger an interim invoice, e.g. ["500.00", "1200.00"].'),
        verbose_name=_("thresholds"),
    )
    every = models.DecimalField(
        max_digits=19,
        decimal_places=6,
        null=True,
        blank=True,
        help_text=_("Recurring threshold: after the highest fixed one, an interim invoice every this much more."),
        verbose_name=_("every"),
    )
    scope = models.CharField(
        max_length=16,
        choices=ThresholdScope.choices,
        default=ThresholdScope.PERIOD,
        help_text=_(
            "What the thresholds measure: the usage of the current period (each fires once per period) or the "
            "usage since the subscription started (each fires once in the subscription's life)."
        ),
        verbose_name=_("measured on"),
    )

    class Meta:
        abstract = True


class ProgressiveBilling(ThresholdFields):
    """Progressive billing of a plan version in one currency: the period's usage is invoiced as soon as
    its amount to date reaches a threshold, before the period ends (docs/billing-rules.md,
    "Progressive billing"). Fixed thresholds (`amounts`) and/or a recurring one (`every`: after the
    highest fixed threshold, every this much more). Part of the version's terms, like its prices: fixed
    once the version is in use (a subscription can override them)."""

    plan_version = models.ForeignKey(
        PlanVersion, on_delete=models.CASCADE, related_name="progressive_billing", verbose_name=_("plan version")
    )
    currency = models.CharField(max_length=3, choices=currency_choices, verbose_name=_("currency"))

    class Meta:
        ordering = ["plan_version", "currency"]
        constraints = [
            models.UniqueConstraint(
                fields=["plan_version", "currency"],
                name="progressive_billing_currency_unique",
                violation_error_message="This version already has progressive billing in this currency.",
            ),
            models.CheckConstraint(
                condition=Q(every__isnull=True) | Q(every__gt=0),
                name="progressive_billing_every_positive",
                violation_error_message="A recurring threshold is more than 0.",
            ),
        ]
        verbose_name = _("progressive billing")
        verbose_name_plural = _("progressive billing")

    def __str__(self) -> str:
        return schedule_text(self.schedule, self.currency)

    @property
    def schedule(self) -> ThresholdSchedule:
        return ThresholdSchedule.of(self.amounts, self.every, self.scope)


class Coupon(TimeStampedModel):
    """A discount offer: a percentage or a fixed amount per currency off, for one invoice, a number of
    periods or forever. Redeeming it for a customer or a subscription makes a `Discount`."""

    code = models.CharField(
        max_length=64,
        validators=[code_validator],
        help_text=_("What customers and staff type."),
        verbose_name=_("code"),
    )
    name = models.CharField(
        max_length=255, help_text=_('Shown on the invoice line, e.g. "Launch offer".'), verbose_name=_("name")
    )
    discount_type = models.CharField(
        max_length=16, choices=DiscountType.choices, default=DiscountType.PERCENTAGE, verbose_name=_("discount type")
    )
    percent_off = models.DecimalField(
        max_digits=7,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MaxValueValidator(Decimal(100), gettext_lazy("A percentage off is at most 100."))],
        # xgettext:no-python-format
        help_text=_("Percentage coupons: e.g. 25 for 25 % off (more than 0, at most 100)."),
        verbose_name=_("percent off"),
    )
    duration = models.CharField(
        max_length=16, choices=CouponDuration.choices, default=CouponDuration.ONCE, verbose_name=_("duration")
    )
    duration_in_periods = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("Repeating coupons: how many invoices each redemption discounts."),
        verbose_name=_("duration in periods"),
    )
    max_redemptions = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("How many times the coupon can be redeemed in all; empty for no limit."),
        verbose_name=_("max redemptions"),
    )
    redeem_by = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("The coupon cannot be redeemed from this moment on (UTC); empty for never."),
        verbose_name=_("redeem by"),
    )
    products = models.ManyToManyField(
        Product,
        blank=True,
        related_name="coupons",
        help_text=_("The products it discounts; none selected means every product."),
        verbose_name=_("products"),
    )
    is_archived = models.BooleanField(
        default=False,
        help_text=_("Archived coupons cannot be redeemed; discounts already given keep applying."),
        verbose_name=_("is archived"),
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["code"],
                name="coupon_code_unique",
                violation_error_code="unique",
                violation_error_message=gettext_lazy("A coupon with this code already exists."),
            ),
            models.CheckConstraint(
                condition=Q(discount_type=DiscountType.PERCENTAGE, percent_off__gt=0, percent_off__lte=100)
                | Q(discount_type=DiscountType.FIXED_AMOUNT, percent_off__isnull=True),
                name="coupon_percent_off_only_on_percentage",
                violation_error_message=gettext_lazy(
                    # xgettext:no-python-format
                    "A percentage coupon takes between 0 (excluded) and 100 % off; a fixed-amount coupon has "
                    "no percentage."
                ),
            ),
            models.CheckConstraint(
                condition=Q(duration=CouponDuration.REPEATING, duration_in_periods__gte=1)
                | ~Q(duration=CouponDuration.REPEATING) & Q(duration_in_periods__isnull=True),
                name="coupon_periods_only_on_repeating",
                violation_error_message=gettext_lazy(
                    "A repeating coupon lasts at least one period; other coupons have no number of periods."
                ),
            ),
            models.CheckConstraint(
                condition=Q(max_redemptions__isnull=True) | Q(max_redemptions__gte=1),
                name="coupon_max_redemptions_positive",
                violation_error_message=gettext_lazy("The redemption limit is at least 1 (empty for no limit)."),
            ),
        ]
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @property
    def is_percentage(self) -> bool:
        return self.discount_type == DiscountType.PERCENTAGE

    @property
    def period_limit(self) -> int | None:
        """How many invoices one redemption discounts; None for forever."""
        if self.duration == CouponDuration.ONCE:
            return 1
        if self.duration == CouponDuration.REPEATING:
            return self.duration_in_periods
        return None

    def amount_for(self, currency: str) -> "CouponAmount | None":
        """The amount off in `currency` (uses prefetched amounts when loaded)."""
        return next((amount for amount in self.amounts.all() if amount.currency == currency), None)

    def applies_to_product(self, product_id: int) -> bool:
        """Whether the coupon discounts this product (uses prefetched products when loaded)."""
        products = list(self.products.all())
        return not products or any(product.pk == product_id for product in products)


class CouponAmount(models.Model):
    """A fixed-amount coupon's amount off in one currency."""

    coupon = models.ForeignKey(Coupon, on_delete=models.CASCADE, related_name="amounts", verbose_name=_("coupon"))
    currency = models.CharField(max_length=3, choices=currency_choices, verbose_name=_("currency"))
    amount_off = _amount_field(_("The amount taken off an invoice in this currency."), verbose_name=_("amount off"))

    class Meta:
        ordering = ["coupon", "currency"]
        constraints = [
            models.UniqueConstraint(
                fields=["coupon", "currency"],
                name="coupon_amount_currency_unique",
                violation_error_message=gettext_lazy("This coupon already has an amount in this currency."),
            ),
            models.CheckConstraint(
                condition=Q(amount_off__gte=0),
                name="coupon_amount_not_negative",
                violation_error_message=gettext_lazy("The amount off cannot be negative."),
            ),
        ]
        verbose_name = _("coupon amount")
        verbose_name_plural = _("coupon amounts")

    def __str__(self) -> str:
        return gettext("%(amount)s %(currency)s off") % {"amount": self.amount_off, "currency": self.currency}

    @property
    def amount_off_money(self) -> Money:
        return Money(self.amount_off, self.currency)


def metric_filters_problems(filters: object) -> list[str]:
    """What is wrong with a metric's filters ({"property": ["allowed", "values"]}); empty when valid."""
    if not isinstance(filters, dict):
        return [gettext('Give filters as {"property": ["allowed", "values"]}.')]
    problems = []
    for name, values in filters.items():
        if not isinstance(name, str) or not property_name_validator.regex.match(name) or len(name) > 64:
            problems.append(
                gettext("%(name)r is not a property name: use letters, digits, '.', '_' and '-' only.") % {"name": name}
            )
        elif not isinstance(values, list) or not values:
            problems.append(gettext('Filter "%(name)s": give a non-empty list of allowed values.') % {"name": name})
        elif not all(isinstance(value, str) and value for value in values):
            problems.append(gettext('Filter "%(name)s": allowed values are non-empty strings.') % {"name": name})
        elif len(set(values)) != len(values):
            problems.append(gettext('Filter "%(name)s": a value is listed twice.') % {"name": name})
    return problems


_AGGREGATION_VALUES = frozenset(MetricAggregation.values)


class BillableMetric(TimeStampedModel):
    """What usage charges count: an aggregation of a period's usage events with the same metric code.

    `count` counts events; `sum`, `max` and `latest` aggregate the number in the event property
    `field_name`; `unique_count` counts the distinct values of that property; `weighted_sum` weighs
    each level of that property (a gauge) by the time it held, in `time_unit`; `percentile` takes the
    `percentile`th percentile of the sums of that property per `interval_minutes`. Events must match every
    filter (property → allowed values) to be accepted; with `group_by` (one property, or two separated
    by a comma), each value (or pair of values) is aggregated and priced separately, and a usage charge
    may price each group differently (dimension prices). See docs/usage.md and docs/pricing.md.
    """

    code = models.CharField(
        max_length=64,
        validators=[code_validator],
        help_text=_('What usage events name, e.g. "api_calls".'),
        verbose_name=_("code"),
    )
    name = models.CharField(
        max_length=255, help_text=_('Shown to staff and on invoices, e.g. "API calls".'), verbose_name=_("name")
    )
    description = models.TextField(blank=True, verbose_name=_("description"))
    aggregation = models.CharField(
        max_length=16, choices=MetricAggregation.choices, default=MetricAggregation.COUNT, verbose_name=_("aggregation")
    )
    field_name = models.CharField(
        max_length=64,
        blank=True,
        validators=[property_name_validator],
        help_text=_("The event property aggregated (every aggregation but count)."),
        verbose_name=_("field name"),
    )
    filters = models.JSONField(
        default=dict,
        blank=True,
        help_text=_('Only events whose properties have one of these values count, e.g. {"region": ["eu"]}.'),
        verbose_name=_("filters"),
    )
    group_by = models.CharField(
        max_length=129,
        blank=True,
        validators=[group_by_validator],
        help_text=_(
            "An event property whose values are aggregated and priced separately, e.g. region; or two, "
            "separated by a comma, e.g. region,tier."
        ),
        verbose_name=_("group by"),
    )
    lateness_window_days = models.PositiveSmallIntegerField(
        default=DEFAULT_LATENESS_WINDOW_DAYS,
        validators=[MaxValueValidator(MAX_LATENESS_WINDOW_DAYS)],
        help_text=_(
            "Events for a period already invoiced are accepted this many days after the period's end, and "
            "billed on the next invoice as late usage (0: never)."
        ),
        verbose_name=_("lateness window days"),
    )
    is_archived = models.BooleanField(
        default=False, help_text=_("Archived metrics take no new events."), verbose_name=_("is archived")
    )
    time_unit = models.CharField(
        max_length=8,
        choices=WeightedTimeUnit.choices,
        blank=True,
        help_text=_("Weighted sums: the time each level is weighted by (hour: GB-hours; month: GB-months)."),
        verbose_name=_("time unit"),
    )
    percentile = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_(
            "Percentile metrics: which percentile of the period's samples is billed, above 0 and at most 100 (e.g. 95)."
        ),
        verbose_name=_("percentile"),
    )
    interval_minutes = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text=_(
            "Percentile metrics: the length of a sample interval in minutes (a divisor of 60, e.g. 5); each "
            "sample is the sum of the property in its interval."
        ),
        verbose_name=_("interval minutes"),
    )

    class Meta:
        ordering = ["code", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["code"],
                name="billable_metric_code_unique",
                violation_error_code="unique",
                violation_error_message=gettext_lazy("A billable metric with this code already exists."),
            ),
            models.CheckConstraint(
                condition=Q(aggregation=MetricAggregation.COUNT, field_name="")
                | ~Q(aggregation=MetricAggregation.COUNT) & ~Q(field_name=""),
                name="billable_metric_field_unless_count",
                violation_error_message=gettext_lazy("Every aggregation but count needs a field name; count has none."),
            ),
            models.CheckConstraint(
                condition=Q(aggregation=MetricAggregation.WEIGHTED_SUM) & ~Q(time_unit="")
                | ~Q(aggregation=MetricAggregation.WEIGHTED_SUM) & Q(time_unit=""),
                name="billable_metric_time_unit_on_weighted_sum",
                violation_error_message=gettext_lazy("A weighted sum needs a time unit; other aggregations have none."),
            ),
            models.CheckConstraint(
                condition=Q(
                    aggregation=MetricAggregation.PERCENTILE,
                    percentile__gt=0,
                    percentile__lte=100,
                    interval_minutes__in=PERCENTILE_INTERVAL_MINUTES,
                )
                | ~Q(aggregation=MetricAggregation.PERCENTILE)
                & Q(percentile__isnull=True, interval_minutes__isnull=True),
                name="billable_metric_percentile_settings",
                violation_error_message=gettext_lazy(
                    "A percentile metric needs a percentile above 0 and at most 100 and an interval dividing "
                    "an hour; other aggregations have neither."
                ),
            ),
        ]
        verbose_name = _("billable metric")
        verbose_name_plural = _("billable metrics")

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @property
    def group_properties(self) -> list[str]:
        """The properties the metric groups by, in order (none, one or two)."""
        return [name for name in self.group_by.split(",") if name]

    def group_values(self, group_key: str) -> dict[str, str]:
        """The values a group key stands for: {"region": "eu", "tier": "gold"} ({} for no group)."""
        if not group_key:
            return {}
        names = self.group_properties or [self.group_by]
        values = group_key.split(GROUP_KEY_SEPARATOR) if len(names) > 1 else [group_key]
        return dict(zip(names, values, strict=False))

    def group_label(self, group_key: str) -> str:
        """A group for people: "region eu", or "region eu, tier gold" (empty for no group)."""
        return dimension_label(self.group_values(group_key))

    @property
    def aggregation_label(self) -> str:
        """The aggregation with its settings, for invoice explanations: "Count of events", "Time-weighted
        sum of a gauge property, per calendar month", "95th percentile of 5-minute sums of a property"."""
        # The choice's label, as `get_aggregation_display()` gives it, without hashing every choice's
        # lazy label (one translation each) on every call: invoice lines ask for it once per usage line.
        value = self.aggregation
        aggregation = str(MetricAggregation(value).label) if value in _AGGREGATION_VALUES else str(value)
        if self.aggregation == MetricAggregation.WEIGHTED_SUM and self.time_unit:
            per_unit = {
                WeightedTimeUnit.HOUR: gettext("%(aggregation)s, per hour"),
                WeightedTimeUnit.DAY: gettext("%(aggregation)s, per day"),
                WeightedTimeUnit.MONTH: gettext("%(aggregation)s, per calendar month"),
            }
            return per_unit[WeightedTimeUnit(self.time_unit)] % {"aggregation": aggregation}
        if self.aggregation == MetricAggregation.PERCENTILE and self.percentile is not None:
            number = format(self.percentile.normalize(), "f")
            values = {"number": number, "minutes": self.interval_minutes}
            if number.endswith(("11", "12", "13")) or number[-1] not in "123":
                return gettext("%(number)sth percentile of %(minutes)s-minute sums of a property") % values
            if number[-1] == "1":
                return gettext("%(number)sst percentile of %(minutes)s-minute sums of a property") % values
            if number[-1] == "2":
                return gettext("%(number)snd percentile of %(minutes)s-minute sums of a property") % values
            return gettext("%(number)srd percentile of %(minutes)s-minute sums of a property") % values
        return aggregation

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        names = self.group_properties
        if len(names) != len(set(names)):
            errors["group_by"] = [gettext("Name two different properties to group by.")]
        if self.aggregation == MetricAggregation.COUNT and self.field_name:
            errors["field_name"] = [gettext("Count counts events: leave the field name empty.")]
        elif self.aggregation != MetricAggregation.COUNT and not self.field_name:
            message = {
                MetricAggregation.SUM: gettext("Name the event property to sum."),
                MetricAggregation.MAX: gettext("Name the event property to take the highest value of."),
                MetricAggregation.UNIQUE_COUNT: gettext("Name the event property to count the distinct values of."),
                MetricAggregation.LATEST: gettext("Name the event property to take the latest value of."),
                MetricAggregation.WEIGHTED_SUM: gettext(
                    "Name the event property to weigh by time (a number, e.g. gb)."
                ),
                MetricAggregation.PERCENTILE: gettext(
                    "Name the event property to sum per interval (a number, e.g. mbps)."
                ),
            }.get(self.aggregation) or gettext("Name the event property to aggregate.")
            errors["field_name"] = [message]
        errors.update(self._aggregation_settings_errors())
        if problems := metric_filters_problems(self.filters):
            errors["filters"] = problems
        if errors:
            raise DjangoValidationError(errors)

    def _aggregation_settings_errors(self) -> dict[str, list[str]]:
        """The settings of the weighted sum (time unit) and the percentile (percentile, interval): each
        required by its aggregation, and left empty by the others."""
        errors: dict[str, list[str]] = {}
        if self.aggregation == MetricAggregation.WEIGHTED_SUM:
            if not self.time_unit:
                errors["time_unit"] = [gettext("A weighted sum needs a time unit: hour, day or month.")]
        elif self.time_unit:
            errors["time_unit"] = [gettext("Only a weighted sum has a time unit: leave it empty.")]
        if self.aggregation == MetricAggregation.PERCENTILE:
            if self.percentile is None:
                errors["percentile"] = [gettext("Give the percentile to bill, above 0 and at most 100 (e.g. 95).")]
            elif not Decimal(0) < self.percentile <= Decimal(100):
                errors["percentile"] = [gettext("A percentile is above 0 and at most 100.")]
            if self.interval_minutes is None:
                errors["interval_minutes"] = [gettext("Give the sample interval in minutes (e.g. 5).")]
            elif self.interval_minutes not in PERCENTILE_INTERVAL_MINUTES:
                allowed = ", ".join(str(minutes) for minutes in PERCENTILE_INTERVAL_MINUTES)
                errors["interval_minutes"] = [
                    gettext("The interval must divide an hour: one of %(allowed)s minutes.") % {"allowed": allowed}
                ]
        else:
            if self.percentile is not None:
                errors["percentile"] = [gettext("Only a percentile metric has a percentile: leave it empty.")]
            if self.interval_minutes is not None:
                errors["interval_minutes"] = [
                    gettext("Only a percentile metric has a sample interval: leave it empty.")
                ]
        return errors


# --- Features and what plan versions grant (docs/entitlements.md) -----------------------------------

BOOLEAN_WORDS = {"true": True, "on": True, "yes": True, "false": False, "off": False, "no": False}
# A granted value, typed by its feature's kind: on/off → bool, limit → int or "unlimited", value → str.
GrantValue = bool | int | str


def grant_value_normalize(kind: str, value: object) -> str:
    """The stored form of a grant's `value` for a feature of `kind` ("true"/"false", "10"/"unlimited",
    or the text). Raises Django's ValidationError with a message that says what the kind takes."""
    if kind == FeatureKind.BOOLEAN:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str) and value.strip().lower() in BOOLEAN_WORDS:
            return "true" if BOOLEAN_WORDS[value.strip().lower()] else "false"
        raise DjangoValidationError(gettext("An on/off feature takes true or false."), code="invalid")
    if kind == FeatureKind.LIMIT:
        if isinstance(value, str) and value.strip().lower() == UNLIMITED:
            return UNLIMITED
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            number = int(value.strip())
        if number is None or number < 0:
            raise DjangoValidationError(
                gettext('A limit is a whole number (0 or more) or "%(unlimited)s".') % {"unlimited": UNLIMITED},
                code="invalid",
            )
        if number > MAX_LIMIT:
            raise DjangoValidationError(
                gettext("A limit is at most %(max_limit)s.") % {"max_limit": MAX_LIMIT}, code="invalid"
            )
        return str(number)
    if kind == FeatureKind.VALUE:
        if not isinstance(value, str) or not value.strip():
            raise DjangoValidationError(gettext("A value feature takes non-empty text."), code="invalid")
        if len(value.strip()) > 255:
            raise DjangoValidationError(gettext("A value is at most 255 characters."), code="invalid")
        return value.strip()
    raise DjangoValidationError(gettext("Unknown feature kind."), code="invalid")


def grant_value_typed(kind: str, stored: str) -> GrantValue:
    """A stored grant value as the API gives it: true/false, a number or "unlimited", or the text."""
    if kind == FeatureKind.BOOLEAN:
        return stored == "true"
    if kind == FeatureKind.LIMIT:
        return UNLIMITED if stored == UNLIMITED else int(stored)
    return stored


class Feature(TimeStampedModel):
    """Something a plan can entitle a customer to: on/off (e.g. "SSO"), a limit (e.g. seats, projects;
    "unlimited" allowed), or a value (e.g. a support tier). Plan versions grant features
    (`FeatureGrant`); the seller's application reads what a customer is entitled to through the API."""

    code = models.CharField(
        max_length=64,
        validators=[code_validator],
        help_text=_('What the seller\'s application asks for, e.g. "seats".'),
        verbose_name=_("code"),
    )
    name = models.CharField(
        max_length=255,
        help_text=_('Shown to staff and on the portal\'s plan picker, e.g. "Seats".'),
        verbose_name=_("name"),
    )
    description = models.TextField(blank=True, verbose_name=_("description"))
    kind = models.CharField(
        max_length=16,
        choices=FeatureKind.choices,
        default=FeatureKind.BOOLEAN,
        help_text=_("Cannot change once a plan version grants the feature."),
        verbose_name=_("kind"),
    )

    class Meta:
        verbose_name = _("feature")
        verbose_name_plural = _("features")
        ordering = ["code", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["code"],
                name="feature_code_unique",
                violation_error_code="unique",
                violation_error_message=gettext_lazy("A feature with this code already exists."),
            ),
            models.CheckConstraint(
                condition=Q(kind__in=FeatureKind.values),
                name="feature_kind_known",
                violation_error_message=gettext_lazy("A feature is on/off, a limit or a value."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    def clean(self) -> None:
        if self.pk is not None:
            stored_kind = Feature.objects.filter(pk=self.pk).values_list("kind", flat=True).first()
            if stored_kind is not None and stored_kind != self.kind and self.grants.exists():
                raise DjangoValidationError(
                    {"kind": [gettext("Plan versions grant this feature: its kind cannot change.")]}, code="invalid"
                )


class FeatureGrant(models.Model):
    """A feature a plan version grants its subscribers, with its value (stored as text, normalized for the
    feature's kind by `grant_value_normalize`)."""

    plan_version = models.ForeignKey(
        PlanVersion, on_delete=models.CASCADE, related_name="feature_grants", verbose_name=_("plan version")
    )
    feature = models.ForeignKey(Feature, on_delete=models.PROTECT, related_name="grants", verbose_name=_("feature"))
    value = models.CharField(
        max_length=255,
        help_text=_('On/off: true or false. Limit: a whole number or "unlimited". Value: the text.'),
        verbose_name=_("value"),
    )

    class Meta:
        verbose_name = _("feature grant")
        verbose_name_plural = _("feature grants")
        ordering = ["plan_version", "feature__code", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["plan_version", "feature"],
                name="feature_grant_unique",
                violation_error_message=gettext_lazy("This version already grants this feature."),
            ),
        ]

    def __str__(self) -> str:
        feature = self.feature.code if self.feature_id else "feature"
        return f"{feature} = {self.value}"

    def clean(self) -> None:
        if self.feature_id is None:
            return
        try:
            self.value = grant_value_normalize(self.feature.kind, self.value)
        except DjangoValidationError as exc:
            raise DjangoValidationError({"value": exc.messages}, code="invalid") from exc

    @property
    def typed_value(self) -> GrantValue:
        return grant_value_typed(self.feature.kind, self.value)
