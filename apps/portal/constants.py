from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop


class CancellationMode(models.TextChoices):
    AT_PERIOD_END = "at_period_end", _("At the end of the billing period")
    IMMEDIATELY = "immediately", _("Immediately")


class PortalProration(models.TextChoices):
    """How a plan or quantity change made in the portal is prorated (see apps/billing/services/changes.py)."""

    PRORATE = "prorate", _("Prorate on the next invoice")
    INVOICE_NOW = "invoice_now", _("Prorate and invoice at once")
    NONE = "none", _("No proration")


# Stored in English in the configuration; shown in the portal's language when a translation exists.
DEFAULT_CANCELLATION_REASONS = [
    gettext_noop("Too expensive"),
    gettext_noop("Missing features"),
    gettext_noop("Switched to another service"),
    gettext_noop("No longer needed"),
    gettext_noop("Other"),
]
