"""The customer portal's configuration (like Stripe's portal configuration): which features customers
see, what they may change, and the seller's branding. One row, edited in the admin."""

from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.catalog.models import Plan
from apps.core.models import TimeStampedModel

from .constants import DEFAULT_CANCELLATION_REASONS, CancellationMode, PortalProration

colour_validator = RegexValidator(r"^#[0-9a-fA-F]{6}$", "Give a colour as #RRGGBB, e.g. #1d4ed8.")


def _default_reasons() -> list[str]:
    return list(DEFAULT_CANCELLATION_REASONS)


class PortalConfiguration(TimeStampedModel):
    """The portal's settings. There is one (see `apps.portal.selectors.portal_configuration`)."""

    # Features
    invoice_history_enabled = models.BooleanField(
        default=True, help_text=_("Customers see and download invoices."), verbose_name=_("invoice history enabled")
    )
    subscription_update_enabled = models.BooleanField(
        default=True,
        help_text=_("Customers may change plan (among the allowed plans) or quantity."),
        verbose_name=_("subscription update enabled"),
    )
    quantity_update_enabled = models.BooleanField(
        default=True, help_text=_("Customers may change the quantity."), verbose_name=_("quantity update enabled")
    )
    allowed_plans = models.ManyToManyField(
        Plan,
        blank=True,
        related_name="+",
        help_text=_("Plans customers may switch to (in their currency). None: plan changes are off."),
        verbose_name=_("allowed plans"),
    )
    proration_behavior = models.CharField(
        max_length=16,
        choices=PortalProration.choices,
        default=PortalProration.PRORATE,
        verbose_name=_("proration behavior"),
    )
    subscription_cancel_enabled = models.BooleanField(default=True, verbose_name=_("subscription cancel enabled"))
    cancellation_mode = models.CharField(
        max_length=16,
        choices=CancellationMode.choices,
        default=CancellationMode.AT_PERIOD_END,
        verbose_name=_("cancellation mode"),
    )
    cancellation_prorate = models.BooleanField(
        default=True,
        help_text=_("Immediate cancellations credit the unused time already invoiced."),
        verbose_name=_("cancellation prorate"),
    )
    cancellation_reasons = models.JSONField(
        default=_default_reasons,
        blank=True,
        help_text=_("The reasons customers pick from when they cancel."),
        verbose_name=_("cancellation reasons"),
    )
    cancellation_reason_required = models.BooleanField(default=False, verbose_name=_("cancellation reason required"))
    subscription_pause_enabled = models.BooleanField(default=False, verbose_name=_("subscription pause enabled"))
    billing_details_enabled = models.BooleanField(
        default=True,
        help_text=_("Customers may change their address, billing emails and tax ID."),
        verbose_name=_("billing details enabled"),
    )
    payment_methods_enabled = models.BooleanField(
        default=True, help_text=_("When Stripe is configured."), verbose_name=_("payment methods enabled")
    )
    team_enabled = models.BooleanField(
        default=True, help_text=_("Owners may invite teammates."), verbose_name=_("team enabled")
    )
    # Branding
    business_name = models.CharField(
        max_length=255, blank=True, help_text=_("Empty: the seller's name on bills."), verbose_name=_("business name")
    )
    logo_url = models.CharField(
        max_length=500,
        blank=True,
        help_text=_("An image path under static/ or an https URL; empty for none."),
        verbose_name=_("logo URL"),
    )
    accent_colour = models.CharField(
        max_length=7, default="#1d4ed8", validators=[colour_validator], verbose_name=_("accent colour")
    )
    terms_url = models.URLField(blank=True, verbose_name=_("terms URL"))
    privacy_url = models.URLField(blank=True, verbose_name=_("privacy URL"))

    class Meta:
        verbose_name = _("portal configuration")
        verbose_name_plural = _("portal configuration")

    def __str__(self) -> str:
        return gettext("Customer portal configuration")
