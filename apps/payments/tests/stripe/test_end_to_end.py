"""The whole way: finalizing an invoice charges the card; localstripe's own webhook delivery to a
live server settles a payment whose answer was lost."""

import time

import pytest
from django.test.utils import override_settings

from apps.invoices.constants import InvoiceStatus
from apps.invoices.services import invoice_finalize
from apps.invoices.tests.factories import make_manual_invoice
from apps.payments.constants import PaymentStatus
from apps.payments.models import Payment
from apps.payments.stripe import tasks
from apps.payments.stripe.client import StripeUnavailable, configure
from apps.payments.stripe.collection import invoice_collect
from apps.payments.stripe.webhook_endpoints import stripe_webhook_endpoint_ensure
from apps.payments.tests.factories import make_invoice

from .flaky_proxy import flaky_proxy
from .helpers import CARD_OK
from .test_collection import customer_with_card


@pytest.mark.django_db
def test_finalizing_a_charge_automatically_invoice_charges_the_card(
    localstripe, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(tasks.invoice_collect_task, "delay", tasks.invoice_collect_task.run)  # the worker, at once
    customer = customer_with_card(CARD_OK)
    draft = make_manual_invoice(customer=customer, lines=[("Consulting", "1", "42.00")], finalize=False)

    with django_capture_on_commit_callbacks(execute=True), override_settings(INVOICE_EMAIL_ON_FINALIZE=False):
        invoice_finalize(invoice_id=draft.pk)

    payment = Payment.objects.get()
    assert (payment.status, payment.idempotency_key) == (PaymentStatus.SUCCEEDED, f"invoice-{draft.pk}-attempt-1")
    draft.refresh_from_db()
    assert draft.status == InvoiceStatus.PAID


@pytest.mark.django_db(transaction=True)
def test_localstripe_delivers_the_webhook_that_settles_a_lost_answer(localstripe, live_server, settings):
    stripe_webhook_endpoint_ensure(base_url=live_server.url)
    customer = customer_with_card(CARD_OK)
    invoice = make_invoice(customer, "33.00")
    with flaky_proxy(localstripe, lose="drop") as proxy:
        settings.STRIPE_API_BASE = proxy.url
        with pytest.raises(StripeUnavailable):
            invoice_collect(invoice_id=invoice.pk, attempt=1)
    settings.STRIPE_API_BASE = localstripe
    configure()  # the live server's dj-stripe calls Stripe through the module-wide client
    payment = Payment.objects.get()

    # localstripe posts payment_intent.succeeded about a second after the charge: wait for it.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        payment.refresh_from_db()
        if payment.status != PaymentStatus.PENDING:
            break
        time.sleep(0.2)

    assert payment.status == PaymentStatus.SUCCEEDED
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
