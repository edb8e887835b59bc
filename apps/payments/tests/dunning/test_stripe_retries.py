"""Dunning retries of a card invoice against localstripe: a declined card (4000000000000341) is
retried on schedule and declined again; once the customer replaces the card, the next retry succeeds
and the dunning ends recovered."""

from datetime import timedelta

import pytest
import stripe
from django.core import mail
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import subscription_start
from apps.billing.services.simulated_clocks import simulated_clock_advance
from apps.catalog.tests.factories import PlanFactory
from apps.invoices.models import Invoice
from apps.payments.dunning.models import InvoiceDunning
from apps.payments.models import Payment
from apps.payments.stripe.client import StripeUnavailable
from apps.payments.stripe.collection import ATTEMPT_CANCEL_MARGIN, ATTEMPT_SEND_WINDOW, invoice_collect
from apps.payments.stripe.customers import stripe_payment_method_attach, stripe_setup_intent_create
from apps.payments.tests.stripe.flaky_proxy import flaky_proxy
from apps.payments.tests.stripe.helpers import (
    CARD_DECLINED_AT_CHARGE,
    CARD_OK,
    setup_intent_confirm,
    stripe_forget_idempotency_keys,
    stripe_list,
    unreachable_url,
)
from apps.subscriptions.constants import SubscriptionStatus
from apps.subscriptions.periods import utc

pytestmark = pytest.mark.django_db


def _add_card(customer, number, *, make_default=False):
    intent = stripe_setup_intent_create(customer_id=customer.pk)
    setup_intent_confirm(intent["id"], number)
    stripe_payment_method_attach(customer_id=customer.pk, setup_intent_id=intent["id"], make_default=make_default)


def test_a_declined_card_is_retried_on_schedule_and_a_replaced_card_recovers_the_invoice(
    localstripe,
    campaign,
    test_clock,
    django_capture_on_commit_callbacks,  # noqa: F811
):
    customer = CustomerFactory(
        currency="USD", test_clock=test_clock, email="card@customer.example", collection_method="charge_automatically"
    )
    _add_card(customer, CARD_DECLINED_AT_CHARGE)
    subscription = subscription_start(customer=customer, plan=PlanFactory(prices=[Money("25.00", "USD")]))
    invoice = Invoice.objects.get(subscription=subscription)

    with django_capture_on_commit_callbacks(execute=True):  # collection on finalization: attempt 1, 1 Jan
        first = invoice_collect(invoice_id=invoice.pk, attempt=1)
    assert (first.status, first.failure_code) == ("failed", "card_declined")
    dunning = InvoiceDunning.objects.get(invoice=invoice)
    assert (dunning.start_reason, dunning.first_failed_at, dunning.next_action_at) == (
        "payment_failed",
        utc(2026, 1, 1),
        utc(2026, 1, 4),
    )

    with django_capture_on_commit_callbacks(execute=True):
        simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 1, 4))  # retry: attempt 2, declined again
    _add_card(customer, CARD_OK, make_default=True)  # the customer replaces the card on 4 Jan
    with django_capture_on_commit_callbacks(execute=True):
        simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 1, 6))  # retry: attempt 3, succeeds

    payments = list(Payment.objects.filter(customer=customer).order_by("id").values_list("idempotency_key", "status"))
    assert payments == [
        (f"invoice-{invoice.pk}-attempt-1", "failed"),
        (f"invoice-{invoice.pk}-attempt-2", "failed"),
        (f"invoice-{invoice.pk}-attempt-3", "succeeded"),
    ]
    assert sorted(charge["status"] for charge in stripe_list(stripe.Charge)) == ["failed", "failed", "succeeded"]
    dunning.refresh_from_db()
    assert (dunning.status, dunning.amount_recovered, dunning.ended_at) == (
        "recovered",
        Money("25", "USD"),
        utc(2026, 1, 6),
    )
    history = list(dunning.events.order_by("id").values_list("type", "step", "occurred_at"))
    assert history == [
        ("started", None, utc(2026, 1, 1)),
        ("action_done", 0, utc(2026, 1, 4)),
        ("payment_failed", None, utc(2026, 1, 4)),
        ("action_done", 1, utc(2026, 1, 6)),
        ("recovered", None, utc(2026, 1, 6)),
    ]
    assert [event.data for event in dunning.events.filter(step__isnull=False).order_by("id")] == [
        {"attempt": 2}, {"attempt": 3},
    ]  # fmt: skip
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("paid", Money("25", "USD"))
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    mail.outbox.clear()
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 1, 20))
    assert mail.outbox == []  # recovered: no reminder
    assert Payment.objects.filter(customer=customer).count() == 3  # and no further retry


def test_a_card_declined_every_time_walks_the_whole_campaign_to_cancellation(
    localstripe, campaign, test_clock, django_capture_on_commit_callbacks
):
    customer = CustomerFactory(
        currency="USD", test_clock=test_clock, email="card@customer.example", collection_method="charge_automatically"
    )
    _add_card(customer, CARD_DECLINED_AT_CHARGE)
    subscription = subscription_start(customer=customer, plan=PlanFactory(prices=[Money("25.00", "USD")]))
    invoice = Invoice.objects.get(subscription=subscription)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        invoice_collect(invoice_id=invoice.pk, attempt=1)

    for moment in [utc(2026, 1, 4), utc(2026, 1, 6), utc(2026, 1, 8), utc(2026, 1, 31)]:
        with django_capture_on_commit_callbacks(execute=True):
            simulated_clock_advance(test_clock_id=test_clock.pk, to=moment)

    dunning = InvoiceDunning.objects.get(invoice=invoice)
    steps = list(dunning.events.order_by("id").values_list("type", "action_kind", "occurred_at"))
    assert steps == [
        ("started", "", utc(2026, 1, 1)),
        ("action_done", "retry", utc(2026, 1, 4)),
        ("payment_failed", "", utc(2026, 1, 4)),
        ("action_done", "retry", utc(2026, 1, 6)),
        ("payment_failed", "", utc(2026, 1, 6)),
        ("action_done", "retry", utc(2026, 1, 8)),
        ("payment_failed", "", utc(2026, 1, 8)),
        ("action_done", "reminder_before_due", utc(2026, 1, 12, 9)),
        ("action_done", "overdue", utc(2026, 1, 16, 9)),
        ("action_done", "reminder_after_due", utc(2026, 1, 16, 9)),
        ("action_done", "final_notice", utc(2026, 1, 25, 9)),
        ("action_done", "end_action", utc(2026, 1, 29, 9)),
        ("exhausted", "", utc(2026, 1, 29, 9)),
    ]
    assert list(Payment.objects.filter(customer=customer).order_by("id").values_list("idempotency_key", "status")) == [
        (f"invoice-{invoice.pk}-attempt-{n}", "failed") for n in (1, 2, 3, 4)
    ]
    assert [message.subject.split(":")[0] for message in mail.outbox] == ["Reminder", "Overdue", "Final notice"]
    subscription.refresh_from_db()
    assert (subscription.status, subscription.ended_at) == (SubscriptionStatus.CANCELED, utc(2026, 1, 29, 9))


def test_a_declined_card_gets_a_reminder_and_a_later_payment_ends_the_dunning(
    localstripe, campaign, test_clock, django_capture_on_commit_callbacks
):
    customer = CustomerFactory(
        currency="USD", test_clock=test_clock, email="card@customer.example", collection_method="charge_automatically"
    )
    _add_card(customer, CARD_DECLINED_AT_CHARGE)
    subscription = subscription_start(customer=customer, plan=PlanFactory(prices=[Money("25.00", "USD")]))
    invoice = Invoice.objects.get(subscription=subscription)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        first = invoice_collect(invoice_id=invoice.pk, attempt=1)  # declined: the failure is recorded
    assert (first.status, first.failure_code, first.failure_message) == (
        "failed",
        "card_declined",
        "Your card was declined.",
    )
    dunning = InvoiceDunning.objects.get(invoice=invoice)
    assert (dunning.status, dunning.next_action_kind, dunning.next_action_at) == ("active", "retry", utc(2026, 1, 4))

    with django_capture_on_commit_callbacks(execute=True):  # three retries, declined; the reminder on 12 Jan
        simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 1, 12, 10))
    assert [message.subject for message in mail.outbox] == [
        f"Reminder: invoice {invoice.number} from {invoice.seller_details['name']} is due soon"
    ]
    assert mail.outbox[0].to == ["card@customer.example"]
    assert "25.00" in mail.outbox[0].body
    dunning.refresh_from_db()
    assert (dunning.status, dunning.next_action_kind) == ("active", "overdue")

    _add_card(customer, CARD_OK, make_default=True)  # the reminder worked: a new card, and "pay now"
    with django_capture_on_commit_callbacks(execute=True):
        paid = invoice_collect(invoice_id=invoice.pk, attempt=5)
    assert paid.status == "succeeded"
    dunning.refresh_from_db()
    assert (dunning.status, dunning.amount_recovered, dunning.next_action_at) == (
        "recovered",
        Money("25", "USD"),
        None,
    )
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    mail.outbox.clear()
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 2, 1))
    assert [
        message.subject for message in mail.outbox if "Reminder" in message.subject or "notice" in message.subject
    ] == []
    assert Payment.objects.filter(customer=customer).count() == 5  # no retry after the recovery


def _aged(idempotency_key: str) -> None:
    """The payment as it is hours later (wall clock): past its task's retries and the cancel margin, yet
    within the lookup's bounds of the PaymentIntent Stripe made for it."""
    payment = Payment.objects.get(idempotency_key=idempotency_key)
    later = ATTEMPT_SEND_WINDOW + ATTEMPT_CANCEL_MARGIN + timedelta(hours=1)
    Payment.objects.filter(pk=payment.pk).update(created_at=payment.created_at - later)


def test_a_retry_days_after_a_lost_answer_finds_the_charge_at_stripe_and_charges_once(
    localstripe, campaign, test_clock, settings, django_capture_on_commit_callbacks
):
    """Attempt 2's answer was lost (Stripe charged) and the task's retries ran out: it stays pending.
    Days later (Stripe has forgotten the key) the dunning's retry looks it up at Stripe rather than
    sending it again: the charge is recorded, nothing more is charged, the dunning ends recovered."""
    customer = CustomerFactory(
        currency="USD", test_clock=test_clock, email="card@customer.example", collection_method="charge_automatically"
    )
    _add_card(customer, CARD_DECLINED_AT_CHARGE)
    subscription = subscription_start(customer=customer, plan=PlanFactory(prices=[Money("25.00", "USD")]))
    invoice = Invoice.objects.get(subscription=subscription)
    with django_capture_on_commit_callbacks(execute=True):
        assert invoice_collect(invoice_id=invoice.pk, attempt=1).status == "failed"
    _add_card(customer, CARD_OK, make_default=True)
    with flaky_proxy(localstripe, lose="drop") as proxy:
        settings.STRIPE_API_BASE = proxy.url
        with pytest.raises(StripeUnavailable):
            invoice_collect(invoice_id=invoice.pk, attempt=2)
    settings.STRIPE_API_BASE = localstripe
    assert Payment.objects.get(idempotency_key=f"invoice-{invoice.pk}-attempt-2").status == "pending"
    assert [charge["status"] for charge in stripe_list(stripe.Charge)] == ["failed", "succeeded"]  # Stripe charged
    _aged(f"invoice-{invoice.pk}-attempt-2")
    stripe_forget_idempotency_keys(localstripe)

    with django_capture_on_commit_callbacks(execute=True):
        simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 1, 4))  # the first retry

    assert list(Payment.objects.filter(customer=customer).order_by("id").values_list("idempotency_key", "status")) == [
        (f"invoice-{invoice.pk}-attempt-1", "failed"),
        (f"invoice-{invoice.pk}-attempt-2", "succeeded"),
    ]
    assert sorted(charge["status"] for charge in stripe_list(stripe.Charge)) == ["failed", "succeeded"]  # once
    dunning = InvoiceDunning.objects.get(invoice=invoice)
    assert list(dunning.events.order_by("id").values_list("type", "step", "data")) == [
        ("started", None, {"reason": "payment_failed", "campaign": "Standard", "amount_due": "25.00",
                           "failed_at": utc(2026, 1, 1).isoformat()}),
        ("action_done", 0, {"attempt": 3}),  # planned; attempt 2's charge, found at Stripe, made it needless
        ("recovered", None, {"amount_recovered": "25.00"}),
    ]  # fmt: skip
    assert (dunning.status, dunning.amount_recovered) == ("recovered", Money("25", "USD"))
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("paid", Money("25", "USD"))


def test_a_retry_after_an_attempt_that_never_reached_stripe_charges_under_a_new_key_once(
    localstripe, campaign, test_clock, settings, django_capture_on_commit_callbacks
):
    customer = CustomerFactory(
        currency="USD", test_clock=test_clock, email="card@customer.example", collection_method="charge_automatically"
    )
    _add_card(customer, CARD_DECLINED_AT_CHARGE)
    subscription = subscription_start(customer=customer, plan=PlanFactory(prices=[Money("25.00", "USD")]))
    invoice = Invoice.objects.get(subscription=subscription)
    with django_capture_on_commit_callbacks(execute=True):
        assert invoice_collect(invoice_id=invoice.pk, attempt=1).status == "failed"
    _add_card(customer, CARD_OK, make_default=True)
    settings.STRIPE_API_BASE = unreachable_url()
    with pytest.raises(StripeUnavailable):
        invoice_collect(invoice_id=invoice.pk, attempt=2)
    settings.STRIPE_API_BASE = localstripe
    _aged(f"invoice-{invoice.pk}-attempt-2")

    with django_capture_on_commit_callbacks(execute=True):
        simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 1, 4))  # the first retry

    assert list(Payment.objects.filter(customer=customer).order_by("id").values_list("idempotency_key", "status")) == [
        (f"invoice-{invoice.pk}-attempt-1", "failed"),
        (f"invoice-{invoice.pk}-attempt-2", "canceled"),
        (f"invoice-{invoice.pk}-attempt-3", "succeeded"),
    ]
    assert sorted(charge["status"] for charge in stripe_list(stripe.Charge)) == ["failed", "succeeded"]
    assert InvoiceDunning.objects.get(invoice=invoice).status == "recovered"


def test_an_amount_no_card_can_be_charged_is_not_retried_and_the_reminders_ask_for_a_transfer(
    localstripe, campaign, test_clock, django_capture_on_commit_callbacks
):
    """12.345 KWD: Stripe refuses that amount for any card (`amount_not_chargeable`). Retrying the card
    cannot help: the retries are skipped with the reason (for staff), the reminders give the bank
    details instead of promising a card retry."""
    customer = CustomerFactory(
        currency="KWD", test_clock=test_clock, email="card@customer.example", collection_method="charge_automatically"
    )
    _add_card(customer, CARD_OK)
    subscription = subscription_start(customer=customer, plan=PlanFactory(prices=[Money("12.345", "KWD")]))
    invoice = Invoice.objects.get(subscription=subscription)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert invoice_collect(invoice_id=invoice.pk, attempt=1).failure_code == "amount_not_chargeable"

    for moment in [utc(2026, 1, 4), utc(2026, 1, 6), utc(2026, 1, 8), utc(2026, 1, 20)]:
        with django_capture_on_commit_callbacks(execute=True):
            simulated_clock_advance(test_clock_id=test_clock.pk, to=moment)

    dunning = InvoiceDunning.objects.get(invoice=invoice)
    retries = list(dunning.events.filter(action_kind="retry").order_by("id").values_list("type", "data"))
    reason = (
        "the amount due cannot be charged by card: Stripe charges cards in KWD only in steps of 0.010 KWD: "
        "12.345 KWD cannot be charged by card. Record a manual payment, or issue a credit note for the last 0.005 KWD."
    )
    assert retries == [("action_skipped", {"reason": reason})] * 3
    assert Payment.objects.filter(customer=customer).count() == 1  # no further attempt
    assert stripe_list(stripe.PaymentIntent) == []
    assert [message.subject.split(":")[0] for message in mail.outbox] == ["Reminder", "Overdue"]
    for message in mail.outbox:
        assert "How to pay: by bank transfer" in message.body
        assert "We charge the card on file" not in message.body
