"""The customer portal's configuration (like Stripe's portal configuration): which features customers
see, what they may change, and the seller's branding. One row, edited in the admin."""

from django.core.validators import RegexValidator
from django.db import models

from apps.catalog.models import Plan
from apps.core.models import TimeStampedModel

from .constants import DEFAULT_CANCELLATION_REASONS, CancellationMode, PortalProration

colour_validator = RegexValidator(r"^#[0-9a-fA-F]{6}$", "Give a colour as #RRGGBB, e.g. #1d4ed8.")


def _default_reasons() -> list[str]:
    return list(DEFAULT_CANCELLATION_REASONS)


class PortalConfiguration(TimeStampedModel):
    """The portal's settings. There is one (see `apps.portal.selectors.portal_configuration`)."""

    # Features
    invoice_history_enabled = models.BooleanField(default=True, help_text="Customers see and download invoices.")
    subscription_update_enabled = models.BooleanField(
        default=True, help_text="Customers may change plan (among the allowed plans) or quantity."
    )
    quantity_update_enabled = models.BooleanField(default=True, help_text="Customers may change the quantity.")
    allowed_plans = models.ManyToManyField(
        Plan,
        blank=True,
        related_name="+",
        help_text="Plans customers may switch to (in their currency). None: plan changes are off.",
    )
    proration_behavior = models.CharField(
        max_length=16, choices=PortalProration.choices, default=PortalProration.PRORATE
    )
    subscription_cancel_enabled = models.BooleanField(default=True)
    cancellation_mode = models.CharField(
        max_length=16, choices=CancellationMode.choices, default=CancellationMode.AT_PERIOD_END
    )
    cancellation_prorate = models.BooleanField(
        default=True, help_text="Immediate cancellations credit the unused time already invoiced."
    )
    cancellation_reasons = models.JSONField(
        default=_default_reasons, blank=True, help_text="The reasons customers pick from when they cancel."
    )
    cancellation_reason_required = models.BooleanField(default=False)
    subscription_pause_enabled = models.BooleanField(default=False)
    billing_details_enabled = models.BooleanField(
        default=True, help_text="Customers may change their address, billing emails and tax ID."
    )
    payment_methods_enabled = models.BooleanField(default=True, help_text="When Stripe is configured.")
    team_enabled = models.BooleanField(default=True, help_text="Owners may invite teammates.")
    # Branding
    business_name = models.CharField(max_length=255, blank=True, help_text="Empty: the seller's name on bills.")
    logo_url = models.CharField(
        max_length=500, blank=True, help_text="An image path under static/ or an https URL; empty for none."
    )
    accent_colour = models.CharField(max_length=7, default="#1d4ed8", validators=[colour_validator])
    terms_url = models.URLField(blank=True)
    privacy_url = models.URLField(blank=True)

    class Meta:
        verbose_name = "portal configuration"
        verbose_name_plural = "portal configuration"

    def __str__(self) -> str:
        return "Customer portal configuration"
