"""Charging open invoices by card (off-session PaymentIntents) against localstripe."""

from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import stripe
from django.core import mail
from djmoney.money import Money

from apps.core.errors import Conflict, InvalidTransition
from apps.invoices.constants import InvoiceStatus
from apps.invoices.models import Invoice
from apps.payments.constants import PaymentStatus
from apps.payments.models import Payment
from apps.payments.signals import payment_failed, payment_requires_action, payment_succeeded
from apps.payments.stripe import tasks
from apps.payments.stripe.client import StripeUnavailable, money_from_stripe, stripe_amount
from apps.payments.stripe.collection import (
    ATTEMPT_CANCEL_MARGIN,
    ATTEMPT_SEND_WINDOW,
    invoice_charge_now,
    invoice_collect,
    invoices_collection_start,
    payment_intent_confirm,
)
from apps.payments.stripe.customers import stripe_customer_get, stripe_payment_method_attach, stripe_setup_intent_create
from apps.payments.tests.factories import make_customer, make_invoice

from .flaky_proxy import flaky_proxy
from .helpers import (
    CARD_3DS,
    CARD_DECLINED_AT_CHARGE,
    CARD_OK,
    setup_intent_confirm,
    stripe_forget_idempotency_keys,
    stripe_list,
    unreachable_url,
)

pytestmark = pytest.mark.django_db


def customer_with_card(number: str | None = CARD_OK, **kwargs):
    customer = make_customer(collection_method="charge_automatically", **kwargs)
    if number:
        intent = stripe_setup_intent_create(customer_id=customer.pk)
        setup_intent_confirm(intent["id"], number)
        stripe_payment_method_attach(customer_id=customer.pk, setup_intent_id=intent["id"])
    return customer


def signals_sent(*signals):
    sent = []
    for signal in signals:
        signal.connect(lambda sender, signal=signal, **kwargs: sent.append((signal, kwargs["payment_id"])), weak=False)
    return sent


def test_card_payment_succeeds_and_pays_the_invoice(localstripe, django_capture_on_commit_callbacks):
    customer = customer_with_card()
    invoice = make_invoice(customer, "120.50")
    assert invoice.collection_method == "charge_automatically"
    succeeded = []
    payment_succeeded.connect(lambda sender, **kw: succeeded.append(kw["payment_id"]), weak=False)

    with django_capture_on_commit_callbacks(execute=True):
        payment = invoice_collect(invoice_id=invoice.pk, attempt=1)

    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.amount == Money("120.50", "USD")
    assert payment.idempotency_key == f"invoice-{invoice.pk}-attempt-1"
    assert (payment.provider, payment.method) == ("stripe", "card")
    assert succeeded == [payment.pk]
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert invoice.amount_paid == Money("120.50", "USD")
    [intent] = stripe_list(stripe.PaymentIntent)
    assert intent["id"] == payment.provider_payment_id
    assert (intent["amount"], intent["currency"], intent["status"]) == (12050, "usd", "succeeded")
    metadata = {"payment_id": str(payment.pk), "invoice_id": str(invoice.pk), "attempt": "1"}
    assert intent["metadata"].to_dict() == metadata
    assert [(c["amount"], c["status"]) for c in stripe_list(stripe.Charge)] == [(12050, "succeeded")]


def test_the_same_attempt_again_charges_nothing_more(localstripe):
    customer = customer_with_card()
    invoice = make_invoice(customer, "40.00")
    first = invoice_collect(invoice_id=invoice.pk, attempt=1)

    again = invoice_collect(invoice_id=invoice.pk, attempt=1)

    assert again.pk == first.pk
    assert Payment.objects.count() == 1
    assert len(stripe_list(stripe.PaymentIntent)) == 1
    assert len(stripe_list(stripe.Charge)) == 1


def test_declined_card_records_the_failure_and_leaves_the_invoice_open(localstripe, django_capture_on_commit_callbacks):
    customer = customer_with_card(CARD_DECLINED_AT_CHARGE)
    invoice = make_invoice(customer, "75.00")
    failed = []
    payment_failed.connect(lambda sender, **kw: failed.append(kw["payment_id"]), weak=False)

    with django_capture_on_commit_callbacks(execute=True):
        payment = invoice_collect(invoice_id=invoice.pk, attempt=1)

    assert payment.status == PaymentStatus.FAILED
    assert (payment.failure_code, payment.failure_message) == ("card_declined", "Your card was declined.")
    assert failed == [payment.pk]
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OPEN
    assert invoice.amount_paid == Money("0", "USD")
    assert invoice.amount_due == Money("75.00", "USD")
    assert [c["status"] for c in stripe_list(stripe.Charge)] == ["failed"]


def test_a_new_attempt_after_a_decline_succeeds_with_a_new_card(localstripe):
    customer = customer_with_card(CARD_DECLINED_AT_CHARGE)
    invoice = make_invoice(customer, "75.00")
    first = invoice_collect(invoice_id=invoice.pk, attempt=1)
    intent = stripe_setup_intent_create(customer_id=customer.pk)
    setup_intent_confirm(intent["id"], CARD_OK)
    stripe_payment_method_attach(customer_id=customer.pk, setup_intent_id=intent["id"], make_default=True)

    second = invoice_collect(invoice_id=invoice.pk, attempt=2)

    assert (first.status, second.status) == (PaymentStatus.FAILED, PaymentStatus.SUCCEEDED)
    assert second.idempotency_key == f"invoice-{invoice.pk}-attempt-2"
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert sorted(c["status"] for c in stripe_list(stripe.Charge)) == ["failed", "succeeded"]


def test_three_d_secure_card_requires_action_and_the_customer_gets_the_link(
    localstripe, settings, django_capture_on_commit_callbacks, monkeypatch
):
    settings.PORTAL_BASE_URL = "https://billing.example"
    customer = customer_with_card(CARD_3DS, email="ap@liffey.example")
    invoice = make_invoice(customer, "99.00")
    queued = []
    monkeypatch.setattr(tasks.payment_action_email_task, "delay", lambda payment_id: queued.append(payment_id))
    action = []
    payment_requires_action.connect(lambda sender, **kw: action.append(kw["payment_id"]), weak=False)

    with django_capture_on_commit_callbacks(execute=True):
        payment = invoice_collect(invoice_id=invoice.pk, attempt=1)

    link = f"https://billing.example/portal/invoices/{invoice.pk}/pay/"
    assert payment.status == PaymentStatus.REQUIRES_ACTION
    assert payment.next_action_url == link
    [intent] = stripe_list(stripe.PaymentIntent)
    assert (payment.provider_payment_id, intent["status"]) == (intent["id"], "requires_action")
    assert queued == [payment.pk]
    assert action == [payment.pk]
    assert stripe_list(stripe.Charge) == []

    assert tasks.payment_action_email_task(payment.pk) is True
    [message] = mail.outbox
    assert message.to == ["ap@liffey.example"]
    assert message.subject == f"Please confirm your payment for invoice {invoice.number}"
    assert link in message.body
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OPEN


def test_no_card_is_a_failed_attempt(localstripe):
    customer = customer_with_card(None)
    invoice = make_invoice(customer, "10.00")

    payment = invoice_collect(invoice_id=invoice.pk, attempt=1)

    assert payment.status == PaymentStatus.FAILED
    assert payment.failure_code == "no_payment_method"
    assert stripe_list(stripe.PaymentIntent) == []


def test_paid_or_void_invoices_are_not_collected(localstripe):
    customer = customer_with_card()
    invoice = make_invoice(customer, "10.00")
    invoice_collect(invoice_id=invoice.pk, attempt=1)

    with pytest.raises(InvalidTransition):
        invoice_collect(invoice_id=invoice.pk, attempt=2)
    assert Payment.objects.count() == 1
    assert len(stripe_list(stripe.PaymentIntent)) == 1


def test_lost_answer_then_retry_charges_once(localstripe, settings):
    """Stripe charges, the answer is lost (connection dropped): the same attempt again sends the same
    idempotency key and gets the same PaymentIntent back; one charge in all."""
    customer = customer_with_card()
    invoice = make_invoice(customer, "250.00")
    with flaky_proxy(localstripe, lose="drop") as proxy:
        settings.STRIPE_API_BASE = proxy.url

        with pytest.raises(StripeUnavailable):
            invoice_collect(invoice_id=invoice.pk, attempt=1)

        payment = Payment.objects.get()
        assert payment.status == PaymentStatus.PENDING
        assert [c["status"] for c in stripe_list(stripe.Charge)] == ["succeeded"]  # Stripe did charge

        retried = invoice_collect(invoice_id=invoice.pk, attempt=1)

    assert retried.pk == payment.pk
    assert retried.status == PaymentStatus.SUCCEEDED
    sent = proxy.requests_to("/v1/payment_intents")
    assert [(f.idempotency_key, f.answered) for f in sent] == [
        (f"invoice-{invoice.pk}-attempt-1", False),
        (f"invoice-{invoice.pk}-attempt-1", True),
    ]
    [intent] = stripe_list(stripe.PaymentIntent)
    assert retried.provider_payment_id == intent["id"]
    assert len(stripe_list(stripe.Charge)) == 1
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID


def test_timeout_is_retried_by_the_client_with_the_same_key(localstripe, settings):
    """Stripe charges and says nothing until the client times out; the client's own retry (same key)
    gets the PaymentIntent: one charge."""
    settings.STRIPE_TIMEOUT_SECONDS = 1
    settings.STRIPE_MAX_NETWORK_RETRIES = 1
    customer = customer_with_card()
    invoice = make_invoice(customer, "30.00")
    with flaky_proxy(localstripe, lose="stall") as proxy:
        settings.STRIPE_API_BASE = proxy.url
        payment = invoice_collect(invoice_id=invoice.pk, attempt=1)

    assert payment.status == PaymentStatus.SUCCEEDED
    keys = [(f.idempotency_key, f.answered) for f in proxy.requests_to("/v1/payment_intents")]
    assert keys == [(f"invoice-{invoice.pk}-attempt-1", False), (f"invoice-{invoice.pk}-attempt-1", True)]
    assert len(stripe_list(stripe.PaymentIntent)) == 1
    assert len(stripe_list(stripe.Charge)) == 1


def test_task_retries_after_a_lost_answer_and_charges_once(localstripe, settings):
    customer = customer_with_card()
    invoice = make_invoice(customer, "60.00")
    with flaky_proxy(localstripe, lose="drop") as proxy:
        settings.STRIPE_API_BASE = proxy.url
        # Run in this process: the task's retry (after StripeUnavailable) runs here too, at once.
        result = tasks.invoice_collect_task.apply(args=(invoice.pk, 1), throw=False)

    assert (result.state, result.get()) == ("SUCCESS", "succeeded")
    keys = [(f.idempotency_key, f.answered) for f in proxy.requests_to("/v1/payment_intents")]
    assert keys == [(f"invoice-{invoice.pk}-attempt-1", False), (f"invoice-{invoice.pk}-attempt-1", True)]
    assert len(stripe_list(stripe.Charge)) == 1
    assert Payment.objects.get().status == PaymentStatus.SUCCEEDED


def test_finalized_invoices_are_handed_to_collection(localstripe, monkeypatch):
    charged = []
    pay_links = []
    monkeypatch.setattr(tasks.invoice_collect_task, "delay", lambda *args: charged.append(args))
    monkeypatch.setattr(tasks.invoice_pay_link_email_task, "delay", lambda *args: pay_links.append(args))
    automatic = make_invoice(customer_with_card(), "10.00")
    emailed = make_invoice(make_customer(collection_method="send_invoice"), "20.00")
    draft = Invoice.objects.filter(pk=make_invoice(make_customer(), "5.00").pk)
    draft.update(status=InvoiceStatus.VOID)

    invoices_collection_start(invoice_ids=[automatic.pk, emailed.pk, draft.get().pk])

    assert charged == [(automatic.pk, 1)]
    assert pay_links == [(emailed.pk,)]


def test_nothing_is_handed_over_while_card_payments_are_off(settings, monkeypatch):
    settings.STRIPE_ENABLED = False
    charged = []
    monkeypatch.setattr(tasks.invoice_collect_task, "delay", lambda *args: charged.append(args))
    invoice = make_invoice(make_customer(collection_method="charge_automatically"), "10.00")

    invoices_collection_start(invoice_ids=[invoice.pk])

    assert charged == []


def test_pay_link_email_of_a_send_invoice_invoice(localstripe, settings):
    settings.PORTAL_BASE_URL = "https://billing.example/"
    invoice = make_invoice(make_customer(collection_method="send_invoice", email="ap@kiez.example"), "20.00")

    assert tasks.invoice_pay_link_email_task(invoice.pk) is True

    [message] = mail.outbox
    assert message.to == ["ap@kiez.example"]
    assert message.subject == f"Pay invoice {invoice.number} online"
    assert f"https://billing.example/portal/invoices/{invoice.pk}/pay/" in message.body
    assert "20.00" in message.body
    assert Decimal(invoice.amount_due.amount) == Decimal("20.00")


def test_no_pay_link_when_bills_are_not_emailed_on_finalization(localstripe, settings, monkeypatch):
    settings.INVOICE_EMAIL_ON_FINALIZE = False
    pay_links = []
    monkeypatch.setattr(tasks.invoice_pay_link_email_task, "delay", lambda *args: pay_links.append(args))
    invoice = make_invoice(make_customer(collection_method="send_invoice"), "20.00")

    invoices_collection_start(invoice_ids=[invoice.pk])

    assert pay_links == []


def test_no_new_attempt_while_an_earlier_one_has_no_answer(localstripe, settings):
    """The earlier charge may have gone through: a second attempt would charge twice."""
    customer = customer_with_card()
    invoice = make_invoice(customer, "50.00")
    with flaky_proxy(localstripe, lose="drop") as proxy:
        settings.STRIPE_API_BASE = proxy.url
        with pytest.raises(StripeUnavailable):
            invoice_collect(invoice_id=invoice.pk, attempt=1)
    settings.STRIPE_API_BASE = localstripe

    with pytest.raises(Conflict):
        invoice_collect(invoice_id=invoice.pk, attempt=2)

    assert Payment.objects.count() == 1
    assert len(stripe_list(stripe.Charge)) == 1
    assert invoice_collect(invoice_id=invoice.pk, attempt=1).status == PaymentStatus.SUCCEEDED


def test_a_new_attempt_cancels_one_waiting_for_3ds(localstripe):
    customer = customer_with_card(CARD_3DS)
    invoice = make_invoice(customer, "50.00")
    waiting = invoice_collect(invoice_id=invoice.pk, attempt=1)
    intent_setup = stripe_setup_intent_create(customer_id=customer.pk)
    setup_intent_confirm(intent_setup["id"], CARD_OK)
    stripe_payment_method_attach(customer_id=customer.pk, setup_intent_id=intent_setup["id"], make_default=True)

    second = invoice_collect(invoice_id=invoice.pk, attempt=2)

    waiting.refresh_from_db()
    assert (waiting.status, second.status) == (PaymentStatus.CANCELED, PaymentStatus.SUCCEEDED)
    statuses = {i["id"]: i["status"] for i in stripe_list(stripe.PaymentIntent)}
    assert statuses == {waiting.provider_payment_id: "canceled", second.provider_payment_id: "succeeded"}


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [("10.50", "USD", 1050), ("500", "JPY", 500), ("12.340", "KWD", 12340), ("0.005", "KWD", 5)],
)
def test_amounts_go_to_stripe_in_the_currencys_minor_unit_and_back(amount, currency, minor):
    assert stripe_amount(Decimal(amount), currency) == minor
    assert money_from_stripe(minor, currency.lower()) == Decimal(amount)


def test_a_three_decimal_amount_in_whole_tens_is_charged(localstripe):
    customer = customer_with_card(currency="KWD")
    invoice = make_invoice(customer, "12.340")

    payment = invoice_collect(invoice_id=invoice.pk, attempt=1)

    assert (payment.status, payment.amount) == (PaymentStatus.SUCCEEDED, Money("12.340", "KWD"))
    [intent] = stripe_list(stripe.PaymentIntent)
    assert (intent["amount"], intent["currency"]) == (12340, "kwd")
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID


def test_a_three_decimal_amount_stripe_would_refuse_fails_the_attempt_without_a_request(localstripe):
    customer = customer_with_card(currency="KWD")
    invoice = make_invoice(customer, "12.345")

    payment = invoice_collect(invoice_id=invoice.pk, attempt=1)

    assert (payment.status, payment.failure_code) == (PaymentStatus.FAILED, "amount_not_chargeable")
    assert payment.failure_message == (
        "Stripe charges cards in KWD only in steps of 0.010 KWD: 12.345 KWD cannot be charged by card. "
        "Record a manual payment, or issue a credit note for the last 0.005 KWD."
    )
    assert stripe_list(stripe.PaymentIntent) == []
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == (InvoiceStatus.OPEN, Money("0", "KWD"))


# Old enough to be reconciled and canceled when Stripe does not know it (its send window and the cancel
# margin over), yet within the lookup's bounds of a PaymentIntent made now. (The payment's `created_at` is
# moved back rather than the clock forward: the window is measured on the wall clock, as is localstripe's
# `created`. Tests that need Stripe to have forgotten the key say so with `stripe_forget_idempotency_keys`.)
PAST_THE_CANCEL_MARGIN = ATTEMPT_SEND_WINDOW + ATTEMPT_CANCEL_MARGIN + timedelta(hours=1)


def _aged(payment, by: timedelta = PAST_THE_CANCEL_MARGIN):
    """The payment as it is `by` later: past its collection task's retries and the cancel margin."""
    Payment.objects.filter(pk=payment.pk).update(created_at=payment.created_at - by)
    payment.refresh_from_db()
    return payment


def test_charge_now_days_after_a_lost_answer_finds_the_charge_at_stripe_and_charges_nothing_more(localstripe, settings):
    """Stripe charged, the answer was lost and the task's retries ran out; days later Stripe has
    forgotten the key. "Charge now" looks the attempt up at Stripe instead of sending it again: the
    charge is recorded, once, and nothing more is charged."""
    customer = customer_with_card()
    invoice = make_invoice(customer, "45.00")
    with flaky_proxy(localstripe, lose="drop") as proxy:
        settings.STRIPE_API_BASE = proxy.url
        with pytest.raises(StripeUnavailable):
            invoice_collect(invoice_id=invoice.pk, attempt=1)
        pending = _aged(Payment.objects.get())
        assert pending.status == PaymentStatus.PENDING
        stripe_forget_idempotency_keys(localstripe)

        payment = invoice_charge_now(invoice_id=invoice.pk)

    assert (payment.pk, payment.status) == (pending.pk, PaymentStatus.SUCCEEDED)
    assert [(f.method, f.idempotency_key) for f in proxy.requests_to("/v1/payment_intents")] == [
        ("POST", f"invoice-{invoice.pk}-attempt-1"),
        ("GET", None),  # the lookup; the attempt is not sent again
    ]
    [intent] = stripe_list(stripe.PaymentIntent)
    assert payment.provider_payment_id == intent["id"]
    assert Payment.objects.count() == len(stripe_list(stripe.Charge)) == 1
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID


def test_a_late_run_of_the_attempt_itself_looks_it_up_instead_of_sending_it_again(localstripe, settings):
    customer = customer_with_card()
    invoice = make_invoice(customer, "45.00")
    with flaky_proxy(localstripe, lose="drop") as proxy:
        settings.STRIPE_API_BASE = proxy.url
        with pytest.raises(StripeUnavailable):
            invoice_collect(invoice_id=invoice.pk, attempt=1)
    settings.STRIPE_API_BASE = localstripe
    _aged(Payment.objects.get())
    stripe_forget_idempotency_keys(localstripe)

    payment = invoice_collect(invoice_id=invoice.pk, attempt=1)  # a redelivered task, days later

    assert payment.status == PaymentStatus.SUCCEEDED
    assert Payment.objects.count() == len(stripe_list(stripe.Charge)) == 1


def test_charge_now_after_an_attempt_that_never_reached_stripe_cancels_it_and_charges_under_a_new_key(
    localstripe, settings
):
    customer = customer_with_card()
    invoice = make_invoice(customer, "45.00")
    settings.STRIPE_API_BASE = unreachable_url()
    with pytest.raises(StripeUnavailable):
        invoice_collect(invoice_id=invoice.pk, attempt=1)
    settings.STRIPE_API_BASE = localstripe
    stale = _aged(Payment.objects.get())

    payment = invoice_charge_now(invoice_id=invoice.pk)

    stale.refresh_from_db()
    assert stale.status == PaymentStatus.CANCELED
    assert stale.events.get(type="canceled").data["reason"].startswith("Its charge never reached Stripe")
    assert (payment.status, payment.idempotency_key) == (PaymentStatus.SUCCEEDED, f"invoice-{invoice.pk}-attempt-2")
    assert [intent["metadata"]["payment_id"] for intent in stripe_list(stripe.PaymentIntent)] == [str(payment.pk)]
    assert len(stripe_list(stripe.Charge)) == 1


def test_charge_now_while_an_attempt_may_still_be_on_its_way_is_refused(localstripe, settings):
    """Not found at Stripe, but its task may still send it (its retries are not over): no second charge."""
    customer = customer_with_card()
    invoice = make_invoice(customer, "45.00")
    settings.STRIPE_API_BASE = unreachable_url()
    with pytest.raises(StripeUnavailable):
        invoice_collect(invoice_id=invoice.pk, attempt=1)
    settings.STRIPE_API_BASE = localstripe

    with pytest.raises(Conflict):
        invoice_charge_now(invoice_id=invoice.pk)

    assert Payment.objects.get().status == PaymentStatus.PENDING
    assert stripe_list(stripe.PaymentIntent) == []


def test_a_key_stripe_refuses_leaves_the_payment_pending_not_declined(localstripe, settings):
    """The answer was lost (Stripe charged card A); the customer then made card B the default; the
    task's retry sends the same key with other parameters and Stripe refuses the key: the outcome is
    unknown, not a decline. A later lookup records the charge."""
    customer = customer_with_card()
    invoice = make_invoice(customer, "45.00")
    with flaky_proxy(localstripe, lose="drop") as proxy:
        settings.STRIPE_API_BASE = proxy.url
        with pytest.raises(StripeUnavailable):
            invoice_collect(invoice_id=invoice.pk, attempt=1)
    settings.STRIPE_API_BASE = localstripe
    intent = stripe_setup_intent_create(customer_id=customer.pk)
    setup_intent_confirm(intent["id"], CARD_OK)
    stripe_payment_method_attach(customer_id=customer.pk, setup_intent_id=intent["id"], make_default=True)
    sent = signals_sent(payment_failed)

    with pytest.raises(Conflict) as refused:
        invoice_collect(invoice_id=invoice.pk, attempt=1)  # the task's retry
    assert refused.value.fields == {"invoice": ["A card payment of this invoice is still pending."]}

    payment = Payment.objects.get()
    assert (payment.status, payment.failure_code, sent) == (PaymentStatus.PENDING, "", [])
    result = tasks.invoice_collect_task.apply(args=(invoice.pk, 1), throw=False)
    assert (result.state, result.get()) == ("SUCCESS", None)
    assert Payment.objects.get().status == PaymentStatus.PENDING
    _aged(payment)
    assert invoice_charge_now(invoice_id=invoice.pk).status == PaymentStatus.SUCCEEDED
    assert Payment.objects.count() == len(stripe_list(stripe.Charge)) == 1


# Just past the sender's window, well inside the reconciler's margin.
JUST_PAST_THE_WINDOW = ATTEMPT_SEND_WINDOW + ATTEMPT_CANCEL_MARGIN / 2


def test_just_past_the_window_an_attempt_is_neither_sent_nor_canceled(localstripe, settings, api_client, superuser):
    """A late retry of the attempt no longer sends it; a "charge now" does not cancel it yet (its
    sender may have checked the window just before it ended and still be on its way): 409."""
    customer = customer_with_card()
    invoice = make_invoice(customer, "45.00")
    settings.STRIPE_API_BASE = unreachable_url()
    with pytest.raises(StripeUnavailable):
        invoice_collect(invoice_id=invoice.pk, attempt=1)
    settings.STRIPE_API_BASE = localstripe
    pending = _aged(Payment.objects.get(), by=JUST_PAST_THE_WINDOW)

    assert invoice_collect(invoice_id=invoice.pk, attempt=1).status == PaymentStatus.PENDING  # a late retry
    api_client.force_authenticate(superuser)
    response = api_client.post(f"/api/v1/invoices/{invoice.pk}/charge", HTTP_IDEMPOTENCY_KEY="now-1")

    assert response.status_code == 409, response.content
    assert response.json()["fields"] == {"invoice": ["A card payment of this invoice is still pending."]}
    pending.refresh_from_db()
    assert pending.status == PaymentStatus.PENDING
    assert Payment.objects.count() == 1
    assert stripe_list(stripe.PaymentIntent) == []


def test_the_sender_checks_the_window_again_just_before_sending(localstripe):
    """A run that passed the window check and reached the request after the window ended sends nothing."""
    customer = customer_with_card()
    invoice = make_invoice(customer, "45.00")
    late = _aged(
        Payment.objects.create(
            customer=customer, provider="stripe", method="card", amount=Money("45.00", "USD"),
            status=PaymentStatus.PENDING, idempotency_key=f"invoice-{invoice.pk}-attempt-1",
        ),
        by=JUST_PAST_THE_WINDOW,
    )  # fmt: skip
    link = stripe_customer_get(customer_id=customer.pk)

    payment = payment_intent_confirm(
        payment=late,
        stripe_customer_id=link.stripe_customer_id,
        payment_method_id=link.default_payment_method_id,
        off_session=True,
        metadata={"payment_id": str(late.pk)},
    )

    assert payment.status == PaymentStatus.PENDING
    assert stripe_list(stripe.PaymentIntent) == []


def test_the_lookup_finds_the_charge_even_when_the_app_clock_runs_hours_ahead_of_stripe(localstripe, settings):
    """The app host's clock was 3 hours fast when it wrote the payment: its PaymentIntent looks created
    3 hours *before* it at Stripe. The lookup still finds it (and bounds its paging on both sides)."""
    customer = customer_with_card()
    invoice = make_invoice(customer, "45.00")
    with flaky_proxy(localstripe, lose="drop") as proxy:
        settings.STRIPE_API_BASE = proxy.url
        with pytest.raises(StripeUnavailable):
            invoice_collect(invoice_id=invoice.pk, attempt=1)
        pending = _aged(Payment.objects.get(), by=-timedelta(hours=3))  # written by a fast clock

        payment = invoice_charge_now(invoice_id=invoice.pk)

    assert (payment.pk, payment.status) == (pending.pk, PaymentStatus.SUCCEEDED)
    [lookup] = [f for f in proxy.requests_to("/v1/payment_intents") if f.method == "GET"]
    query = parse_qs(urlsplit(lookup.path).query)
    since, until = int(query["created[gte]"][0]), int(query["created[lte]"][0])
    assert since == int((pending.created_at - timedelta(days=1)).timestamp())
    assert until == int(
        (pending.created_at + ATTEMPT_SEND_WINDOW + ATTEMPT_CANCEL_MARGIN + timedelta(days=1)).timestamp()
    )
    assert Payment.objects.count() == len(stripe_list(stripe.Charge)) == 1
