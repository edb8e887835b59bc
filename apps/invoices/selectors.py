from django.db.models import QuerySet

from .models import BillingRun, Invoice


def invoice_list() -> QuerySet[Invoice]:
    """Every invoice (staff scope), without the heavy snapshot columns' relations."""
    return Invoice.objects.all()


def invoice_list_with_lines() -> QuerySet[Invoice]:
    return Invoice.objects.prefetch_related("lines", "taxes")


def billing_run_list() -> QuerySet[BillingRun]:
    return BillingRun.objects.all()
