"""Alerts on a customer's (or one subscription's) usage of a metric or spend in the current period,
and the record of each threshold crossed.

An `Alert` holds one or more thresholds. Each threshold crossed in a period is recorded once as an
`AlertCrossing`: a unique constraint on (alert, threshold, period start) makes a second record for the
same crossing impossible, whatever evaluates at the same time. The next period has a new start, so
every threshold is armed again. See docs/alerts.md.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Customer
from apps.catalog.models import BillableMetric
from apps.core.models import TimeStampedModel
from apps.subscriptions.models import Subscription

from .constants import THRESHOLD_DECIMAL_PLACES, THRESHOLD_MAX_DIGITS, AlertKind, AlertOrigin


class Alert(TimeStampedModel):
    """Thresholds on a customer's usage of a metric, or on its spend, in the current billing period;
    set by staff, or by the customer as a budget. Without a subscription it watches the customer."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="alerts", verbose_name=_("customer"))
    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="alerts",
        help_text=_("Watch this subscription only; empty: the customer as a whole."),
        verbose_name=_("subscription"),
    )
    kind = models.CharField(max_length=16, choices=AlertKind.choices, verbose_name=_("kind"))
    metric = models.ForeignKey(
        BillableMetric,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Usage alerts: the metric whose period aggregate is watched."),
        verbose_name=_("metric"),
    )
    thresholds = models.JSONField(
        default=list,
        help_text=_(
            'Ascending decimal strings, e.g. ["100", "500"]: usage units, or money in the '
            "customer's currency for spend alerts."
        ),
        verbose_name=_("thresholds"),
    )
    name = models.CharField(max_length=255, blank=True, verbose_name=_("name"))
    origin = models.CharField(
        max_length=16, choices=AlertOrigin.choices, default=AlertOrigin.STAFF, verbose_name=_("origin")
    )
    is_hard_limit = models.BooleanField(
        default=False,
        help_text=_(
            "When the highest threshold is crossed, the customer's spend status says usage is blocked "
            "until the period ends (enforcing it is the seller's application's job)."
        ),
        verbose_name=_("is hard limit"),
    )
    is_active = models.BooleanField(
        default=True, help_text=_("Inactive alerts are not evaluated."), verbose_name=_("is active")
    )
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
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        ordering = ["customer", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind=AlertKind.USAGE, metric__isnull=False) | Q(kind=AlertKind.SPEND, metric__isnull=True),
                name="alert_metric_only_on_usage",
                violation_error_message="Usage alerts need a metric; spend alerts have none.",
            ),
        ]
        indexes = [models.Index(fields=["customer", "is_active"], name="alert_customer_active_idx")]

    def __str__(self) -> str:
        return self.name or gettext("%(kind)s alert #%(id)s") % {"kind": self.get_kind_display(), "id": self.pk}

    @property
    def threshold_values(self) -> list[Decimal]:
        return [Decimal(value) for value in self.thresholds]

    @property
    def limit(self) -> Decimal | None:
        """The threshold that is the hard limit (the highest), when the alert is one."""
        values = self.threshold_values
        return max(values) if self.is_hard_limit and values else None


class AlertCrossing(models.Model):
    """One threshold of an alert crossed in one period: recorded once, emailed once, sent once as the
    `alert.triggered` webhook event (and `customer.limit_reached` when it is a hard limit)."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="crossings", verbose_name=_("alert"))
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+", verbose_name=_("customer"))
    threshold = models.DecimalField(
        max_digits=THRESHOLD_MAX_DIGITS, decimal_places=THRESHOLD_DECIMAL_PLACES, verbose_name=_("threshold")
    )
    value = models.DecimalField(
        max_digits=38,
        decimal_places=12,
        help_text=_("The usage or spend measured when it was crossed."),
        verbose_name=_("value"),
    )
    currency = models.CharField(
        max_length=3, blank=True, help_text=_("Spend alerts: the amount's currency."), verbose_name=_("currency")
    )
    period_start_at = models.DateTimeField(verbose_name=_("period start at"))
    period_end_at = models.DateTimeField(verbose_name=_("period end at"))
    crossed_at = models.DateTimeField(
        help_text=_("When the evaluation found it crossed (the customer's clock)."), verbose_name=_("crossed at")
    )
    is_limit = models.BooleanField(
        default=False, help_text=_("The hard limit of the alert was reached."), verbose_name=_("is limit")
    )
    notified_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When the billing contacts were emailed."), verbose_name=_("notified at")
    )
    recipients = models.JSONField(default=list, blank=True, verbose_name=_("recipients"))

    class Meta:
        verbose_name = _("alert crossing")
        verbose_name_plural = _("alert crossings")
        ordering = ["-crossed_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["alert", "threshold", "period_start_at"], name="alert_crossing_once_per_period"
            ),
        ]
        indexes = [models.Index(fields=["customer", "period_end_at"], name="alert_crossing_customer_idx")]

    def __str__(self) -> str:
        return gettext("%(alert)s: %(threshold)s crossed") % {"alert": self.alert, "threshold": self.threshold_text}

    @property
    def threshold_text(self) -> str:
        return plain_decimal(self.threshold)

    @property
    def value_text(self) -> str:
        return plain_decimal(self.value)


def plain_decimal(value: Decimal) -> str:
    """A decimal as plain text without trailing zeros or an exponent: 100, 0.5, 49.06."""
    return format(value.normalize(), "f")
