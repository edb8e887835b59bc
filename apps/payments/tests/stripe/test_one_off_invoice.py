"""A one-off invoice issued through the API is collected like every invoice: its card is charged
against the local fake Stripe (localstripe). (Its PDF and email: apps/invoices/tests/test_one_off_pdf.py.)"""

from decimal import Decimal

import pytest
import stripe
from django.urls import reverse
from djmoney.money import Money

from apps.invoices.constants import InvoiceStatus
from apps.invoices.models import Invoice, TaxRate
from apps.payments.constants import PaymentStatus
from apps.payments.models import Payment
from apps.payments.stripe import tasks

from .helpers import CARD_OK, stripe_list
from .test_collection import customer_with_card

pytestmark = pytest.mark.django_db


def test_a_one_off_invoice_issued_at_once_is_paid_by_card(
    localstripe, api_client, superuser, monkeypatch, settings, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(tasks.invoice_collect_task, "delay", tasks.invoice_collect_task.run)  # the worker, at once
    settings.INVOICE_DRAFT_GRACE_HOURS = 24  # issued at once because it is asked for, not by default
    TaxRate.objects.create(name="VAT", percentage=Decimal("20"), country="GB")
    customer = customer_with_card(CARD_OK, country="GB", currency="USD", email="ap@acme.example")
    api_client.force_authenticate(superuser)
    payload = {
        "customer": customer.pk, "finalize": True,
        "lines": [
            {"description": "Hardware: 3 gateways", "quantity": "3", "unit_amount": "149.995"},
            {"description": "Installation", "quantity": "1", "unit_amount": "350"},
        ],
    }  # fmt: skip

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(reverse("api:invoice-list"), payload, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert response.status_code == 201, response.json()
    invoice = Invoice.objects.get()
    # 3 × 149.995 = 449.985 → 449.99; + 350.00 = 799.99; VAT 20 % = 159.998 → 160.00; total 959.99.
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (
        Money("799.99", "USD"), Money("160.00", "USD"), Money("959.99", "USD"),
    )  # fmt: skip
    assert (invoice.status, invoice.amount_paid) == (InvoiceStatus.PAID, Money("959.99", "USD"))
    payment = Payment.objects.get()
    assert (payment.status, payment.amount, payment.method) == (PaymentStatus.SUCCEEDED, invoice.total, "card")
    [intent] = stripe_list(stripe.PaymentIntent)
    assert (intent["id"], intent["amount"], intent["currency"]) == (payment.provider_payment_id, 95999, "usd")
