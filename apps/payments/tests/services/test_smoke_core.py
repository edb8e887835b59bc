from decimal import Decimal

import pytest

from apps.invoices.constants import InvoiceStatus
from apps.payments.services import payment_record_manual, payment_reverse
from apps.payments.tests.factories import RECEIVED_AT, make_customer, make_invoice

pytestmark = pytest.mark.django_db


def test_partial_then_rest():
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    payment_record_manual(
        customer_id=customer.pk,
        amount=Decimal("40.00"),
        currency="USD",
        method="bank_transfer",
        reference="SEPA 1",
        received_at=RECEIVED_AT,
    )
    invoice.refresh_from_db()
    assert invoice.amount_paid.amount == Decimal("40.00")
    assert invoice.amount_due.amount == Decimal("60.00")
    assert invoice.status == InvoiceStatus.OPEN
    second = payment_record_manual(
        customer_id=customer.pk,
        amount=Decimal("70.00"),
        currency="USD",
        method="cheque",
        reference="CHQ 2",
        received_at=RECEIVED_AT,
    )
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert invoice.amount_paid.amount == Decimal("100.00")
    assert second.balance_item.amount.amount == Decimal("-10.00")
    payment_reverse(payment_id=second.pk, reason="wrong customer")
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OPEN
    assert invoice.amount_paid.amount == Decimal("40.00")
