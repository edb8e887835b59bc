"""Stripe events through dj-stripe's endpoint (signed, posted with the test client): each handled
once, whatever the replays and the order, against the objects as localstripe holds them."""

import time
from decimal import Decimal

import pytest
import stripe
from django.urls import reverse
from djmoney.money import Money
from djstripe.models import Event

from apps.invoices.constants import CreditNoteReason, InvoiceStatus
from apps.payments.constants import PaymentEventType, PaymentStatus, RefundStatus
from apps.payments.models import Payment, PaymentEvent, Refund
from apps.payments.services import (
    credit_note_issue_and_refund,
    payment_cancel,
    payment_record_manual,
    refund_create,
)
from apps.payments.stripe import tasks
from apps.payments.stripe.client import StripeUnavailable
from apps.payments.stripe.collection import invoice_collect
from apps.payments.stripe.models import StripeDispute
from apps.payments.stripe.webhook_endpoints import stripe_webhook_endpoint_ensure
from apps.payments.tests.factories import make_customer, make_invoice

from .flaky_proxy import flaky_proxy
from .helpers import (
    CARD_3DS,
    CARD_DECLINED_AT_CHARGE,
    CARD_OK,
    event_payload,
    signed_headers,
    stripe_list,
    stripe_options,
    three_d_secure_pass,
)
from .test_collection import customer_with_card

pytestmark = pytest.mark.django_db


@pytest.fixture
def post_event(localstripe, client):
    endpoint = stripe_webhook_endpoint_ensure(base_url="http://testserver")

    def post(event_type: str, data_object, *, event_id: str | None = None):
        now = int(time.time())
        payload = event_payload(event_type, data_object, event_id=event_id, created=now)
        response = client.post(
            f"/stripe/webhook/{endpoint.djstripe_uuid}/",
            data=payload,
            content_type="application/json",
            **signed_headers(payload, endpoint.secret, now),
        )
        assert response.status_code == 200, response.content
        return response

    return post


def pending_after_lost_answer(localstripe, settings, number: str, amount: str = "80.00") -> Payment:
    """A payment Stripe acted on whose answer never came back: only the webhook can settle it."""
    customer = customer_with_card(number)
    invoice = make_invoice(customer, amount)
    with flaky_proxy(localstripe, lose="drop") as proxy:
        settings.STRIPE_API_BASE = proxy.url
        with pytest.raises(StripeUnavailable):
            invoice_collect(invoice_id=invoice.pk, attempt=1)
    settings.STRIPE_API_BASE = localstripe
    payment = Payment.objects.get(allocations__invoice=invoice)
    assert payment.status == PaymentStatus.PENDING
    return payment


def the_intent():
    [intent] = stripe_list(stripe.PaymentIntent)
    return intent


def events_of(payment, event_type):
    return PaymentEvent.objects.filter(payment=payment, type=event_type).count()


def test_succeeded_event_replayed_three_times_makes_one_payment(localstripe, settings, post_event):
    payment = pending_after_lost_answer(localstripe, settings, CARD_OK)
    intent = the_intent()

    for _ in range(3):
        post_event("payment_intent.succeeded", intent, event_id="evt_replayed_succeeded")

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.provider_payment_id == intent["id"]
    assert events_of(payment, PaymentEventType.SUCCEEDED) == 1
    assert Event.objects.filter(id="evt_replayed_succeeded").count() == 1
    invoice = payment.allocations.get().invoice
    assert invoice.status == InvoiceStatus.PAID
    assert invoice.amount_paid == Money("80.00", "USD")
    assert Payment.objects.count() == 1


def test_the_same_outcome_under_three_event_ids_is_applied_once(localstripe, settings, post_event):
    payment = pending_after_lost_answer(localstripe, settings, CARD_OK)
    intent = the_intent()

    for _ in range(3):
        post_event("payment_intent.succeeded", intent)

    assert Event.objects.filter(type="payment_intent.succeeded").count() == 3
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert events_of(payment, PaymentEventType.SUCCEEDED) == 1
    assert payment.allocations.get().invoice.amount_paid == Money("80.00", "USD")


def test_events_out_of_order_leave_the_payment_as_stripe_has_it(localstripe, settings, post_event):
    """A stale `payment_failed` arriving after `succeeded` (and before it) changes nothing: the handler
    reads the PaymentIntent as it is now."""
    payment = pending_after_lost_answer(localstripe, settings, CARD_OK)
    intent = the_intent().to_dict(for_json=True)
    stale_failure = {**intent, "status": "requires_payment_method", "last_payment_error": {"code": "card_declined"}}

    post_event("payment_intent.payment_failed", stale_failure)
    post_event("payment_intent.succeeded", intent)
    post_event("payment_intent.payment_failed", stale_failure)

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert events_of(payment, PaymentEventType.SUCCEEDED) == 1
    assert events_of(payment, PaymentEventType.FAILED) == 0


def test_failed_event_records_the_decline_once(localstripe, settings, post_event):
    payment = pending_after_lost_answer(localstripe, settings, CARD_DECLINED_AT_CHARGE)
    intent = the_intent()
    assert intent["status"] == "requires_payment_method"

    for _ in range(3):
        post_event("payment_intent.payment_failed", intent)

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.FAILED
    assert (payment.failure_code, payment.failure_message) == ("card_declined", "Your card was declined.")
    assert events_of(payment, PaymentEventType.FAILED) == 1
    assert payment.allocations.get().invoice.status == InvoiceStatus.OPEN


def test_three_d_secure_payment_completed_by_the_customer_pays_the_invoice(localstripe, post_event):
    customer = customer_with_card(CARD_3DS)
    invoice = make_invoice(customer, "45.00")
    payment = invoice_collect(invoice_id=invoice.pk, attempt=1)
    assert payment.status == PaymentStatus.REQUIRES_ACTION
    intent = the_intent()
    post_event("payment_intent.requires_action", intent)  # the same state: nothing new
    assert events_of(payment, PaymentEventType.REQUIRES_ACTION) == 1

    # The customer follows the link and passes 3-D Secure (Stripe.js in the portal).
    three_d_secure_pass(intent["id"], intent["client_secret"])
    post_event("payment_intent.succeeded", stripe.PaymentIntent.retrieve(intent["id"], **stripe_options()))

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID


def test_an_intent_of_nobody_is_ignored(localstripe, post_event):
    customer = customer_with_card(CARD_OK)
    link = customer.stripe_link
    foreign = stripe.PaymentIntent.create(
        amount=500, currency="usd", customer=link.stripe_customer_id, payment_method="pm_card_visa", confirm=True,
        **stripe_options(),
    )  # fmt: skip

    post_event("payment_intent.succeeded", foreign)

    assert Payment.objects.count() == 0


def paid_by_card(amount="100.00"):
    customer = customer_with_card(CARD_OK)
    invoice = make_invoice(customer, amount)
    payment = invoice_collect(invoice_id=invoice.pk, attempt=1)
    assert payment.status == PaymentStatus.SUCCEEDED
    return invoice, payment


def test_credit_note_refunded_to_the_card(localstripe, monkeypatch, django_capture_on_commit_callbacks, post_event):
    invoice, payment = paid_by_card("100.00")
    monkeypatch.setattr(tasks.stripe_refund_task, "delay", tasks.stripe_refund_task.run)  # run at once
    with django_capture_on_commit_callbacks(execute=True):
        credit_note = credit_note_issue_and_refund(
            invoice_id=invoice.pk,
            reason=CreditNoteReason.OTHER,
            amount=Decimal("30.00"),
            refund_amount=Decimal("30.00"),
        )

    refund = Refund.objects.get()
    assert refund.status == RefundStatus.SUCCEEDED
    assert refund.credit_note_id == credit_note.pk
    [remote] = stripe_list(stripe.Refund)
    assert (refund.provider_refund_id, remote["amount"], remote["metadata"]["refund_id"]) == (
        remote["id"], 3000, str(refund.pk),
    )  # fmt: skip
    payment.refresh_from_db()
    assert payment.amount_refunded == Money("30.00", "USD")
    charge = stripe.Charge.retrieve(the_intent()["latest_charge"]["id"], **stripe_options())
    assert charge["amount_refunded"] == 3000

    for _ in range(3):  # Stripe's news of the same refund changes nothing
        post_event("charge.refunded", charge)
    assert Refund.objects.count() == 1
    payment.refresh_from_db()
    assert payment.amount_refunded == Money("30.00", "USD")


def test_refund_made_in_stripe_is_recorded_once(localstripe, post_event):
    invoice, payment = paid_by_card("100.00")
    remote = stripe.Refund.create(payment_intent=payment.provider_payment_id, amount=1250, **stripe_options())
    charge = stripe.Charge.retrieve(remote["charge"], **stripe_options())

    for _ in range(3):
        post_event("charge.refunded", charge)

    refund = Refund.objects.get()
    assert (refund.status, refund.provider_refund_id, refund.amount) == (
        RefundStatus.SUCCEEDED, remote["id"], Money("12.50", "USD"),
    )  # fmt: skip
    assert refund.reason == "Refunded in Stripe"
    payment.refresh_from_db()
    assert payment.amount_refunded == Money("12.50", "USD")


def test_refund_for_a_manual_payment_never_reaches_stripe(localstripe, monkeypatch, django_capture_on_commit_callbacks):
    from apps.payments.services import payment_record_manual
    from apps.payments.tests.factories import RECEIVED_AT

    customer = make_customer()
    make_invoice(customer, "50.00")
    queued = []
    monkeypatch.setattr(tasks.stripe_refund_task, "delay", lambda refund_id: queued.append(refund_id))
    payment = payment_record_manual(
        customer_id=customer.pk, amount=Decimal("50.00"), currency="USD", method="bank_transfer", reference="T1",
        received_at=RECEIVED_AT,
    )  # fmt: skip

    with django_capture_on_commit_callbacks(execute=True):
        refund_create(payment_id=payment.pk, amount=Decimal("5.00"))

    assert queued == []
    assert stripe_list(stripe.Refund) == []


def dispute_object(payment) -> dict:
    return {
        "id": "dp_1Test",
        "object": "dispute",
        "amount": 10000,
        "currency": "usd",
        "charge": the_intent()["latest_charge"]["id"],
        "payment_intent": payment.provider_payment_id,
        "reason": "fraudulent",
        "status": "needs_response",
        "created": int(time.time()),
        "livemode": False,
        "metadata": {},
    }


def test_dispute_is_recorded_once(localstripe, post_event):
    invoice, payment = paid_by_card("100.00")

    for _ in range(3):
        post_event("charge.dispute.created", dispute_object(payment))

    recorded = StripeDispute.objects.get()
    assert (recorded.payment_id, recorded.amount, recorded.reason) == (payment.pk, Money("100.00", "USD"), "fraudulent")
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED  # answered in Stripe; nothing changes here by itself


def test_disputes_are_listed_in_the_admin(localstripe, post_event, client, superuser):
    invoice, payment = paid_by_card("100.00")
    post_event("charge.dispute.created", dispute_object(payment))
    client.force_login(superuser)

    response = client.get(reverse("admin:payments_stripedispute_changelist"))

    assert response.status_code == 200
    assert "dp_1Test" in response.content.decode()


def canceled_here_but_charged_at_stripe(localstripe, settings) -> Payment:
    """Stripe charged, the answer was lost, and the payment was then canceled here (a lookup that missed
    the PaymentIntent): only the late webhook tells."""
    payment = pending_after_lost_answer(localstripe, settings, CARD_OK)
    payment_cancel(payment_id=payment.pk, reason="Its charge never reached Stripe.")
    return payment


def test_money_taken_by_stripe_after_the_payment_was_canceled_here_is_recorded_once(
    localstripe, settings, post_event, client, superuser, caplog
):
    payment = canceled_here_but_charged_at_stripe(localstripe, settings)
    intent = the_intent()

    post_event("payment_intent.succeeded", intent, event_id="evt_late_success")
    post_event("payment_intent.succeeded", intent, event_id="evt_late_success")  # replayed
    post_event("payment_intent.succeeded", intent)  # the same outcome under another id

    payment.refresh_from_db()
    assert (payment.status, payment.provider_payment_id) == (PaymentStatus.SUCCEEDED, intent["id"])
    assert events_of(payment, PaymentEventType.SUCCEEDED_AFTER_CANCEL) == 1
    invoice = payment.allocations.get().invoice
    assert (invoice.status, invoice.amount_paid) == (InvoiceStatus.PAID, Money("80.00", "USD"))
    assert payment.balance_item is None
    assert any(r.levelname == "ERROR" and "canceled here" in r.getMessage() for r in caplog.records)
    client.force_login(superuser)
    listed = client.get("/admin/payments/payment/", {"anomaly": "succeeded_after_cancel"})
    assert list(listed.context["cl"].result_list) == [payment]
    page = client.get(f"/admin/payments/payment/{payment.pk}/change/")
    assert "Succeeded at the provider after being canceled here" in page.content.decode()


def test_money_taken_after_cancel_for_an_invoice_paid_meanwhile_goes_to_the_balance(localstripe, settings, post_event):
    payment = canceled_here_but_charged_at_stripe(localstripe, settings)
    invoice = payment.allocations.get().invoice
    payment_record_manual(
        customer_id=payment.customer_id, amount=Decimal("80.00"), currency="USD", method="bank_transfer",
        reference="TRF-1", received_at=payment.created_at, allocations=[(invoice.pk, Decimal("80.00"))],
    )  # fmt: skip

    post_event("payment_intent.succeeded", the_intent())
    post_event("payment_intent.succeeded", the_intent())

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert not payment.allocations.exists()
    assert payment.balance_item.amount == Money("-80.00", "USD")
    assert events_of(payment, PaymentEventType.CREDITED_TO_BALANCE) == 1
    invoice.refresh_from_db()
    assert invoice.amount_paid == Money("80.00", "USD")
