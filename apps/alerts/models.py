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
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Customer
from apps.catalog.models import BillableMetric
from apps.core.models import TimeStampedModel
from apps.subscriptions.models import Subscription

from .constants import THRESHOLD_DECIMAL_PLACES, THRESHOLD_MAX_DIGITS, AlertKind, AlertOrigin


class Alert(TimeStampedModel):
    """Thresholds on a customer's usage of a metric, or on its spend, in the current billing period;
    set by staff, or by the customer as a budget. Without a subscription it watches the customer."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="alerts")
    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="alerts",
        help_text="Watch this subscription only; empty: the customer as a whole.",
    )
    kind = models.CharField(max_length=16, choices=AlertKind.choices)
    metric = models.ForeignKey(
        BillableMetric,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Usage alerts: the metric whose period aggregate is watched.",
    )
    thresholds = models.JSONField(
        default=list,
        help_text='Ascending decimal strings, e.g. ["100", "500"]: usage units, or money in the '
        "customer's currency for spend alerts.",
    )
    name = models.CharField(max_length=255, blank=True)
    origin = models.CharField(max_length=16, choices=AlertOrigin.choices, default=AlertOrigin.STAFF)
    is_hard_limit = models.BooleanField(
        default=False,
        help_text="When the highest threshold is crossed, the customer's spend status says usage is blocked "
        "until the period ends (enforcing it is the seller's application's job).",
    )
    is_active = models.BooleanField(default=True, help_text="Inactive alerts are not evaluated.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
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
        return self.name or f"{self.get_kind_display()} alert #{self.pk}"

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

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="crossings")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    threshold = models.DecimalField(max_digits=THRESHOLD_MAX_DIGITS, decimal_places=THRESHOLD_DECIMAL_PLACES)
    value = models.DecimalField(
        max_digits=38, decimal_places=12, help_text="The usage or spend measured when it was crossed."
    )
    currency = models.CharField(max_length=3, blank=True, help_text="Spend alerts: the amount's currency.")
    period_start_at = models.DateTimeField()
    period_end_at = models.DateTimeField()
    crossed_at = models.DateTimeField(help_text="When the evaluation found it crossed (the customer's clock).")
    is_limit = models.BooleanField(default=False, help_text="The hard limit of the alert was reached.")
    notified_at = models.DateTimeField(null=True, blank=True, help_text="When the billing contacts were emailed.")
    recipients = models.JSONField(default=list, blank=True)

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
        return f"{self.alert}: {self.threshold_text} crossed"

    @property
    def threshold_text(self) -> str:
        return plain_decimal(self.threshold)

    @property
    def value_text(self) -> str:
        return plain_decimal(self.value)


def plain_decimal(value: Decimal) -> str:
    """A decimal as plain text without trailing zeros or an exponent: 100, 0.5, 49.06."""
    return format(value.normalize(), "f")
