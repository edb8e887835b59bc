"""Card payments in the demo data, against localstripe."""

import pytest
from django.core.management import call_command

from apps.demo.demo_data import DEMO_EXTERNAL_ID_PREFIX
from apps.payments.constants import PaymentStatus
from apps.payments.dunning.models import DunningCampaign, InvoiceDunning
from apps.payments.models import Payment
from apps.payments.tests.factories import make_customer, make_invoice

pytestmark = pytest.mark.django_db


def demo_invoice(number: int, amount: str):
    customer = make_customer(external_id=f"{DEMO_EXTERNAL_ID_PREFIX}{number:04d}")
    return make_invoice(customer, amount)


@pytest.mark.django_db(transaction=True)  # committed as `manage.py` commits: the payment signals run at once
def test_demo_shows_a_card_payment_a_recovered_one_and_one_waiting_for_3ds(localstripe, capsys):
    invoices = [demo_invoice(1, "10.00"), demo_invoice(2, "20.00"), demo_invoice(3, "30.00")]

    call_command("load_stripe_demo_data")
    call_command("load_stripe_demo_data")

    # The newest invoices first: the third customer pays at once, the second recovers, the first waits.
    by_invoice = {
        invoice.pk: list(
            Payment.objects.filter(allocations__invoice=invoice).order_by("pk").values_list("status", "failure_code")
        )
        for invoice in invoices
    }
    assert by_invoice == {
        invoices[2].pk: [(PaymentStatus.SUCCEEDED, "")],
        invoices[1].pk: [(PaymentStatus.FAILED, "card_declined"), (PaymentStatus.SUCCEEDED, "")],
        invoices[0].pk: [(PaymentStatus.REQUIRES_ACTION, "")],
    }
    for invoice in invoices:
        invoice.customer.refresh_from_db()
        assert invoice.customer.collection_method == "charge_automatically"
    # The declined payment started a dunning under the demo's default campaign; the later one recovered it.
    assert list(DunningCampaign.objects.values_list("name", "is_default")) == [("Standard (demo)", True)]
    assert list(InvoiceDunning.objects.values_list("invoice_id", "start_reason", "status")) == [
        (invoices[1].pk, "payment_failed", "recovered")
    ]
    out = capsys.readouterr().out
    assert "Card payments in the demo:" in out
    assert "failed (Your card was declined.)" in out
    assert out.endswith("Card demo data is already present; nothing to do.\n")


def test_demo_command_does_nothing_while_card_payments_are_off(settings, capsys):
    settings.STRIPE_ENABLED = False
    demo_invoice(1, "10.00")

    call_command("load_stripe_demo_data")

    assert Payment.objects.count() == 0
    assert capsys.readouterr().out == "Card payments are off: no card payments in the demo data.\n"
