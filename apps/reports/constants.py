from django.db import models
from django.utils.translation import gettext_lazy as _


class ReportScope(models.TextChoices):
    ALL = "all", _("Everything")
    PRODUCT = "product", _("Product")
    PLAN = "plan", _("Plan")


# Invoices whose amounts count as invoiced revenue: issued and not voided.
ISSUED_STATUSES = ("open", "paid", "uncollectible")
# Invoices that are receivables: issued and unpaid (written-off, uncollectible invoices are left out).
RECEIVABLE_STATUSES = ("open",)
