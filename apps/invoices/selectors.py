from decimal import Decimal

from django.db.models import QuerySet, Sum
from djmoney.money import Money

from apps.accounts.models import Customer

from .models import BillingRun, CreditNote, Invoice, InvoiceItem


def invoice_list() -> QuerySet[Invoice]:
    """Every invoice (staff scope), without the heavy snapshot columns' relations."""
    return Invoice.objects.all()


def invoice_list_with_lines() -> QuerySet[Invoice]:
    return Invoice.objects.prefetch_related("lines", "taxes", "credit_notes")


def billing_run_list() -> QuerySet[BillingRun]:
    return BillingRun.objects.all()


def credit_note_list() -> QuerySet[CreditNote]:
    """Every credit note (staff scope), with what its list shows."""
    return CreditNote.objects.select_related("invoice", "customer")


def credit_note_list_with_lines() -> QuerySet[CreditNote]:
    return credit_note_list().prefetch_related("lines", "taxes")


def customer_balance(*, customer: Customer) -> Money:
    """The customer's credit balance: the credits waiting to be taken off their next invoices (from
    credit notes credited to the balance, from unused time of canceled subscriptions, ...), in their
    billing currency; zero when there is none."""
    waiting = InvoiceItem.objects.filter(
        customer=customer,
        subscription__isnull=True,
        invoice__isnull=True,
        amount__lt=0,
        amount_currency=customer.currency,
    ).aggregate(total=Sum("amount"))["total"]
    return Money(-(waiting or Decimal(0)), customer.currency)
