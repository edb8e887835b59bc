"""Words of the billing engine: when a subscription change takes effect and how it is prorated."""

from django.db import models


class ProrationBehavior(models.TextChoices):
    PRORATE = "prorate", "Prorate on the next invoice"
    INVOICE_NOW = "invoice_now", "Prorate and invoice at once"
    NONE = "none", "No proration"


class ChangeTiming(models.TextChoices):
    NOW = "now", "Now"
    PERIOD_END = "period_end", "At the end of the current period"
