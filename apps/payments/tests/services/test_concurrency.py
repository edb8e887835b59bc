"""Payments of one invoice at once never pay it twice (PostgreSQL row locks)."""

from decimal import Decimal

import pytest
from django.db import connection

from apps.core.errors import ValidationFailed
from apps.core.tests.concurrency import run_in_threads
from apps.invoices.constants import InvoiceStatus
from apps.invoices.models import Invoice
from apps.payments.constants import PaymentMethod, PaymentProvider, PaymentStatus
from apps.payments.models import Payment
from apps.payments.services import payment_create_pending, payment_mark_succeeded, payment_record_manual
from apps.payments.tests.factories import RECEIVED_AT, make_customer, make_invoice

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row-lock concurrency is a PostgreSQL property"),
]


def test_concurrent_manual_payments_cannot_pay_an_invoice_twice():
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")

    def pay(index):
        try:
            return payment_record_manual(
                customer_id=customer.pk, amount=Decimal("60.00"), currency="USD",
                method=PaymentMethod.BANK_TRANSFER, reference=f"SEPA {index}", received_at=RECEIVED_AT,
                allocations=[(invoice.pk, Decimal("60.00"))],
            ).pk  # fmt: skip
        except ValidationFailed as refused:
            return refused.fields

    results = run_in_threads(pay, count=4)

    recorded = [result for result in results if isinstance(result, int)]
    refused = [result for result in results if not isinstance(result, int)]
    assert len(recorded) == 1
    assert refused == [{"allocations.0.amount": [f"At most 40.00 USD is due on invoice {invoice.number}."]}] * 3
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid.amount) == (InvoiceStatus.OPEN, Decimal("60.00"))


def test_concurrent_successes_of_one_payment_apply_it_once():
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    payment = payment_create_pending(
        customer_id=customer.pk, invoice_ids=[invoice.pk], amount=None, provider=PaymentProvider.STRIPE,
        method=PaymentMethod.CARD, idempotency_key="invoice-attempt-1",
    )  # fmt: skip

    run_in_threads(lambda index: payment_mark_succeeded(payment_id=payment.pk).status, count=4)

    invoice = Invoice.objects.get(pk=invoice.pk)
    assert (invoice.status, invoice.amount_paid.amount) == (InvoiceStatus.PAID, Decimal("100.00"))
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.SUCCEEDED
    assert invoice.events.filter(type="payment_applied").count() == 1
