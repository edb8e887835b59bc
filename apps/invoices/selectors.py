from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import DecimalField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext
from djmoney.money import Money

from apps.accounts.models import Customer
from apps.core.errors import NotFound

from .constants import (
    AFTER_TAX_LINE_KINDS,
    CREDITABLE_STATUSES,
    UNPAID_STATUSES,
    BillingReason,
    CreditNoteLineKind,
    CreditNoteStatus,
    InvoiceLineKind,
    InvoiceStatus,
)
from .models import BillingRun, CreditNote, CreditNoteLine, Invoice, InvoicedPeriod, InvoiceItem, TaxRate


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


def invoice_item_list() -> QuerySet[InvoiceItem]:
    """Every invoice item (staff scope): pending one-off charges and prorations, and those billed."""
    return InvoiceItem.objects.select_related("invoice").order_by("-created_at", "-id")


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


def invoice_paid_with_prepaid_credits(invoice: Invoice) -> bool:
    """The invoice consumed prepaid credits (a `prepaid_credits` line)."""
    return invoice.lines.filter(kind=InvoiceLineKind.PREPAID_CREDITS).exists()


def invoice_creditable_before_credits(invoice: Invoice) -> Decimal:
    """Of what the invoice billed before the credits applied on it (its lines and tax), what credit
    notes may still credit: on an invoice prepaid credits paid, the lines credited give their share of
    the credits back to the wallets, so a credit note is possible even when its total came to 0.00.
    The same as `invoice_creditable_amount` on an invoice without such credits."""
    if invoice.status not in CREDITABLE_STATUSES:
        return Decimal(0)
    billed = sum(
        (line.amount.amount for line in invoice.lines.all() if line.kind not in AFTER_TAX_LINE_KINDS), Decimal(0)
    )
    issued = Q(credit_note__invoice=invoice, credit_note__status=CreditNoteStatus.ISSUED)
    credited_lines = CreditNoteLine.objects.filter(issued).exclude(kind=CreditNoteLineKind.BALANCE_SHARE).aggregate(
        total=Sum("amount")
    )["total"] or Decimal(0)
    credited_tax = CreditNote.objects.filter(invoice=invoice, status=CreditNoteStatus.ISSUED).aggregate(
        total=Sum("tax_total")
    )["total"] or Decimal(0)
    return billed + invoice.tax_total.amount - credited_lines - credited_tax


def invoice_ids_missing_pdf(*, now: datetime, min_age: timedelta, max_age: timedelta) -> list[int]:
    """Finalized invoices issued between `max_age` and `min_age` ago that have no PDF bill yet: their
    rendering was never queued (the broker was down) or was lost. Oldest first."""
    return list(
        Invoice.objects.filter(number__isnull=False, pdf="", issued_at__gte=now - max_age, issued_at__lte=now - min_age)
        .order_by("issued_at", "pk")
        .values_list("pk", flat=True)
    )


# --- Customer-facing reads (the portal and the customer API): always scoped to one customer -----------

CUSTOMER_VISIBLE_STATUSES = (InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.UNCOLLECTIBLE, InvoiceStatus.VOID)


def invoice_list_for_customer(*, customer_id: int, status: str = "") -> QuerySet[Invoice]:
    """The customer's issued invoices (never drafts), newest first; `status` filters when given."""
    invoices = invoices_with_amount_due(
        Invoice.objects.filter(customer_id=customer_id, status__in=CUSTOMER_VISIBLE_STATUSES)
    )
    if status:
        invoices = invoices.filter(status=status)
    return invoices.order_by("-issued_at", "-id")


def invoice_days_overdue(invoice: Invoice, *, today: date) -> int:
    """How many days an open invoice is past its due date with money still due (0 when it is not)."""
    if invoice.status != InvoiceStatus.OPEN or invoice.due_on is None or invoice.due_on >= today:
        return 0
    if invoice.amount_due.amount <= 0:
        return 0
    return (today - invoice.due_on).days


def invoice_get_for_customer(*, customer_id: int, invoice_id: int | str) -> Invoice:
    """One of the customer's issued invoices with its lines, taxes and credit notes; `NotFound` for
    anybody else's, a draft, or an id that is not a number."""
    try:
        pk = int(invoice_id)
    except (TypeError, ValueError):
        raise NotFound(gettext("No such invoice.")) from None
    invoice = (
        invoice_list_for_customer(customer_id=customer_id)
        .prefetch_related("lines", "taxes", "credit_notes")
        .filter(pk=pk)
        .first()
    )
    if invoice is None:
        raise NotFound(gettext("No such invoice."))
    return invoice


def credit_note_list_for_customer(*, customer_id: int) -> QuerySet[CreditNote]:
    return CreditNote.objects.filter(customer_id=customer_id).select_related("invoice").order_by("-issued_at", "-id")


def credit_note_get_for_customer(*, customer_id: int, credit_note_id: int | str) -> CreditNote:
    try:
        pk = int(credit_note_id)
    except (TypeError, ValueError):
        raise NotFound(gettext("No such credit note.")) from None
    credit_note = credit_note_list_for_customer(customer_id=customer_id).prefetch_related("lines").filter(pk=pk).first()
    if credit_note is None:
        raise NotFound(gettext("No such credit note."))
    return credit_note


def customer_amount_due(*, customer: Customer) -> Money:
    """What the customer owes on its issued, unpaid invoices: the sum of their `amount_due` (less what
    payments paid and credit notes took off each)."""
    invoices = invoices_with_amount_due(Invoice.objects.filter(customer=customer, status__in=UNPAID_STATUSES))
    total = sum((invoice.amount_due.amount for invoice in invoices), Decimal(0))
    return Money(total, customer.currency)
