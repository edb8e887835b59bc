"""Usage events and the rollups that keep their aggregation cheap.

`UsageEvent` rows are inserted by `services.usage_events_ingest`, and changed only by the corrections
of `corrections.py` (void: deleted; replace: updated), each recorded as a `UsageEventChange` and
rebuilding the rollups of its hours in the same transaction. Each event's transaction id is claimed
first in `UsageEventKey`, the one table that keeps transaction ids unique: on PostgreSQL the events
live in monthly partitions (`partitions.py`), whose keys must include the event time, so no index of
theirs can say that a transaction id is taken in another month. `UsageRollup`, `UsageDistinctValue` and
`UsageIntervalRollup` (percentile metrics) are derived from the events, kept up to date in the same
transaction as the insert, and answer any window made of whole hours (whole sample intervals); see
docs/usage.md for how the selectors combine them with raw events for partial hours.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Customer
from apps.catalog.models import BillableMetric

from .constants import VALUE_DECIMAL_PLACES, VALUE_MAX_DIGITS, UsageChangeKind


def _value_field(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=VALUE_MAX_DIGITS, decimal_places=VALUE_DECIMAL_PLACES, **kwargs)


class UsageEvent(models.Model):
    """One usage event as accepted: its idempotency key, who and what it is for, when it happened, and
    the values extracted from its properties at ingestion (so aggregation never parses JSON)."""

    transaction_id = models.CharField(
        max_length=255, help_text=_("The sender's idempotency key."), verbose_name=_("transaction ID")
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="usage_events", verbose_name=_("customer")
    )
    metric = models.ForeignKey(
        BillableMetric, on_delete=models.PROTECT, related_name="usage_events", verbose_name=_("metric")
    )
    occurred_at = models.DateTimeField(
        help_text=_("When the usage happened (UTC), as sent."), verbose_name=_("occurred at")
    )
    properties = models.JSONField(default=dict, blank=True, verbose_name=_("properties"))
    value = _value_field(
        null=True,
        blank=True,
        help_text=_("The number in the metric's field (sum, max and latest metrics)."),
        verbose_name=_("value"),
    )
    distinct_value = models.CharField(
        max_length=255,
        blank=True,
        help_text=_("The metric's field as text (unique-count metrics)."),
        verbose_name=_("distinct value"),
    )
    group_key = models.CharField(
        max_length=255,
        blank=True,
        help_text=_("The value of the metric's group property."),
        verbose_name=_("group key"),
    )
    received_at = models.DateTimeField(help_text=_("When the event was ingested."), verbose_name=_("received at"))

    class Meta:
        ordering = ["occurred_at", "id"]
        # No unique constraint on transaction_id: `UsageEventKey` holds it (the PostgreSQL table is
        # partitioned by month, and its primary key is (id, occurred_at); see docs/scaling.md).
        indexes = [
            # Every aggregation reads one customer's events of one metric in a time window.
            models.Index(fields=["customer", "metric", "occurred_at"], name="usage_event_window_idx"),
        ]
        verbose_name = _("usage event")
        verbose_name_plural = _("usage events")

    def __str__(self) -> str:
        return self.transaction_id


class UsageEventKey(models.Model):
    """A transaction id taken: by a stored event, a voided one, or one of an archived month. This is the
    current generation; on PostgreSQL older generations are kept beside it for a retention and then
    dropped (keys.py, docs/scaling.md "Rotating the transaction ids"): long enough that a retry of an
    expired id is refused as too late.

    Ingestion claims the key (`INSERT … ON CONFLICT (transaction_id) DO NOTHING`) before it stores the
    event, so an event is stored once across every month. The customer, metric and time say where the
    event is (its month's partition and the window index), for corrections that name only the
    transaction id. No foreign keys and no other index: each ingested event pays one narrow row and
    one B-tree entry here, instead of the unique index it had on the event table."""

    transaction_id = models.CharField(max_length=255, primary_key=True, verbose_name=_("transaction ID"))
    customer = models.ForeignKey(
        Customer,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
        verbose_name=_("customer"),
    )
    metric = models.ForeignKey(
        BillableMetric,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
        verbose_name=_("metric"),
    )
    occurred_at = models.DateTimeField(
        help_text=_("The event's time (after a replace, its new time)."), verbose_name=_("occurred at")
    )

    class Meta:
        verbose_name = _("usage event key")
        verbose_name_plural = _("usage event keys")

    def __str__(self) -> str:
        return self.transaction_id


class UsageRollup(models.Model):
    """The events of one customer, metric and group in one hour [hour, hour + 1 h), aggregated."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+", verbose_name=_("customer"))
    metric = models.ForeignKey(BillableMetric, on_delete=models.CASCADE, related_name="+", verbose_name=_("metric"))
    group_key = models.CharField(max_length=255, blank=True, verbose_name=_("group key"))
    hour = models.DateTimeField(help_text=_("Start of the hour (UTC)."), verbose_name=_("hour"))
    event_count = models.PositiveIntegerField(default=0, verbose_name=_("event count"))
    value_sum = models.DecimalField(
        max_digits=38, decimal_places=VALUE_DECIMAL_PLACES, default=0, verbose_name=_("value sum")
    )
    value_max = _value_field(null=True, blank=True, verbose_name=_("value max"))
    # The latest event of the hour, ordered by (occurred_at, id), exactly as the raw aggregation does.
    latest_at = models.DateTimeField(verbose_name=_("latest at"))
    latest_event_id = models.BigIntegerField(verbose_name=_("latest event ID"))
    latest_value = _value_field(null=True, blank=True, verbose_name=_("latest value"))
    # Weighted-sum metrics (a gauge: each event's value is the new level): the hour's first event, and
    # Σ value × seconds it held within the hour (until the hour's next event, or the end of the hour).
    # Rebuilt from the hour's events whenever one is added (docs/usage.md, "Weighted sum").
    first_at = models.DateTimeField(null=True, blank=True, verbose_name=_("first at"))
    level_seconds = models.DecimalField(
        max_digits=38, decimal_places=2 * VALUE_DECIMAL_PLACES, null=True, blank=True, verbose_name=_("level seconds")
    )

    class Meta:
        ordering = ["customer", "metric", "group_key", "hour"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "metric", "group_key", "hour"], name="usage_rollup_customer_metric_group_hour"
            ),
        ]
        indexes = [
            # A window's rollups of every group of a metric (the unique index above leads with the group).
            models.Index(fields=["customer", "metric", "hour"], name="usage_rollup_window_idx"),
        ]
        verbose_name = _("usage rollup")
        verbose_name_plural = _("usage rollups")

    def __str__(self) -> str:
        return f"{self.metric_id}/{self.customer_id}/{self.group_key or '-'} @ {self.hour:%Y-%m-%d %H:00}"


class UsageIntervalRollup(models.Model):
    """Percentile metrics: the sum of the property per customer, metric, group and sample interval
    [interval_start, interval_start + the metric's interval), intervals counted from the UTC hour.
    A period's samples are these sums, and zero for every interval without a row."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+", verbose_name=_("customer"))
    metric = models.ForeignKey(BillableMetric, on_delete=models.CASCADE, related_name="+", verbose_name=_("metric"))
    group_key = models.CharField(max_length=255, blank=True, verbose_name=_("group key"))
    interval_start = models.DateTimeField(
        help_text=_("Start of the sample interval (UTC)."), verbose_name=_("interval start")
    )
    event_count = models.PositiveIntegerField(default=0, verbose_name=_("event count"))
    value_sum = models.DecimalField(
        max_digits=38, decimal_places=VALUE_DECIMAL_PLACES, default=0, verbose_name=_("value sum")
    )

    class Meta:
        verbose_name = _("usage interval rollup")
        verbose_name_plural = _("usage interval rollups")
        ordering = ["customer", "metric", "group_key", "interval_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "metric", "group_key", "interval_start"], name="usage_interval_rollup_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "metric", "interval_start"], name="usage_interval_window_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.metric_id}/{self.customer_id}/{self.group_key or '-'} @ {self.interval_start:%Y-%m-%d %H:%M}"


class UsageDistinctValue(models.Model):
    """A value of a unique-count metric's field seen in one hour. Counting distinct values over the
    hours of a period gives the period's unique count exactly (a value seen in several hours counts
    once); a rollup of counts per hour could not."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+", verbose_name=_("customer"))
    metric = models.ForeignKey(BillableMetric, on_delete=models.CASCADE, related_name="+", verbose_name=_("metric"))
    group_key = models.CharField(max_length=255, blank=True, verbose_name=_("group key"))
    hour = models.DateTimeField(help_text=_("Start of the hour (UTC)."), verbose_name=_("hour"))
    value = models.CharField(max_length=255, verbose_name=_("value"))

    class Meta:
        ordering = ["customer", "metric", "group_key", "hour", "value"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "metric", "group_key", "hour", "value"], name="usage_distinct_value_unique"
            ),
        ]
        indexes = [models.Index(fields=["customer", "metric", "hour"], name="usage_distinct_window_idx")]
        verbose_name = _("usage distinct value")
        verbose_name_plural = _("usage distinct values")

    def __str__(self) -> str:
        return self.value


class UsageEventChange(models.Model):
    """The audit trail of usage changed after the fact, and the billing engine's to-do list.

    One row per late event accepted for a period already invoiced, per event voided and per event
    replaced (with the event as it was and as it is). `billed_period_end_at` is set when the change
    touches a period already invoiced: the next invoice of each subscription it concerns bills that
    subscription's difference (apps.billing.services.late_usage, recorded per subscription by
    `invoices.UsageChangeSettlement`), and the last of them sets `settled_at`. See docs/usage.md,
    "Late usage".
    """

    kind = models.CharField(max_length=16, choices=UsageChangeKind.choices, verbose_name=_("kind"))
    transaction_id = models.CharField(max_length=255, verbose_name=_("transaction ID"))
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="usage_changes", verbose_name=_("customer")
    )
    metric = models.ForeignKey(
        BillableMetric, on_delete=models.PROTECT, related_name="usage_changes", verbose_name=_("metric")
    )
    occurred_at = models.DateTimeField(
        help_text=_("When the usage changed happened (the event's time; after a replace, its new time)."),
        verbose_name=_("occurred at"),
    )
    previous_occurred_at = models.DateTimeField(
        null=True, blank=True, help_text=_("A replaced event's former time."), verbose_name=_("previous occurred at")
    )
    before = models.JSONField(
        null=True, blank=True, help_text=_("The event before the change (void, replace)."), verbose_name=_("before")
    )
    after = models.JSONField(
        null=True, blank=True, help_text=_("The event after the change (late, replace)."), verbose_name=_("after")
    )
    billed_period_end_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("The end of the invoiced period it changes, if any: billed on the next invoice."),
        verbose_name=_("billed period end at"),
    )
    recorded_at = models.DateTimeField(verbose_name=_("recorded at"))
    actor = models.CharField(
        max_length=255,
        blank=True,
        help_text=_("Who asked for the change (API key, staff user)."),
        verbose_name=_("actor"),
    )
    reason = models.TextField(blank=True, verbose_name=_("reason"))
    settled_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When an invoice took the difference in (null: still to bill)."),
        verbose_name=_("settled at"),
    )

    class Meta:
        ordering = ["-recorded_at", "-id"]
        indexes = [
            models.Index(
                fields=["customer", "metric"],
                condition=models.Q(settled_at__isnull=True, billed_period_end_at__isnull=False),
                name="usage_change_to_bill_idx",
            ),
            models.Index(fields=["transaction_id"], name="usage_change_transaction_idx"),
        ]
        verbose_name = _("usage event change")
        verbose_name_plural = _("usage event changes")

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.transaction_id}"
