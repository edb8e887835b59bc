"""Reading a customer's invoices back as staff read them: every line, the tax per rate, the totals,
what is still due and the period billed. The stories compare these with amounts worked out by hand."""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from apps.accounts.models import Customer
from apps.invoices.models import Invoice
from apps.invoices.selectors import invoices_with_amount_due


@dataclass(frozen=True)
class Line:
    kind: str
    description: str
    period_start_at: datetime | None
    period_end_at: datetime | None
    quantity: Decimal
    amount: Decimal


@dataclass(frozen=True)
class Tax:
    name: str
    percentage: Decimal
    taxable_amount: Decimal
    tax_amount: Decimal


@dataclass(frozen=True)
class Bill:
    number: str
    status: str
    billing_reason: str
    period_start_at: datetime | None
    period_end_at: datetime | None
    issued_at: datetime
    due_on: date
    currency: str
    lines: list[Line]
    subtotal: Decimal
    taxes: list[Tax]
    tax_total: Decimal
    total: Decimal
    amount_paid: Decimal
    amount_due: Decimal


def bills_of(customer: Customer) -> list[Bill]:
    """Every invoice of the customer (drafts included, so that a draft left behind shows), in the
    order they were made."""
    invoices = invoices_with_amount_due(Invoice.objects.filter(customer=customer)).prefetch_related("lines", "taxes")
    return [_bill(invoice) for invoice in invoices.order_by("created_at", "id")]


def _bill(invoice: Invoice) -> Bill:
    return Bill(
        number=invoice.number,
        status=invoice.status,
        billing_reason=invoice.billing_reason,
        period_start_at=invoice.period_start_at,
        period_end_at=invoice.period_end_at,
        issued_at=invoice.issued_at,
        due_on=invoice.due_on,
        currency=invoice.currency,
        lines=[
            Line(
                kind=line.kind,
                description=line.description,
                period_start_at=line.period_start_at,
                period_end_at=line.period_end_at,
                quantity=line.quantity,
                amount=line.amount.amount,
            )
            for line in sorted(invoice.lines.all(), key=lambda line: line.position)
        ],
        subtotal=invoice.subtotal.amount,
        taxes=[
            Tax(
                name=tax.name,
                percentage=tax.percentage,
                taxable_amount=tax.taxable_amount.amount,
                tax_amount=tax.tax_amount.amount,
            )
            for tax in sorted(invoice.taxes.all(), key=lambda tax: tax.pk)
        ],
        tax_total=invoice.tax_total.amount,
        total=invoice.total.amount,
        amount_paid=invoice.amount_paid.amount,
        amount_due=invoice.amount_due.amount,
    )
