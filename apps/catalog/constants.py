from django.db import models
from django.utils.translation import gettext_lazy, ngettext_lazy
from django.utils.translation import gettext_lazy as _


class BillingInterval(models.TextChoices):
    DAY = "day", _("Day")
    WEEK = "week", _("Week")
    MONTH = "month", _("Month")
    YEAR = "year", _("Year")


# How often a plan bills, as written on bills and plan pickers (`Plan.interval_label`), translated
# when used: "monthly", or "every 3 months" for an interval count above one.
INTERVAL_ADJECTIVES = {
    BillingInterval.DAY: gettext_lazy("daily"),
    BillingInterval.WEEK: gettext_lazy("weekly"),
    BillingInterval.MONTH: gettext_lazy("monthly"),
    BillingInterval.YEAR: gettext_lazy("yearly"),
}
INTERVAL_EVERY = {
    BillingInterval.DAY: ngettext_lazy("every %(count)d day", "every %(count)d days", "count"),
    BillingInterval.WEEK: ngettext_lazy("every %(count)d week", "every %(count)d weeks", "count"),
    BillingInterval.MONTH: ngettext_lazy("every %(count)d month", "every %(count)d months", "count"),
    BillingInterval.YEAR: ngettext_lazy("every %(count)d year", "every %(count)d years", "count"),
}


class ChargeKind(models.TextChoices):
    RECURRING = "recurring", _("Recurring (a fee per period, in advance or in arrears)")
    USAGE = "usage", _("Usage (billed in arrears)")


class BillingTiming(models.TextChoices):
    """When a recurring charge is billed: when its period begins (in advance) or when it ends (in
    arrears, with the period's usage). Usage charges are always billed in arrears."""

    IN_ADVANCE = "in_advance", _("In advance (when the period begins)")
    IN_ARREARS = "in_arrears", _("In arrears (when the period ends)")


class PriceModelChoice(models.TextChoices):
    """How a price turns a quantity into an amount (the math lives in `apps.catalog.pricing`)."""

    FLAT = "flat", _("Flat fee")
    PER_UNIT = "per_unit", _("Per unit")
    GRADUATED = "graduated", _("Graduated tiers")
    VOLUME = "volume", _("Volume tiers")
    PACKAGE = "package", _("Package")
    PERCENTAGE = "percentage", _("Percentage")
    GRADUATED_PERCENTAGE = "graduated_percentage", _("Graduated percentage")


class PriceTimeWindow(models.TextChoices):
    """Which hours of the day a usage charge's price is for, when the charge has peak hours."""

    ALL_HOURS = "", _("All hours (off-peak when the charge has peak hours)")
    PEAK = "peak", _("Peak hours")


class PackageRounding(models.TextChoices):
    """How a package price counts a partial package (`apps.catalog.pricing.PackageRounding`)."""

    UP = "up", _("Round up (a started package counts in full)")
    DOWN = "down", _("Round down (a partial package is free)")


# The one charge of a plan created with a plain fee per period (`plan_create(prices=...)`); its invoice
# line is titled after the plan alone.
SIMPLE_CHARGE_NAME = "Subscription fee"

TIERED_MODELS = frozenset({PriceModelChoice.GRADUATED, PriceModelChoice.VOLUME, PriceModelChoice.GRADUATED_PERCENTAGE})

# Price models that take a share of usage amounts: usage charges only.
USAGE_ONLY_MODELS = frozenset({PriceModelChoice.PERCENTAGE, PriceModelChoice.GRADUATED_PERCENTAGE})


class ThresholdScope(models.TextChoices):
    """What usage progressive billing thresholds are measured against (docs/billing-rules.md,
    "Progressive billing"): the current period's (each threshold fires once per period), or all of it since
    the subscription started (each fires once in the subscription's life; Lago's lifetime usage)."""

    PERIOD = "period", _("Usage of the period")
    LIFETIME = "lifetime", _("Usage since the subscription started")


class VersionMigrationTiming(models.TextChoices):
    NOW = "now", _("Now (from the next invoice on, including this period's usage)")
    NEXT_PERIOD = "next_period", _("At the start of the next period")


class DiscountType(models.TextChoices):
    PERCENTAGE = "percentage", _("Percentage off")
    FIXED_AMOUNT = "fixed_amount", _("Fixed amount off (per currency)")


class CouponDuration(models.TextChoices):
    """How many invoices a redeemed coupon discounts."""

    ONCE = "once", _("Once (the next invoice)")
    REPEATING = "repeating", _("Repeating (a number of periods)")
    FOREVER = "forever", _("Forever")


class TrialUsage(models.TextChoices):
    """What becomes of usage sent during a plan's free trial (see docs/usage.md, "Usage during a trial")."""

    FREE = "free", _("Free (shown at zero on the first invoice after the trial)")
    BILLED_AFTER_TRIAL = "billed_after_trial", _("Billed on the first invoice after the trial")


# Events for an invoiced period are accepted this many days after the period's end by default
# (`BillableMetric.lateness_window_days`), and at most this many (the oldest event accepted at all is
# `USAGE_EVENT_MAX_AGE_DAYS` old).
DEFAULT_LATENESS_WINDOW_DAYS = 3
MAX_LATENESS_WINDOW_DAYS = 31


class MetricAggregation(models.TextChoices):
    """How a billable metric turns a period's usage events into a quantity (see docs/usage.md)."""

    COUNT = "count", _("Count of events")
    SUM = "sum", _("Sum of a property")
    MAX = "max", _("Highest value of a property")
    UNIQUE_COUNT = "unique_count", _("Number of distinct values of a property")
    LATEST = "latest", _("Latest value of a property")
    WEIGHTED_SUM = "weighted_sum", _("Time-weighted sum of a gauge property")
    PERCENTILE = "percentile", _("Percentile of per-interval sums of a property")


# Aggregations over a numeric property: events must carry a number in the metric's field.
NUMERIC_AGGREGATIONS = frozenset(
    {
        MetricAggregation.SUM,
        MetricAggregation.MAX,
        MetricAggregation.LATEST,
        MetricAggregation.WEIGHTED_SUM,
        MetricAggregation.PERCENTILE,
    }
)


class WeightedTimeUnit(models.TextChoices):
    """The time a weighted sum is counted in: value × hours (GB-hours), days, or months (GB-months)."""

    HOUR = "hour", _("Hour (e.g. GB-hours)")
    DAY = "day", _("Day (e.g. GB-days)")
    # Each second weighs 1 / the number of seconds of its UTC calendar month (docs/usage.md).
    MONTH = "month", _("Calendar month (e.g. GB-months)")


# Percentile metrics: the length of a sample interval must divide an hour (intervals start on the
# UTC hour and never straddle two hours, so an hour's samples are rebuilt from that hour's events).
PERCENTILE_INTERVAL_MINUTES = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60)


class FeatureKind(models.TextChoices):
    """What a feature's grant holds (docs/entitlements.md)."""

    BOOLEAN = "boolean", _("On/off")
    LIMIT = "limit", _("Limit (a whole number, or unlimited)")
    VALUE = "value", _("Value (text)")


# A limit grant's value that means "no limit".
UNLIMITED = "unlimited"
# The largest limit a grant may hold (a sum of grants stays far below a 64-bit integer).
MAX_LIMIT = 10**12
