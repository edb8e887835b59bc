"""Dunning: what happens when an invoice is not paid on time (campaigns, per-customer settings, and one
dunning per unpaid invoice with its history). See docs/payments.md (Dunning)."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from djmoney.models.fields import MoneyField

from apps.accounts.models import Customer
from apps.core.models import DomainEvent, TimeStampedModel
from apps.core.money import currency_choices

from .constants import DunningActionKind, DunningEndAction, DunningEventType, DunningStartReason, DunningStatus
from .schedule import MAX_DAYS, CampaignRules


def _money(**kwargs) -> MoneyField:
    return MoneyField(
        max_digits=19, decimal_places=4, currency_choices=currency_choices, default_currency=None, **kwargs
    )


class DunningCampaign(TimeStampedModel):
    """A dunning schedule: reminders before and after the due date, payment retries, a final notice and
    an end action. One campaign is the default; customers may have their own (`CustomerDunningSetting`).
    A running dunning keeps the rules it started with: changing a campaign only affects dunnings that
    start afterwards."""

    name = models.CharField(max_length=255, verbose_name=_("name"))
    description = models.TextField(blank=True, verbose_name=_("description"))
    retry_days = models.JSONField(
        default=list,
        blank=True,
        help_text=_("Days after the first failed payment at which the card is charged again."),
        verbose_name=_("retry days"),
    )
    reminder_days_before_due = models.JSONField(
        default=list,
        blank=True,
        help_text=_("Days before the due date at which a reminder is emailed."),
        verbose_name=_("reminder days before due"),
    )
    reminder_days_after_due = models.JSONField(
        default=list,
        blank=True,
        help_text=_("Days after the due date at which a reminder is emailed."),
        verbose_name=_("reminder days after due"),
    )
    final_notice_day = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_DAYS)],
        help_text=_("Days after the due date at which the final notice is emailed (empty: none)."),
        verbose_name=_("final notice day"),
    )
    end_action = models.CharField(max_length=24, choices=DunningEndAction.choices, verbose_name=_("end action"))
    end_action_day = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(MAX_DAYS)],
        help_text=_("Days after the due date at which the end action is taken (after every other step)."),
        verbose_name=_("end action day"),
    )
    is_default = models.BooleanField(
        default=False,
        help_text=_("Used for every customer without a campaign of its own (one campaign at most)."),
        verbose_name=_("is default"),
    )

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=Q(is_default=True),
                name="dunning_campaign_one_default",
                violation_error_message="Another campaign is the default already.",
            ),
        ]
        verbose_name = _("dunning campaign")
        verbose_name_plural = _("dunning campaigns")

    def __str__(self) -> str:
        return gettext("%(name)s (default)") % {"name": self.name} if self.is_default else self.name

    @property
    def rules(self) -> CampaignRules:
        return CampaignRules(
            retry_days=tuple(self.retry_days),
            reminder_days_before_due=tuple(self.reminder_days_before_due),
            reminder_days_after_due=tuple(self.reminder_days_after_due),
            final_notice_day=self.final_notice_day,
            end_action=self.end_action,
            end_action_day=self.end_action_day,
        )


class CustomerDunningSetting(TimeStampedModel):
    """A customer's own dunning: its campaign instead of the default, or no dunning at all."""

    customer = models.OneToOneField(
        Customer, on_delete=models.CASCADE, related_name="dunning_setting", verbose_name=_("customer")
    )
    campaign = models.ForeignKey(
        DunningCampaign,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="customer_settings",
        help_text=_("Empty: the default campaign."),
        verbose_name=_("campaign"),
    )
    excluded = models.BooleanField(
        default=False,
        help_text=_("No reminders, retries or end actions for this customer's unpaid invoices."),
        verbose_name=_("excluded"),
    )
    note = models.TextField(
        blank=True, help_text=_("Why (e.g. pays by arrangement with finance)."), verbose_name=_("note")
    )

    class Meta:
        ordering = ["customer", "id"]
        verbose_name = _("customer dunning setting")
        verbose_name_plural = _("customer dunning settings")

    def __str__(self) -> str:
        return gettext("Dunning of %(customer)s") % {"customer": self.customer}


class InvoiceDunning(TimeStampedModel):
    """The dunning of one unpaid invoice: its campaign's rules as they were when it started, its plan
    of actions with their moments (`plan`), the next one to run (`step`, `next_action_at`) and its
    outcome. Its history is its events. An invoice has one current dunning; a recovered one whose
    invoice is reopened (payment reversed, refund) becomes `reopened` and a new cycle starts."""

    invoice = models.ForeignKey(
        "invoices.Invoice", on_delete=models.PROTECT, related_name="dunnings", verbose_name=_("invoice")
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="dunnings", verbose_name=_("customer")
    )
    campaign = models.ForeignKey(
        DunningCampaign,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="dunnings",
        verbose_name=_("campaign"),
    )
    campaign_rules = models.JSONField(
        help_text=_("The campaign's rules when the dunning started."), editable=False, verbose_name=_("campaign rules")
    )
    plan = models.JSONField(
        help_text=_("Every action with its step, kind and moment."), editable=False, verbose_name=_("plan")
    )
    status = models.CharField(
        max_length=16, choices=DunningStatus.choices, default=DunningStatus.ACTIVE, verbose_name=_("status")
    )
    start_reason = models.CharField(max_length=16, choices=DunningStartReason.choices, verbose_name=_("start reason"))
    step = models.PositiveSmallIntegerField(
        default=0, help_text=_("The next action's step in the plan."), verbose_name=_("step")
    )
    next_action_at = models.DateTimeField(null=True, blank=True, verbose_name=_("next action at"))
    next_action_kind = models.CharField(
        max_length=24, choices=DunningActionKind.choices, blank=True, verbose_name=_("next action kind")
    )
    started_at = models.DateTimeField(verbose_name=_("started at"))
    first_failed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("first failed at"))
    ended_at = models.DateTimeField(null=True, blank=True, verbose_name=_("ended at"))
    amount_due_at_start = _money(verbose_name=_("amount due at start"))
    amount_paid_at_start = _money(editable=False, verbose_name=_("amount paid at start"))
    amount_recovered = _money(
        help_text=_("Paid on the invoice while it was in dunning."), verbose_name=_("amount recovered")
    )

    class Meta:
        ordering = ["next_action_at", "id"]
        verbose_name = _("customer in dunning")
        verbose_name_plural = _("customers in dunning")
        indexes = [
            models.Index(fields=["next_action_at"], name="dunning_next_action_idx", condition=Q(status="active")),
            models.Index(fields=["customer", "status"], name="dunning_customer_idx"),
            models.Index(fields=["started_at"], name="dunning_started_at_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice"],
                condition=~Q(status=DunningStatus.REOPENED),
                name="dunning_one_current_per_invoice",
                violation_error_message="The invoice has a dunning already.",
            ),
        ]

    def __str__(self) -> str:
        return gettext("Dunning of %(invoice)s") % {"invoice": self.invoice}

    @property
    def currency(self) -> str:
        return str(self.amount_due_at_start.currency)


class InvoiceDunningEvent(DomainEvent):
    """Append-only history of a dunning. An action's event carries its step: a step is recorded once
    (a unique constraint), so two workers can never both run it."""

    dunning = models.ForeignKey(
        InvoiceDunning, on_delete=models.CASCADE, related_name="events", verbose_name=_("dunning")
    )
    type = models.CharField(max_length=24, choices=DunningEventType.choices, verbose_name=_("type"))
    step = models.PositiveSmallIntegerField(null=True, blank=True, verbose_name=_("step"))
    action_kind = models.CharField(
        max_length=24, choices=DunningActionKind.choices, blank=True, verbose_name=_("action kind")
    )
    scheduled_at = models.DateTimeField(null=True, blank=True, verbose_name=_("scheduled at"))

    class Meta(DomainEvent.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["dunning", "step"], condition=Q(step__isnull=False), name="dunning_event_step_once"
            ),
        ]
        verbose_name = _("invoice dunning event")
        verbose_name_plural = _("invoice dunning events")
