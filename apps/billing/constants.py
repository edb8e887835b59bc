"""Words of the billing engine: when a subscription change takes effect and how it is prorated."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class ProrationBehavior(models.TextChoices):
    PRORATE = "prorate", _("Prorate on the next invoice")
    INVOICE_NOW = "invoice_now", _("Prorate and invoice at once")
    NONE = "none", _("No proration")


class ChangeTiming(models.TextChoices):
    NOW = "now", _("Now")
    PERIOD_END = "period_end", _("At the end of the current period")
