from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Abs, Length, Round
from django.db.models.lookups import Exact, LessThan
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_countries.fields import CountryField
from djmoney.models.fields import MoneyField
from djmoney.money import Money

from apps.accounts.constants import CollectionMethod
from apps.accounts.models import Customer
from apps.core.models import DomainEvent, TimeStampedModel
from apps.core.money import currency_choices, quantize_amount
from apps.core.money_format import money_text
from apps.subscriptions.models import Subscription
from apps.usage.models import UsageEventChange

from .constants import (
    FINALIZED_STATUSES,
    BillingReason,
    BillingRunStatus,
    BillingRunTrigger,
    CreditNoteLineKind,
    CreditNoteReason,
    CreditNoteStatus,
    InvoiceEventType,
    InvoiceLineKind,
    InvoiceStatus,
)


def _money(**kwargs) -> MoneyField:
    return MoneyField(
        max_digits=19, decimal_places=4, currency_choices=currency_choices, default_currency=None, **kwargs
    )


def invoice_pdf_path(invoice: "Invoice", filename: str) -> str:
    return f"invoices/{invoice.issued_at:%Y/%m}/{invoice.number}.pdf"


class Invoice(TimeStampedModel):
    """A bill. Drafts can change; from finalization on, every amount and detail is frozen."""

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="invoices", verbose_name=_("customer")
    )
    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.PROTECT,
        related_name="invoices",
        null=True,
        blank=True,
        verbose_name=_("subscription"),
    )
    status = models.CharField(
        max_length=16, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT, verbose_name=_("status")
    )
    billing_reason = models.CharField(
        max_length=24,
        choices=BillingReason.choices,
        default=BillingReason.SUBSCRIPTION_CYCLE,
        editable=False,
        verbose_name=_("billing reason"),
    )
    number = models.CharField(max_length=64, null=True, blank=True, editable=False, verbose_name=_("number"))
    period_start_at = models.DateTimeField(null=True, blank=True, verbose_name=_("period start at"))
    period_end_at = models.DateTimeField(null=True, blank=True, verbose_name=_("period end at"))
    subtotal = _money(verbose_name=_("subtotal"))
    tax_total = _money(verbose_name=_("tax total"))
    total = _money(verbose_name=_("total"))
    memo = models.TextField(blank=True, help_text=_("Printed on the bill."), verbose_name=_("memo"))
    reverse_charge = models.BooleanField(
        default=False,
        help_text=_("EU reverse charge: no VAT charged, the customer accounts for it (the bill says so)."),
        verbose_name=_("reverse charge"),
    )
    due_on = models.DateField(null=True, blank=True, verbose_name=_("due on"))
    # Collection: how the invoice is paid (the customer's setting, copied at finalization) and how much
    # of it succeeded payments have paid so far (apps.payments keeps it in step with its allocations).
    collection_method = models.CharField(
        max_length=24,
        choices=CollectionMethod.choices,
        default=CollectionMethod.SEND_INVOICE,
        editable=False,
        verbose_name=_("collection method"),
    )
    # Set to zero in the invoice's currency when the invoice is created (see `save`).
    amount_paid = _money(
        editable=False,
        help_text=_("Paid by the succeeded payments allocated to the invoice."),
        verbose_name=_("amount paid"),
    )
    issued_at = models.DateTimeField(null=True, blank=True, verbose_name=_("issued at"))
    auto_finalize_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("The billing run finalizes the draft from this moment on."),
        verbose_name=_("auto finalize at"),
    )
    paid_at = models.DateTimeField(null=True, blank=True, verbose_name=_("paid at"))
    voided_at = models.DateTimeField(null=True, blank=True, verbose_name=_("voided at"))
    marked_uncollectible_at = models.DateTimeField(null=True, blank=True, verbose_name=_("marked uncollectible at"))
    # Snapshots taken at finalization; the bill is rendered from these, never from live rows.
    seller_details = models.JSONField(default=dict, blank=True, editable=False, verbose_name=_("seller details"))
    customer_details = models.JSONField(default=dict, blank=True, editable=False, verbose_name=_("customer details"))
    # The PDF bill, rendered once and never replaced (a database trigger refuses any change once set).
    pdf = models.FileField(_("PDF bill"), upload_to=invoice_pdf_path, blank=True, editable=False)
    pdf_sha256 = models.CharField(
        _("PDF SHA-256"), max_length=64, blank=True, editable=False, help_text=_("SHA-256 of the stored file (hex).")
    )
    pdf_rendered_at = models.DateTimeField(_("PDF rendered at"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Exactly once: one invoice per subscription and period, whatever runs at once.
            models.UniqueConstraint(
                fields=["subscription", "period_start_at"],
                condition=Q(billing_reason="subscription_cycle"),
                name="invoice_subscription_period_unique",
                violation_error_message="This subscription already has an invoice for this period.",
            ),
            models.UniqueConstraint(fields=["number"], condition=Q(number__isnull=False), name="invoice_number_unique"),
            models.CheckConstraint(
                condition=Q(status=InvoiceStatus.DRAFT) | Q(status=InvoiceStatus.VOID) | Q(number__isnull=False),
                name="invoice_finalized_has_number",
            ),
            # Rounded to the fields' 4 decimals: exact on PostgreSQL, and SQLite's float sum (75.29 + 14.31 =
            # 89.60000000000001) does not refuse a correct total.
            models.CheckConstraint(
                condition=Q(total=Round(F("subtotal") + F("tax_total"), 4)), name="invoice_total_is_sum"
            ),
            models.CheckConstraint(
                condition=Q(subtotal_currency=F("total_currency")) & Q(tax_total_currency=F("total_currency")),
                name="invoice_single_currency",
            ),
            models.CheckConstraint(
                condition=Q(amount_paid__gte=0) & Q(amount_paid_currency=F("total_currency")),
                name="invoice_amount_paid_valid",
                violation_error_message="The amount paid is never negative and in the invoice's currency.",
            ),
            models.CheckConstraint(
                condition=Q(period_end_at__isnull=True) | Q(period_end_at__gt=F("period_start_at")),
                name="invoice_period_not_empty",
            ),
            # A stored PDF always has its hash and rendering time, and only a stored PDF has them.
            models.CheckConstraint(
                condition=(Q(pdf="") & Q(pdf_sha256="") & Q(pdf_rendered_at__isnull=True))
                | (~Q(pdf="") & Q(Exact(Length("pdf_sha256"), 64)) & Q(pdf_rendered_at__isnull=False)),
                name="invoice_pdf_has_sha256",
                violation_error_message="A stored PDF bill needs its SHA-256 and rendering time.",
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "-created_at"], name="invoice_customer_idx"),
            # The default order of every list (API, admin): the first page, and any page by cursor, read
            # the index instead of sorting the table; filtered by status the same.
            models.Index(fields=["-created_at", "-id"], name="invoice_created_idx"),
            models.Index(fields=["status", "-created_at", "-id"], name="invoice_status_created_idx"),
            models.Index(fields=["status", "due_on"], name="invoice_status_due_idx"),
            models.Index(fields=["issued_at"], name="invoice_issued_at_idx"),
            models.Index(
                fields=["auto_finalize_at"],
                name="invoice_draft_finalize_idx",
                condition=Q(status="draft"),
            ),
        ]
        verbose_name = _("invoice")
        verbose_name_plural = _("invoices")

    def __str__(self) -> str:
        return self.number or gettext("Draft #%(id)s") % {"id": self.pk}

    def save(self, *args, **kwargs) -> None:
        # A new invoice starts with nothing paid, in its own currency.
        if self.amount_paid is None and self.total is not None:
            self.amount_paid = Money(Decimal(0), self.total.currency)
        super().save(*args, **kwargs)

    @property
    def currency(self) -> str:
        return str(self.total.currency)

    @property
    def amount_due(self) -> Money:
        """What the customer still owes: the total, less what payments paid, less what credit notes
        took off (never below zero); nothing on a draft, a paid or a void invoice. Querysets from
        `apps.invoices.selectors.invoices_with_amount_due` carry the credit notes' part (no query
        per invoice); otherwise it is read here."""
        currency = self.currency
        if self.status not in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE):
            return Money(quantize_amount(Decimal(0), currency), currency)
        credited = getattr(self, "credit_notes_amount_due_reduction", None)
        if credited is None:
            credited = (
                self.credit_notes.filter(status=CreditNoteStatus.ISSUED).aggregate(
                    total=models.Sum("amount_due_reduction")
                )["total"]
                if self.pk
                else None
            )
        paid = self.amount_paid.amount if self.amount_paid is not None else Decimal(0)
        due = self.total.amount - paid - (credited or Decimal(0))
        return Money(quantize_amount(max(due, Decimal(0)), currency), currency)

    @property
    def is_draft(self) -> bool:
        return self.status == InvoiceStatus.DRAFT

    @property
    def is_finalized(self) -> bool:
        return self.status in FINALIZED_STATUSES or (self.status == InvoiceStatus.VOID and bool(self.number))


class TaxRate(TimeStampedModel):
    """A tax charged to customers in a country, or in one region (state) of it. An inclusive rate is
    already contained in the prices; an exclusive one is added on top."""

    name = models.CharField(
        max_length=128, help_text=_('Printed on the bill, e.g. "VAT" or "Sales tax".'), verbose_name=_("name")
    )
    percentage = models.DecimalField(
        max_digits=7,
        decimal_places=4,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        verbose_name=_("percentage"),
    )
    country = CountryField(verbose_name=_("country"))
    region = models.CharField(
        max_length=128,
        blank=True,
        help_text=_("State or region code (e.g. CA); empty for the whole country."),
        verbose_name=_("region"),
    )
    inclusive = models.BooleanField(
        default=False, help_text=_("Prices already include this tax."), verbose_name=_("inclusive")
    )
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))

    class Meta:
        ordering = ["country", "region", "name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(percentage__gte=0) & Q(percentage__lte=100), name="tax_rate_percentage_range"
            ),
        ]
        indexes = [models.Index(fields=["country", "region"], name="tax_rate_location_idx")]
        verbose_name = _("tax rate")
        verbose_name_plural = _("tax rates")

    def __str__(self) -> str:
        where = f"{self.country.code}-{self.region}" if self.region else str(self.country.code)
        return (
            f"{self.name} {self.percentage.normalize():f} % ({where}{gettext(', inclusive') if self.inclusive else ''})"
        )


class InvoiceTax(models.Model):
    """One tax rate's total on an invoice, snapshotted (name, percentage) so that editing the rate
    never changes an issued bill."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="taxes", verbose_name=_("invoice"))
    rate = models.ForeignKey(
        TaxRate, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("rate")
    )
    name = models.CharField(max_length=128, verbose_name=_("name"))
    percentage = models.DecimalField(max_digits=7, decimal_places=4, verbose_name=_("percentage"))
    inclusive = models.BooleanField(default=False, verbose_name=_("inclusive"))
    taxable_amount = _money(help_text=_("The net amount the tax is computed on."), verbose_name=_("taxable amount"))
    tax_amount = _money(verbose_name=_("tax amount"))

    class Meta:
        ordering = ["invoice", "id"]
        verbose_name_plural = _("invoice taxes")
        verbose_name = _("invoice tax")

    def __str__(self) -> str:
        return f"{self.name} {self.percentage.normalize():f} %"


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines", verbose_name=_("invoice"))
    position = models.PositiveIntegerField(default=0, verbose_name=_("position"))
    description = models.CharField(max_length=500, verbose_name=_("description"))
    period_start_at = models.DateTimeField(null=True, blank=True, verbose_name=_("period start at"))
    period_end_at = models.DateTimeField(null=True, blank=True, verbose_name=_("period end at"))
    kind = models.CharField(
        max_length=16, choices=InvoiceLineKind.choices, default=InvoiceLineKind.RECURRING, verbose_name=_("kind")
    )
    charge = models.ForeignKey(
        "catalog.Charge",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="invoice_lines",
        verbose_name=_("charge"),
    )
    # Set on invoices that group several subscriptions: the subscription the line bills.
    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        verbose_name=_("subscription"),
    )
    quantity = models.DecimalField(max_digits=19, decimal_places=6, verbose_name=_("quantity"))
    # Unit prices may carry more decimals than the currency (rounded only on the line amount). Empty
    # where no single unit price applies (tiers, packages, percentages): the explanation says how.
    unit_amount = MoneyField(
        max_digits=28,
        decimal_places=12,
        currency_choices=currency_choices,
        default_currency=None,
        null=True,
        blank=True,
        verbose_name=_("unit amount"),
    )
    amount = _money(verbose_name=_("amount"))
    explanation = models.JSONField(
        default=list,
        blank=True,
        help_text=_("How the amount was computed, one sentence per step (printed on the bill)."),
        verbose_name=_("explanation"),
    )
    # A one-off charge may name its product and its own tax rate (instead of the customer's).
    product = models.ForeignKey(
        "catalog.Product",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        verbose_name=_("product"),
    )
    tax_rate = models.ForeignKey(
        TaxRate,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        help_text=_("Taxed at this rate instead of the customer's (exempt and reverse-charged customers pay none)."),
        verbose_name=_("tax rate"),
    )

    class Meta:
        ordering = ["invoice", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(unit_amount_currency=F("amount_currency")), name="invoice_line_single_currency"
            ),
        ]
        indexes = [
            models.Index(
                fields=["subscription"], name="invoice_line_subscription_idx", condition=Q(subscription__isnull=False)
            )
        ]
        verbose_name = _("invoice line")
        verbose_name_plural = _("invoice lines")

    def __str__(self) -> str:
        return self.description


class InvoicedPeriod(models.Model):
    """A subscription period billed by the billing run, and the invoice that bills it: one row per
    period, whether the invoice bills that subscription alone or groups several (one invoice per
    customer and renewal date). Its unique constraint is what bills a period once, whichever way.

    A period whose billing came to no line at all (a usage-only plan's first period, which bills
    nothing in advance, or a period without usage) is recorded without an invoice (`billed_at` says
    when): no empty invoice is made, and the period is still billed exactly once."""

    invoice = models.ForeignKey(
        Invoice,
        on_delete=models.CASCADE,
        related_name="invoiced_periods",
        null=True,
        blank=True,
        verbose_name=_("invoice"),
    )
    billed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When the period was billed (set when it came to no invoice)."),
        verbose_name=_("billed at"),
    )
    # Looked up through the unique (subscription, period start) index: no index of its own.
    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.PROTECT,
        related_name="invoiced_periods",
        db_index=False,
        verbose_name=_("subscription"),
    )
    period_start_at = models.DateTimeField(verbose_name=_("period start at"))
    period_end_at = models.DateTimeField(verbose_name=_("period end at"))

    class Meta:
        ordering = ["invoice_id", "subscription_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "period_start_at"],
                name="invoiced_period_unique",
                violation_error_message="This subscription already has an invoice for this period.",
            ),
            models.CheckConstraint(
                condition=Q(period_end_at__gt=F("period_start_at")), name="invoiced_period_not_empty"
            ),
        ]
        verbose_name = _("invoiced period")
        verbose_name_plural = _("invoiced periods")

    def __str__(self) -> str:
        return gettext("Subscription #%(subscription)s from %(start)s") % {
            "subscription": self.subscription_id,
            "start": f"{self.period_start_at:%Y-%m-%d}",
        }


class UsageChangeSettlement(models.Model):
    """A usage change (late event, void, replace of an invoiced period) taken in by one subscription's
    invoice: that subscription's difference for the period is billed, or it had none. A change can
    concern several subscriptions of the customer — each member of a pool, whose share of the pool
    an event can move — and each settles it on its own next invoice; the change is `settled_at` once
    every subscription it concerns has (apps.billing.services.late_usage, docs/usage.md)."""

    change = models.ForeignKey(
        UsageEventChange, on_delete=models.PROTECT, related_name="settlements", verbose_name=_("usage change")
    )
    # Looked up through the unique (subscription, change) index: no index of its own.
    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.PROTECT,
        related_name="usage_change_settlements",
        db_index=False,
        verbose_name=_("subscription"),
    )
    settled_at = models.DateTimeField(verbose_name=_("settled at"))

    class Meta:
        ordering = ["change_id", "subscription_id"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "change"], name="usage_change_settlement_unique"),
        ]
        verbose_name = _("usage change settlement")
        verbose_name_plural = _("usage change settlements")

    def __str__(self) -> str:
        return gettext("Change #%(change)s settled by subscription #%(subscription)s") % {
            "change": self.change_id,
            "subscription": self.subscription_id,
        }


class ProgressiveCrossing(models.Model):
    """Progressive billing: a threshold of a subscription's period reached by its usage amount to date,
    and the interim invoice that billed it (docs/billing-rules.md, "Progressive billing"). Its unique
    constraint on (subscription, period start, threshold) makes a second interim invoice for the same
    crossing impossible, whoever evaluates at the same time. `deducted_by` is the invoice that closed
    the period and took the interim invoice's usage off."""

    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="progressive_crossings", verbose_name=_("subscription")
    )
    period_start_at = models.DateTimeField(verbose_name=_("period start at"))
    period_end_at = models.DateTimeField(verbose_name=_("period end at"))
    threshold = models.DecimalField(max_digits=19, decimal_places=6, verbose_name=_("threshold"))
    currency = models.CharField(max_length=3, choices=currency_choices, verbose_name=_("currency"))
    usage_amount = models.DecimalField(
        max_digits=19,
        decimal_places=4,
        help_text=_("The period's usage amount to date when the threshold was reached (before tax)."),
        verbose_name=_("usage amount to date"),
    )
    billed_amount = models.DecimalField(
        max_digits=19,
        decimal_places=4,
        help_text=_("What the interim invoice billed: the usage to date less earlier interim invoices."),
        verbose_name=_("billed amount"),
    )
    crossed_at = models.DateTimeField(verbose_name=_("crossed at"))
    invoice = models.OneToOneField(
        Invoice,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="progressive_crossing",
        verbose_name=_("interim invoice"),
    )
    deducted_by = models.ForeignKey(
        Invoice,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="progressive_deductions",
        verbose_name=_("deducted by"),
    )

    class Meta:
        ordering = ["subscription", "period_start_at", "threshold"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "period_start_at", "threshold"],
                name="progressive_crossing_unique",
                violation_error_message="This threshold of this period was already billed.",
            ),
        ]
        verbose_name = _("progressive billing crossing")
        verbose_name_plural = _("progressive billing crossings")

    def __str__(self) -> str:
        return gettext("Subscription #%(subscription)s: %(threshold)s") % {
            "subscription": self.subscription_id,
            "threshold": money_text(self.threshold, self.currency),
        }


class InvoiceItem(models.Model):
    """A line waiting for the subscription's next invoice (e.g. the proration of a mid-period change),
    like Stripe's pending invoice items. `invoice` is set when an invoice takes it."""

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="invoice_items", verbose_name=_("customer")
    )
    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.PROTECT,
        related_name="invoice_items",
        null=True,
        blank=True,
        verbose_name=_("subscription"),
    )
    invoice = models.ForeignKey(
        "Invoice",
        on_delete=models.SET_NULL,
        related_name="items",
        null=True,
        blank=True,
        editable=False,
        verbose_name=_("invoice"),
    )
    kind = models.CharField(
        max_length=16, choices=InvoiceLineKind.choices, default=InvoiceLineKind.PRORATION, verbose_name=_("kind")
    )
    charge = models.ForeignKey(
        "catalog.Charge", on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("charge")
    )
    description = models.CharField(max_length=500, verbose_name=_("description"))
    period_start_at = models.DateTimeField(null=True, blank=True, verbose_name=_("period start at"))
    period_end_at = models.DateTimeField(null=True, blank=True, verbose_name=_("period end at"))
    quantity = models.DecimalField(max_digits=19, decimal_places=6, default=1, verbose_name=_("quantity"))
    unit_amount = MoneyField(
        max_digits=28,
        decimal_places=12,
        currency_choices=currency_choices,
        default_currency=None,
        null=True,
        blank=True,
        verbose_name=_("unit amount"),
    )
    amount = _money(verbose_name=_("amount"))
    explanation = models.JSONField(default=list, blank=True, verbose_name=_("explanation"))
    created_at = models.DateTimeField(verbose_name=_("created at"))
    product = models.ForeignKey(
        "catalog.Product",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        verbose_name=_("product"),
    )
    tax_rate = models.ForeignKey(
        TaxRate,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        verbose_name=_("tax rate"),
        help_text=_("Taxed at this rate instead of the customer's (exempt and reverse-charged customers pay none)."),
    )
    updated_at = models.DateTimeField(null=True, blank=True, editable=False, verbose_name=_("updated at"))
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
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["subscription"], name="invoice_item_pending_idx", condition=Q(invoice__isnull=True)),
            models.Index(
                fields=["customer", "created_at"],
                name="invoice_item_customer_idx",
                condition=Q(invoice__isnull=True),
            ),
        ]
        constraints = [
            # A one-off charge is a charge: never below zero (credits come from credit notes).
            models.CheckConstraint(
                condition=~Q(kind="one_off") | (Q(quantity__gt=0) & Q(amount__gte=0)),
                name="invoice_item_one_off_not_negative",
            ),
        ]
        verbose_name = _("invoice item")
        verbose_name_plural = _("invoice items")

    def __str__(self) -> str:
        return self.description

    @property
    def is_pending(self) -> bool:
        return self.invoice_id is None

    @property
    def currency(self) -> str:
        return str(self.amount.currency)


class InvoiceNumberSequence(models.Model):
    """A gapless counter per number series, locked row by row during finalization."""

    key = models.CharField(max_length=64, verbose_name=_("key"))
    last_value = models.PositiveBigIntegerField(default=0, verbose_name=_("last value"))

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key"], name="invoice_number_sequence_key_unique")]
        verbose_name = _("invoice number sequence")
        verbose_name_plural = _("invoice number sequences")

    def __str__(self) -> str:
        return f"{self.key}: {self.last_value}"


class InvoiceEvent(DomainEvent):
    """Append-only audit trail of everything that happened to an invoice."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="events", verbose_name=_("invoice"))
    type = models.CharField(max_length=32, choices=InvoiceEventType.choices, verbose_name=_("type"))

    class Meta(DomainEvent.Meta):
        verbose_name = _("invoice event")
        verbose_name_plural = _("invoice events")


class BillingRun(models.Model):
    """One pass of the billing engine: what it saw, what it did, what went wrong."""

    as_of = models.DateTimeField(
        help_text=_("Subscriptions due at or before this moment were billed."), verbose_name=_("as of")
    )
    trigger = models.CharField(max_length=16, choices=BillingRunTrigger.choices, verbose_name=_("trigger"))
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("triggered by"),
    )
    test_clock = models.ForeignKey(
        "accounts.SimulatedClock",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="billing_runs",
        help_text=_("Runs of a test clock bill only its customers; all other runs leave them alone."),
        verbose_name=_("test clock"),
    )
    status = models.CharField(
        max_length=24, choices=BillingRunStatus.choices, default=BillingRunStatus.RUNNING, verbose_name=_("status")
    )
    started_at = models.DateTimeField(verbose_name=_("started at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))
    due_count = models.PositiveIntegerField(
        default=0, help_text=_("Subscriptions found due."), verbose_name=_("due count")
    )
    invoiced_count = models.PositiveIntegerField(
        default=0, help_text=_("Invoices created."), verbose_name=_("invoiced count")
    )
    skipped_count = models.PositiveIntegerField(
        default=0,
        help_text=_("Subscriptions already billed or being billed by another run."),
        verbose_name=_("skipped count"),
    )
    ended_count = models.PositiveIntegerField(
        default=0, help_text=_("Subscriptions ended at period end."), verbose_name=_("ended count")
    )
    failed_count = models.PositiveIntegerField(default=0, verbose_name=_("failed count"))
    finalized_count = models.PositiveIntegerField(
        default=0, help_text=_("Draft invoices finalized."), verbose_name=_("finalized count")
    )
    errors = models.JSONField(default=list, blank=True, verbose_name=_("errors"))
    # Progress of the chunks the run was split into (each billed by a Celery task on the `billing`
    # queue, or one after the other when the run is not fanned out).
    chunk_count = models.PositiveIntegerField(default=0, verbose_name=_("chunk count"))
    chunks_done = models.PositiveIntegerField(default=0, verbose_name=_("chunks done"))
    processed_count = models.PositiveIntegerField(
        default=0, help_text=_("Due subscriptions looked at so far."), verbose_name=_("processed count")
    )
    # Wall-clock bookkeeping (not business time: a run as of a test clock's moment still takes real time).
    created_at = models.DateTimeField(auto_now_add=True, editable=False, null=True, verbose_name=_("created at"))
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text=_("Last chunk finished."), verbose_name=_("heartbeat at")
    )
    duration_ms = models.PositiveBigIntegerField(null=True, blank=True, editable=False, verbose_name=_("duration (ms)"))
    statement_count = models.PositiveBigIntegerField(
        _("SQL statements"), default=0, editable=False, help_text=_("Statements the chunks sent to the database.")
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = _("billing run")
        verbose_name_plural = _("billing runs")

    def __str__(self) -> str:
        return gettext("Billing run %(id)s as of %(as_of)s (%(status)s)") % {
            "id": self.pk,
            "as_of": f"{self.as_of:%Y-%m-%d %H:%M}",
            "status": self.get_status_display(),
        }

    @property
    def duration_seconds(self) -> float | None:
        if self.duration_ms is not None:
            return self.duration_ms / 1000
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def statements_per_invoice(self) -> float | None:
        return self.statement_count / self.invoiced_count if self.invoiced_count else None

    @property
    def progress_percent(self) -> int:
        if not self.due_count:
            return 100 if self.finished_at else 0
        return min(100, self.processed_count * 100 // self.due_count)


# Half of the columns' last decimal: sums compare exactly on PostgreSQL (NUMERIC) and still hold on
# SQLite, which adds decimals as binary floats (33.34 + 6.34 ≠ 39.68 there).
_SUM_TOLERANCE = Value(Decimal("0.00005"))


def _equals(left, right) -> LessThan:
    return LessThan(Abs(left - right), _SUM_TOLERANCE)


def credit_note_pdf_path(credit_note: "CreditNote", filename: str) -> str:
    return f"credit_notes/{credit_note.issued_at:%Y/%m}/{credit_note.number}.pdf"


class CreditNote(TimeStampedModel):
    """The one way to correct an issued invoice: it credits some or all of the invoice (lines, taxes)
    without changing it, and says how the credit is settled. Frozen once issued (database triggers),
    like the invoice; only its status (void), its PDF (once) and its balance-credit link change."""

    invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, related_name="credit_notes", verbose_name=_("invoice")
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="credit_notes", verbose_name=_("customer")
    )
    number = models.CharField(max_length=64, editable=False, verbose_name=_("number"))
    status = models.CharField(
        max_length=16, choices=CreditNoteStatus.choices, default=CreditNoteStatus.ISSUED, verbose_name=_("status")
    )
    reason = models.CharField(max_length=32, choices=CreditNoteReason.choices, verbose_name=_("reason"))
    memo = models.TextField(blank=True, help_text=_("Printed on the credit note."), verbose_name=_("memo"))
    subtotal = _money(verbose_name=_("subtotal"))
    tax_total = _money(
        help_text=_("Tax credited on top of the lines (exclusive rates only)."), verbose_name=_("tax total")
    )
    total = _money(help_text=_("Everything credited: subtotal plus tax."), verbose_name=_("total"))
    # How the total is settled: the three parts add up to the total.
    amount_due_reduction = _money(
        help_text=_("Taken off what is still due on the (unpaid) invoice."), verbose_name=_("amount due reduction")
    )
    credit_to_balance = _money(
        help_text=_("Credited to the customer's balance, taken off their next invoices."),
        verbose_name=_("credit to balance"),
    )
    refund_amount = _money(
        help_text=_("Paid back to the customer (recorded here; paid outside the product)."),
        verbose_name=_("refund amount"),
    )
    refund_reference = models.CharField(
        max_length=255, blank=True, help_text=_("E.g. the bank transfer reference."), verbose_name=_("refund reference")
    )
    # In the credit note's currency; not part of its total (the invoice's balance credit was no payment).
    balance_returned = models.DecimalField(
        max_digits=19,
        decimal_places=4,
        default=0,
        editable=False,
        help_text=_(
            "The share of the money-balance credit applied on the invoice that this credit note put back on the "
            "customer's balance (in proportion to the charges credited)."
        ),
        verbose_name=_("balance credit given back"),
    )
    balance_item = models.OneToOneField(
        InvoiceItem,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="credit_note",
        help_text=_("The customer credit this note created, while some of it is waiting."),
        verbose_name=_("balance item"),
    )
    reverse_charge = models.BooleanField(default=False, verbose_name=_("reverse charge"))
    issued_at = models.DateTimeField(verbose_name=_("issued at"))
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        verbose_name=_("issued by"),
    )
    voided_at = models.DateTimeField(null=True, blank=True, verbose_name=_("voided at"))
    seller_details = models.JSONField(default=dict, blank=True, editable=False, verbose_name=_("seller details"))
    customer_details = models.JSONField(default=dict, blank=True, editable=False, verbose_name=_("customer details"))
    pdf = models.FileField(_("PDF"), upload_to=credit_note_pdf_path, blank=True, editable=False)
    pdf_sha256 = models.CharField(_("PDF SHA-256"), max_length=64, blank=True, editable=False)
    pdf_rendered_at = models.DateTimeField(_("PDF rendered at"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-issued_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["number"], name="credit_note_number_unique"),
            models.CheckConstraint(
                condition=_equals(F("total"), F("subtotal") + F("tax_total")), name="credit_note_total_is_sum"
            ),
            models.CheckConstraint(
                condition=_equals(F("total"), F("amount_due_reduction") + F("credit_to_balance") + F("refund_amount")),
                name="credit_note_settled_in_full",
            ),
            models.CheckConstraint(
                # 0.00 only for a credit note of an invoice prepaid credits paid in full: it gives
                # the credits back to the wallets and credits no money (docs/credits.md).
                condition=Q(total__gte=0)
                & Q(amount_due_reduction__gte=0)
                & Q(credit_to_balance__gte=0)
                & Q(refund_amount__gte=0),
                name="credit_note_amounts_positive",
            ),
            models.CheckConstraint(
                condition=Q(subtotal_currency=F("total_currency"))
                & Q(tax_total_currency=F("total_currency"))
                & Q(amount_due_reduction_currency=F("total_currency"))
                & Q(credit_to_balance_currency=F("total_currency"))
                & Q(refund_amount_currency=F("total_currency")),
                name="credit_note_single_currency",
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "-issued_at"], name="credit_note_customer_idx"),
            models.Index(fields=["-issued_at", "-id"], name="credit_note_issued_at_idx"),
        ]
        verbose_name = _("credit note")
        verbose_name_plural = _("credit notes")

    def __str__(self) -> str:
        return self.number

    @property
    def currency(self) -> str:
        return str(self.total.currency)


class CreditNoteLine(models.Model):
    """What a credit note credits: (part of) an invoice line, a plain amount, or the share of the
    invoice's discounts (or balance applied) that goes with the lines credited."""

    credit_note = models.ForeignKey(
        CreditNote, on_delete=models.CASCADE, related_name="lines", verbose_name=_("credit note")
    )
    position = models.PositiveIntegerField(default=0, verbose_name=_("position"))
    kind = models.CharField(max_length=16, choices=CreditNoteLineKind.choices, verbose_name=_("kind"))
    invoice_line = models.ForeignKey(
        InvoiceLine,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="credit_note_lines",
        verbose_name=_("invoice line"),
    )
    description = models.CharField(max_length=500, verbose_name=_("description"))
    quantity = models.DecimalField(
        max_digits=19,
        decimal_places=6,
        null=True,
        blank=True,
        help_text=_("Units credited, when credited by quantity."),
        verbose_name=_("quantity"),
    )
    amount = _money(verbose_name=_("amount"))
    explanation = models.JSONField(default=list, blank=True, verbose_name=_("explanation"))

    class Meta:
        ordering = ["credit_note", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind=CreditNoteLineKind.INVOICE_LINE) | Q(invoice_line__isnull=False),
                name="credit_note_line_has_invoice_line",
            ),
        ]
        verbose_name = _("credit note line")
        verbose_name_plural = _("credit note lines")

    def __str__(self) -> str:
        return self.description


class CreditNoteTax(models.Model):
    """One rate's tax credited, with the invoice's snapshot of the rate (name, percentage)."""

    credit_note = models.ForeignKey(
        CreditNote, on_delete=models.CASCADE, related_name="taxes", verbose_name=_("credit note")
    )
    invoice_tax = models.ForeignKey(
        InvoiceTax, on_delete=models.PROTECT, related_name="credit_note_taxes", verbose_name=_("invoice tax")
    )
    name = models.CharField(max_length=128, verbose_name=_("name"))
    percentage = models.DecimalField(max_digits=7, decimal_places=4, verbose_name=_("percentage"))
    inclusive = models.BooleanField(default=False, verbose_name=_("inclusive"))
    taxable_amount = _money(verbose_name=_("taxable amount"))
    tax_amount = _money(verbose_name=_("tax amount"))

    class Meta:
        ordering = ["credit_note", "id"]
        verbose_name_plural = _("credit note taxes")
        verbose_name = _("credit note tax")

    def __str__(self) -> str:
        return f"{self.name} {self.percentage.normalize():f} %"
