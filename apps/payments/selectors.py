from django.db.models import Prefetch, QuerySet
from django.utils.translation import gettext

from apps.core.errors import NotFound
from apps.invoices.constants import UNPAID_STATUSES
from apps.invoices.models import Invoice
from apps.invoices.selectors import invoices_with_amount_due

from .constants import PaymentProvider, PaymentStatus
from .models import Payment, PaymentAllocation, Refund


def payment_list() -> QuerySet[Payment]:
    """Every payment (staff scope), with its customer and allocations (and their invoices' numbers)."""
    return Payment.objects.select_related("customer").prefetch_related(
        Prefetch("allocations", queryset=PaymentAllocation.objects.select_related("invoice").order_by("pk"))
    )


def payment_list_with_details() -> QuerySet[Payment]:
    return payment_list().prefetch_related("refunds", "events")


def refund_list() -> QuerySet[Refund]:
    return Refund.objects.select_related("payment", "payment__customer", "credit_note")


def customer_payments(*, customer_id: int) -> QuerySet[Payment]:
    return Payment.objects.filter(customer_id=customer_id).order_by("-created_at", "-pk")


def customer_unpaid_invoices(*, customer_id: int) -> QuerySet[Invoice]:
    """The customer's invoices a payment may pay (open or uncollectible), oldest due first, with what
    is due on each."""

    return invoices_with_amount_due(
        Invoice.objects.filter(customer_id=customer_id, status__in=UNPAID_STATUSES).order_by(
            "due_on", "issued_at", "pk"
        )
    )


# The payments a customer sees: money received (or reversed), and attempts that failed or wait for them.
CUSTOMER_VISIBLE_PAYMENT_STATUSES = (
    PaymentStatus.SUCCEEDED,
    PaymentStatus.REVERSED,
    PaymentStatus.FAILED,
    PaymentStatus.REQUIRES_ACTION,
    PaymentStatus.PROCESSING,
)


def payment_list_for_customer(*, customer_id: int) -> QuerySet[Payment]:
    """The customer's payment history (the portal), newest first, with the invoices each paid; pending
    and canceled attempts are left out."""
    return (
        customer_payments(customer_id=customer_id)
        .filter(status__in=CUSTOMER_VISIBLE_PAYMENT_STATUSES)
        .prefetch_related(
            Prefetch("allocations", queryset=PaymentAllocation.objects.select_related("invoice").order_by("pk"))
        )
    )


def invoice_payments_for_customer(*, customer_id: int, invoice_id: int) -> list[Payment]:
    """The succeeded payments that paid (part of) one of the customer's invoices, oldest first."""
    return list(
        customer_payments(customer_id=customer_id)
        .filter(status=PaymentStatus.SUCCEEDED, allocations__invoice_id=invoice_id)
        .distinct()
        .order_by("received_at", "pk")
    )


def payment_get_for_customer(*, customer_id: int, payment_id: int | str) -> Payment:
    """One of the customer's payments (the portal); `NotFound` for anybody else's (or an id that is no
    number)."""
    try:
        pk = int(payment_id)
    except (TypeError, ValueError):
        raise NotFound(gettext("No such payment.")) from None
    payment = customer_payments(customer_id=customer_id).filter(pk=pk).first()
    if payment is None:
        raise NotFound(gettext("No such payment."))
    return payment


def manual_payment_with_reference(*, customer_id: int, reference: str) -> Payment | None:
    """The customer's standing manual payment with this reference (case and surrounding spaces aside)."""
    return (
        Payment.objects.filter(
            customer_id=customer_id, provider=PaymentProvider.MANUAL, reference__iexact=reference.strip()
        )
        .exclude(status=PaymentStatus.REVERSED)
        .order_by("pk")
        .first()
    )
