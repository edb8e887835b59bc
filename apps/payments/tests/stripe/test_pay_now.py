"""The customer's "pay now" (portal) sent again under the same request key, against localstripe."""

import pytest
import stripe

from apps.core.errors import InvalidTransition
from apps.payments.constants import PaymentStatus
from apps.payments.models import Payment
from apps.payments.services import payment_create_pending
from apps.payments.stripe.client import StripeUnavailable
from apps.payments.stripe.pay_now import invoice_pay_now, invoice_pay_now_key
from apps.payments.tests.factories import make_invoice

from .flaky_proxy import flaky_proxy
from .helpers import stripe_forget_idempotency_keys, stripe_list
from .test_collection import JUST_PAST_THE_WINDOW, _aged, customer_with_card

pytestmark = pytest.mark.django_db


def left_before_sending(invoice, request_key: str) -> Payment:
    """The submission's pending payment, committed; the process stopped before its request left."""
    return payment_create_pending(
        customer_id=invoice.customer_id, invoice_ids=[invoice.pk], amount=None, provider="stripe", method="card",
        idempotency_key=invoice_pay_now_key(invoice_id=invoice.pk, request_key=request_key),
    )  # fmt: skip


def test_the_same_submission_after_the_window_is_looked_up_not_sent_again(localstripe, settings):
    """Stripe charged, the answer was lost; the same form submission comes back hours later, when
    Stripe has forgotten the key: the charge is found and recorded, nothing more is charged."""
    customer = customer_with_card()
    invoice = make_invoice(customer, "45.00")
    with flaky_proxy(localstripe, lose="drop") as proxy:
        settings.STRIPE_API_BASE = proxy.url
        with pytest.raises(StripeUnavailable):
            invoice_pay_now(customer_id=customer.pk, invoice_id=invoice.pk, request_key="click-1")
        _aged(Payment.objects.get())
        stripe_forget_idempotency_keys(localstripe)

        payment = invoice_pay_now(customer_id=customer.pk, invoice_id=invoice.pk, request_key="click-1")

    assert payment.status == PaymentStatus.SUCCEEDED
    assert [f.method for f in proxy.requests_to("/v1/payment_intents")] == ["POST", "GET"]  # sent once
    assert Payment.objects.count() == len(stripe_list(stripe.Charge)) == 1


def test_the_same_submission_just_past_the_window_is_neither_sent_nor_canceled(localstripe):
    customer = customer_with_card()
    invoice = make_invoice(customer, "45.00")
    left_before_sending(invoice, "click-1")
    _aged(Payment.objects.get(), by=JUST_PAST_THE_WINDOW)

    payment = invoice_pay_now(customer_id=customer.pk, invoice_id=invoice.pk, request_key="click-1")

    assert payment.status == PaymentStatus.PENDING
    assert stripe_list(stripe.PaymentIntent) == []


def test_the_same_submission_never_sent_is_canceled_once_it_cannot_be_on_its_way(localstripe):
    customer = customer_with_card()
    invoice = make_invoice(customer, "45.00")
    left_before_sending(invoice, "click-1")
    _aged(Payment.objects.get())

    payment = invoice_pay_now(customer_id=customer.pk, invoice_id=invoice.pk, request_key="click-1")

    assert payment.status == PaymentStatus.CANCELED
    assert stripe_list(stripe.PaymentIntent) == []
    paid = invoice_pay_now(customer_id=customer.pk, invoice_id=invoice.pk, request_key="click-2")  # a new click
    assert paid.status == PaymentStatus.SUCCEEDED
    assert len(stripe_list(stripe.Charge)) == 1


def test_a_new_click_looks_up_an_earlier_submission_left_pending_and_charges_nothing_more(localstripe, settings):
    """Stripe charged an earlier click, whose answer was lost; a new click hours later finds that
    charge (nothing is due any more) instead of being held up with a 409 or charging again."""
    customer = customer_with_card()
    invoice = make_invoice(customer, "45.00")
    with flaky_proxy(localstripe, lose="drop") as proxy:
        settings.STRIPE_API_BASE = proxy.url
        with pytest.raises(StripeUnavailable):
            invoice_pay_now(customer_id=customer.pk, invoice_id=invoice.pk, request_key="click-1")
    settings.STRIPE_API_BASE = localstripe
    _aged(Payment.objects.get())

    with pytest.raises(InvalidTransition):  # nothing is due: the first click paid it
        invoice_pay_now(customer_id=customer.pk, invoice_id=invoice.pk, request_key="click-2")

    assert Payment.objects.get().status == PaymentStatus.SUCCEEDED
    assert Payment.objects.count() == len(stripe_list(stripe.Charge)) == 1


def test_a_new_click_after_an_earlier_submission_that_never_reached_stripe_charges_once(localstripe):
    customer = customer_with_card()
    invoice = make_invoice(customer, "45.00")
    earlier = left_before_sending(invoice, "click-1")
    _aged(earlier)

    paid = invoice_pay_now(customer_id=customer.pk, invoice_id=invoice.pk, request_key="click-2")

    assert paid.status == PaymentStatus.SUCCEEDED
    earlier.refresh_from_db()
    assert earlier.status == PaymentStatus.CANCELED
    assert len(stripe_list(stripe.Charge)) == 1
