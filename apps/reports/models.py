"""Summary tables behind the finance dashboard.

Nothing here is a source of truth: every row is derived from subscriptions, invoices, credit notes
and payments by `apps.reports.services`, kept up to date by Celery (`reports_refresh_task`) and
rebuilt from scratch by `manage.py reports_rebuild`. The dashboard reads only these tables, so it
answers in constant time whatever the size of the billing history.
"""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from apps.core.money import currency_choices

from .constants import ReportScope


def _amount(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=19, decimal_places=4, default=0, **kwargs)


class MrrSegment(models.Model):
    """A stretch of time over which one subscription contributed the same MRR: its plan, quantity and
    recurring discounts did not change and it was neither trialing, paused nor ended. Rebuilt per
    subscription from its history (its events and discounts) whenever the subscription changes."""

    subscription = models.ForeignKey(
        "subscriptions.Subscription",
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
        verbose_name=_("subscription"),
    )
    customer = models.ForeignKey(
        "accounts.Customer", on_delete=models.CASCADE, related_name="+", db_constraint=False, verbose_name=_("customer")
    )
    currency = models.CharField(max_length=3, choices=currency_choices, verbose_name=_("currency"))
    product = models.ForeignKey(
        "catalog.Product", on_delete=models.CASCADE, related_name="+", db_constraint=False, verbose_name=_("product")
    )
    plan = models.ForeignKey(
        "catalog.Plan", on_delete=models.CASCADE, related_name="+", db_constraint=False, verbose_name=_("plan")
    )
    mrr = _amount(
        help_text=_("Monthly recurring revenue over the stretch, after recurring discounts."), verbose_name=_("mrr")
    )
    valid_from = models.DateTimeField(verbose_name=_("valid from"))
    valid_to = models.DateTimeField(
        null=True, blank=True, help_text=_("Empty while the stretch goes on."), verbose_name=_("valid to")
    )

    class Meta:
        ordering = ["subscription_id", "valid_from"]
        indexes = [models.Index(fields=["subscription"], name="mrr_segment_subscription_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gt=models.F("valid_from")),
                name="mrr_segment_not_empty",
            )
        ]
        verbose_name = _("MRR segment")
        verbose_name_plural = _("MRR segments")

    def __str__(self) -> str:
        return f"Subscription #{self.subscription_id}: {self.mrr} {self.currency} from {self.valid_from:%Y-%m-%d}"


class MrrMonth(models.Model):
    """MRR at the end of a month and how it moved during the month, per currency, for everything
    (`scope` all), one product or one plan (movements are counted per customer within the scope)."""

    month = models.DateField(help_text=_("First day of the month."), verbose_name=_("month"))
    currency = models.CharField(max_length=3, choices=currency_choices, verbose_name=_("currency"))
    scope = models.CharField(max_length=8, choices=ReportScope.choices, verbose_name=_("scope"))
    scope_id = models.PositiveBigIntegerField(
        default=0, help_text=_("The product or plan id; 0 for everything."), verbose_name=_("scope ID")
    )
    mrr = _amount(verbose_name=_("mrr"))
    customers = models.PositiveIntegerField(default=0, verbose_name=_("customers"))
    start_mrr = _amount(verbose_name=_("start mrr"))
    start_customers = models.PositiveIntegerField(default=0, verbose_name=_("start customers"))
    new_mrr = _amount(verbose_name=_("new mrr"))
    expansion_mrr = _amount(verbose_name=_("expansion mrr"))
    contraction_mrr = _amount(verbose_name=_("contraction mrr"))
    churned_mrr = _amount(verbose_name=_("churned mrr"))
    reactivation_mrr = _amount(verbose_name=_("reactivation mrr"))
    new_customers = models.PositiveIntegerField(default=0, verbose_name=_("new customers"))
    churned_customers = models.PositiveIntegerField(default=0, verbose_name=_("churned customers"))
    reactivated_customers = models.PositiveIntegerField(default=0, verbose_name=_("reactivated customers"))

    class Meta:
        ordering = ["scope", "scope_id", "currency", "month"]
        constraints = [
            models.UniqueConstraint(fields=["scope", "scope_id", "currency", "month"], name="mrr_month_unique"),
        ]
        permissions = [("view_finance_reports", "Can view the finance dashboard and export its reports")]
        verbose_name = _("MRR month")
        verbose_name_plural = _("MRR months")

    def __str__(self) -> str:
        return f"MRR {self.month:%Y-%m} {self.currency} ({self.scope} {self.scope_id})"


class RevenueMonth(models.Model):
    """Revenue recognized in a month and deferred revenue at its end, per currency, product and plan
    (both empty for lines that belong to no plan, such as manual lines)."""

    month = models.DateField(verbose_name=_("month"))
    currency = models.CharField(max_length=3, choices=currency_choices, verbose_name=_("currency"))
    product = models.ForeignKey(
        "catalog.Product",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
        verbose_name=_("product"),
    )
    plan = models.ForeignKey(
        "catalog.Plan",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
        verbose_name=_("plan"),
    )
    recognized = _amount(verbose_name=_("recognized"))
    deferred = _amount(
        help_text=_("Invoiced by the end of the month and not yet recognized."), verbose_name=_("deferred")
    )

    class Meta:
        ordering = ["currency", "month", "product_id", "plan_id"]
        indexes = [models.Index(fields=["month"], name="revenue_month_month_idx")]
        verbose_name = _("revenue month")
        verbose_name_plural = _("revenue months")

    def __str__(self) -> str:
        return f"Revenue {self.month:%Y-%m} {self.currency}"


class CashMonth(models.Model):
    """Invoiced, credited and collected amounts of a month, per currency (taxes included)."""

    month = models.DateField(verbose_name=_("month"))
    currency = models.CharField(max_length=3, choices=currency_choices, verbose_name=_("currency"))
    invoiced = _amount(
        help_text=_("Totals of the invoices issued in the month (void ones left out)."), verbose_name=_("invoiced")
    )
    invoice_count = models.PositiveIntegerField(default=0, verbose_name=_("invoice count"))
    credited = _amount(
        help_text=_("Totals of the credit notes issued in the month (void ones left out)."), verbose_name=_("credited")
    )
    collected = _amount(help_text=_("Succeeded payments received in the month."), verbose_name=_("collected"))
    collected_count = models.PositiveIntegerField(default=0, verbose_name=_("collected count"))
    refunded = _amount(help_text=_("Refunds that succeeded in the month."), verbose_name=_("refunded"))

    class Meta:
        ordering = ["currency", "month"]
        constraints = [models.UniqueConstraint(fields=["currency", "month"], name="cash_month_unique")]
        verbose_name = _("cash month")
        verbose_name_plural = _("cash months")

    def __str__(self) -> str:
        return f"Cash {self.month:%Y-%m} {self.currency}"


class ReceivablesAging(models.Model):
    """What customers owe on open invoices, by days past due, per currency, as of a day."""

    as_of = models.DateField(verbose_name=_("as of"))
    currency = models.CharField(max_length=3, choices=currency_choices, verbose_name=_("currency"))
    bucket = models.CharField(max_length=8, verbose_name=_("bucket"))
    amount_due = _amount(verbose_name=_("amount due"))
    invoice_count = models.PositiveIntegerField(default=0, verbose_name=_("invoice count"))

    class Meta:
        ordering = ["currency", "bucket"]
        constraints = [models.UniqueConstraint(fields=["currency", "bucket"], name="receivables_aging_unique")]
        verbose_name = _("receivables aging")
        verbose_name_plural = _("receivables aging")

    def __str__(self) -> str:
        return f"Receivables {self.currency} {self.bucket}"


class ReportRefresh(models.Model):
    """One refresh of the summary tables: what it looked at and how long it took. The last one is the
    watermark the next incremental refresh starts from."""

    started_at = models.DateTimeField(help_text=_("Wall-clock time the refresh began."), verbose_name=_("started at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))
    full = models.BooleanField(default=False, verbose_name=_("full"))
    as_of = models.DateTimeField(
        help_text=_("Business time the figures are as of (aging, open segments)."), verbose_name=_("as of")
    )
    from_month = models.DateField(
        null=True, blank=True, help_text=_("Revenue and cash rebuilt from this month on."), verbose_name=_("from month")
    )
    last_subscription_event_id = models.PositiveBigIntegerField(default=0, verbose_name=_("last subscription event ID"))
    subscriptions_resegmented = models.PositiveIntegerField(default=0, verbose_name=_("subscriptions resegmented"))
    duration_ms = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("duration (ms)"))

    class Meta:
        ordering = ["-started_at", "-id"]
        get_latest_by = "started_at"
        verbose_name = _("report refresh")
        verbose_name_plural = _("report refreshes")

    def __str__(self) -> str:
        return f"Reports refresh {self.started_at:%Y-%m-%d %H:%M}"
