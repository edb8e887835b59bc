from django.db import models
from django.utils.translation import gettext_lazy as _


class CancellationMode(models.TextChoices):
    AT_PERIOD_END = "at_period_end", _("At the end of the billing period")
    IMMEDIATELY = "immediately", _("Immediately")


class PortalProration(models.TextChoices):
    """How a plan or quantity change made in the portal is prorated (see apps/invoices/services/changes.py)."""

    PRORATE = "prorate", _("Prorate on the next invoice")
    INVOICE_NOW = "invoice_now", _("Prorate and invoice at once")
    NONE = "none", _("No proration")


DEFAULT_CANCELLATION_REASONS = [
    "Too expensive",
    "Missing features",
    "Switched to another service",
    "No longer needed",
    "Other",
]
