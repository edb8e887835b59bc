from django.db import models


class ReportScope(models.TextChoices):
    ALL = "all", "Everything"
    PRODUCT = "product", "Product"
    PLAN = "plan", "Plan"


# Invoices whose amounts count as invoiced revenue: issued and not voided.
ISSUED_STATUSES = ("open", "paid", "uncollectible")
# Invoices that are receivables: issued and unpaid (written-off, uncollectible invoices are left out).
RECEIVABLE_STATUSES = ("open",)
