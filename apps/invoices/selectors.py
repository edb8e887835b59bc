from datetime import datetime
from decimal import Decimal

from django.db.models import DecimalField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from djmoney.money import Money

from apps.accounts.models import Customer

from .constants import CREDITABLE_STATUSES, BillingReason, CreditNoteStatus
from .models import BillingRun, CreditNote, Invoice, InvoicedPeriod, InvoiceItem, TaxRate


def invoices_with_amount_due(invoices: QuerySet[Invoice] | None = None) -> QuerySet[Invoice]:
    """The invoices with what their credit notes took off what is due (one subquery, no query per
    invoice), which `Invoice.amount_due` uses."""
    invoices = Invoice.objects.all() if invoices is None else invoices
    reduced = (
        CreditNote.objects.filter(invoice=OuterRef("pk"), status=CreditNoteStatus.ISSUED)
        .order_by()
        .values("invoice")
        .annotate(total=Sum("amount_due_reduction"))
        .values("total")
    )
    return invoices.annotate(
        credit_notes_amount_due_reduction=Coalesce(
            Subquery(reduced, output_field=DecimalField(max_digits=19, decimal_places=4)),
            Value(Decimal(0)),
            output_field=DecimalField(max_digits=19, decimal_places=4),
        )
    )


def invoice_list() -> QuerySet[Invoice]:
    """Every invoice (staff scope), without the heavy snapshot columns' relations."""
    return Invoice.objects.all()


def invoice_list_with_lines() -> QuerySet[Invoice]:
    return Invoice.objects.prefetch_related("lines", "taxes", "credit_notes", "invoiced_periods")


def subscription_period_invoices(*, subscription_id: int, period_start_at: datetime) -> QuerySet[Invoice]:
    """The renewal invoice that billed a subscription's period (through its `InvoicedPeriod` row),
    whether it bills that subscription alone or groups it with the customer's other subscriptions."""
    return Invoice.objects.filter(
        invoiced_periods__subscription_id=subscription_id,
        invoiced_periods__period_start_at=period_start_at,
        billing_reason=BillingReason.SUBSCRIPTION_CYCLE,
    )


def subscription_invoices(*, subscription_id: int, invoices: QuerySet[Invoice] | None = None) -> QuerySet[Invoice]:
    """Every invoice with a line for the subscription (among `invoices`, default all): its own and
    those grouping it with the customer's others."""
    grouped = InvoicedPeriod.objects.filter(subscription_id=subscription_id).values("invoice_id")
    invoices = Invoice.objects.all() if invoices is None else invoices
    return invoices.filter(Q(subscription_id=subscription_id) | Q(pk__in=grouped))


def tax_rate_list() -> QuerySet[TaxRate]:
    return TaxRate.objects.all()


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


def _credited(invoice: Invoice) -> dict[str, Decimal]:
    totals = CreditNote.objects.filter(invoice=invoice, status=CreditNoteStatus.ISSUED).aggregate(
        total=Sum("total"), amount_due_reduction=Sum("amount_due_reduction")
    )
    return {name: value or Decimal(0) for name, value in totals.items()}


def invoice_amount_due(invoice: Invoice) -> Decimal:
    """What the customer still owes on the invoice: its total less what payments paid and what credit
    notes took off it while it was unpaid; nothing once it is paid or void, or while it is a draft."""
    return invoice.amount_due.amount


def invoice_creditable_amount(invoice: Invoice) -> Decimal:
    """What credit notes may still credit of the invoice (nothing for drafts and void invoices)."""
    if invoice.status not in CREDITABLE_STATUSES:
        return Decimal(0)
    return invoice.total.amount - _credited(invoice)["total"]
