"""Dunning driven by payments: a declined card starts it (failure recorded, retries scheduled from the
failure, subscription past due); a later successful payment ends it (recovered amount, subscription
active again). A part payment is counted and the dunning goes on."""

from decimal import Decimal

import pytest
from django.core import mail
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import subscription_start
from apps.billing.services.simulated_clocks import simulated_clock_advance
from apps.catalog.tests.factories import PlanFactory
from apps.invoices.models import Invoice
from apps.payments.dunning.constants import DunningStatus
from apps.payments.dunning.models import InvoiceDunning
from apps.payments.dunning.selectors import RecoveryFigures, dunning_recovery_figures
from apps.payments.dunning.services import dunning_recover_if_paid
from apps.payments.services import (
    payment_create_pending,
    payment_mark_failed,
    payment_mark_succeeded,
    payment_record_manual,
    payment_reverse,
)
from apps.subscriptions.constants import SubscriptionStatus
from apps.subscriptions.periods import utc

pytestmark = pytest.mark.django_db


@pytest.fixture
def card_subscription(test_clock):
    customer = CustomerFactory(
        currency="USD", test_clock=test_clock, email="cards@customer.example", collection_method="charge_automatically"
    )
    return subscription_start(customer=customer, plan=PlanFactory(prices=[Money("25.00", "USD")]))


def _attempt(invoice, number, *, succeed, capture):
    with capture(execute=True):
        payment = payment_create_pending(
            customer_id=invoice.customer_id, invoice_ids=[invoice.pk], amount=None, provider="stripe", method="card",
            idempotency_key=f"invoice-{invoice.pk}-attempt-{number}",
        )  # fmt: skip
        if succeed:
            payment_mark_succeeded(payment_id=payment.pk, provider_payment_id=f"pi_{number}")
        else:
            payment_mark_failed(payment_id=payment.pk, failure_code="card_declined", failure_message="Declined.")
    return payment


def test_a_declined_card_starts_dunning_and_a_later_success_clears_it(
    campaign, test_clock, card_subscription, django_capture_on_commit_callbacks
):
    invoice = Invoice.objects.get(subscription=card_subscription)
    assert (invoice.collection_method, invoice.due_on.isoformat()) == ("charge_automatically", "2026-01-15")
    mail.outbox.clear()

    _attempt(invoice, 1, succeed=False, capture=django_capture_on_commit_callbacks)  # at the clock's 1 Jan 00:00

    dunning = InvoiceDunning.objects.get(invoice=invoice)
    assert (dunning.status, dunning.start_reason, dunning.first_failed_at) == (
        "active",
        "payment_failed",
        utc(2026, 1, 1),
    )
    assert [(entry["kind"], entry["at"], entry["attempt"]) for entry in dunning.plan][:4] == [
        ("retry", "2026-01-04T00:00:00+00:00", 2),
        ("retry", "2026-01-06T00:00:00+00:00", 3),
        ("retry", "2026-01-08T00:00:00+00:00", 4),
        ("reminder_before_due", "2026-01-12T09:00:00+00:00", None),
    ]
    assert (dunning.next_action_kind, dunning.next_action_at) == ("retry", utc(2026, 1, 4))
    card_subscription.refresh_from_db()
    assert card_subscription.status == SubscriptionStatus.PAST_DUE

    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 1, 13))
    assert [message.subject for message in mail.outbox] == [
        f"Reminder: invoice {invoice.number} from Acme Cloud Ltd. is due soon"
    ]
    assert "We charge the card on file" in mail.outbox[0].body

    test_clock.refresh_from_db()
    _attempt(invoice, 5, succeed=True, capture=django_capture_on_commit_callbacks)  # the customer's new card, 13 Jan

    dunning.refresh_from_db()
    assert (dunning.status, dunning.amount_recovered, dunning.ended_at) == (
        DunningStatus.RECOVERED,
        Money("25", "USD"),
        utc(2026, 1, 13),
    )
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("paid", Money("25", "USD"))
    card_subscription.refresh_from_db()
    assert card_subscription.status == SubscriptionStatus.ACTIVE
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 1, 31))
    assert len(mail.outbox) == 1  # nothing more once recovered
    types = list(dunning.events.order_by("id").values_list("type", "step", "occurred_at"))
    assert types[0] == ("started", None, utc(2026, 1, 1))
    assert types[-2:] == [("action_done", 3, utc(2026, 1, 12, 9)), ("recovered", None, utc(2026, 1, 13))]


def test_a_second_failure_is_recorded_on_the_running_dunning(
    campaign, test_clock, card_subscription, django_capture_on_commit_callbacks
):
    invoice = Invoice.objects.get(subscription=card_subscription)
    _attempt(invoice, 1, succeed=False, capture=django_capture_on_commit_callbacks)
    _attempt(invoice, 2, succeed=False, capture=django_capture_on_commit_callbacks)

    dunning = InvoiceDunning.objects.get(invoice=invoice)
    assert [(event.type, event.data.get("failure_code")) for event in dunning.events.order_by("id")] == [
        ("started", None), ("payment_failed", "card_declined"),
    ]  # fmt: skip
    assert InvoiceDunning.objects.count() == 1


def test_a_part_payment_is_counted_and_dunning_goes_on(
    campaign, test_clock, invoice, django_capture_on_commit_callbacks
):
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 1, 13))
    with django_capture_on_commit_callbacks(execute=True):
        payment_record_manual(
            customer_id=invoice.customer_id, amount=Decimal("4.00"), currency="USD", method="bank_transfer",
            reference="part", received_at=utc(2026, 1, 13), allocations=[(invoice.pk, Decimal("4.00"))],
        )  # fmt: skip

    dunning = InvoiceDunning.objects.get(invoice=invoice)
    assert (dunning.status, dunning.amount_recovered) == (DunningStatus.ACTIVE, Money("4", "USD"))
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 1, 17))
    assert "6.00" in mail.outbox[-1].body  # the overdue reminder asks for what is left


def test_a_customer_without_campaign_is_not_dunned(test_clock, invoice):
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 2, 20))

    assert InvoiceDunning.objects.count() == 0
    assert mail.outbox == []


def test_a_reversed_payment_reopens_the_invoice_and_a_new_dunning_cycle_starts(
    campaign, test_clock, invoice, django_capture_on_commit_callbacks
):
    """The payment that recovered the dunning is reversed: the invoice is open and overdue again, so
    it is dunned again — a new cycle; the earlier one keeps its history and is counted once."""
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 1, 13))
    with django_capture_on_commit_callbacks(execute=True):
        payment = payment_record_manual(
            customer_id=invoice.customer_id, amount=Decimal("10.00"), currency="USD", method="bank_transfer",
            reference="wire", received_at=utc(2026, 1, 13), allocations=[(invoice.pk, Decimal("10.00"))],
        )  # fmt: skip
    first = InvoiceDunning.objects.get(invoice=invoice)
    assert (first.status, first.ended_at) == (DunningStatus.RECOVERED, utc(2026, 1, 13))
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 1, 20))
    with django_capture_on_commit_callbacks(execute=True):
        payment_reverse(payment_id=payment.pk, reason="The wire was recalled.")
    mail.outbox.clear()

    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 1, 21, 10))

    first.refresh_from_db()
    assert (first.status, first.ended_at, first.amount_recovered) == (
        DunningStatus.REOPENED, utc(2026, 1, 13), Money("10", "USD"),
    )  # fmt: skip
    assert list(first.events.order_by("id").values_list("type", flat=True))[-2:] == ["recovered", "reopened"]
    second = InvoiceDunning.objects.exclude(pk=first.pk).get(invoice=invoice)
    assert (second.status, second.start_reason, second.amount_due_at_start) == (
        DunningStatus.ACTIVE, "schedule", Money("10", "USD"),
    )  # fmt: skip
    assert "10.00" in mail.outbox[-1].body  # dunned again: the overdue reminder
    assert dunning_recovery_figures() == [
        RecoveryFigures(month="2026-01", currency="USD", started=1, recovered=0,
                        amount_in_dunning=Money("10", "USD"), amount_recovered=Money("0", "USD")),
    ]  # fmt: skip

    with django_capture_on_commit_callbacks(execute=True):
        payment_record_manual(
            customer_id=invoice.customer_id, amount=Decimal("10.00"), currency="USD", method="bank_transfer",
            reference="wire again", received_at=utc(2026, 1, 21, 10), allocations=[(invoice.pk, Decimal("10.00"))],
        )  # fmt: skip
    second.refresh_from_db()
    assert (second.status, second.amount_recovered) == (DunningStatus.RECOVERED, Money("10", "USD"))
    assert [(f.started, f.recovered, f.recovery_rate) for f in dunning_recovery_figures()] == [(1, 1, Decimal("100"))]


def test_the_payment_hook_leaves_a_dunning_that_gave_way_to_a_new_cycle_alone(
    campaign, test_clock, invoice, django_capture_on_commit_callbacks
):
    """A dunning turned `reopened` (a new cycle started) after the hook listed it: it is read again
    under its lock and left alone, rather than refused half-way (reopened cannot become recovered)."""
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 1, 13))
    dunning = InvoiceDunning.objects.get(invoice=invoice)
    InvoiceDunning.objects.filter(pk=dunning.pk).update(status=DunningStatus.REOPENED)  # the concurrent start
    _pay(invoice, "10.00")

    assert dunning_recover_if_paid(dunning_id=dunning.pk, now=utc(2026, 1, 13)) is None

    dunning.refresh_from_db()
    assert dunning.status == DunningStatus.REOPENED
    assert not dunning.events.filter(type="recovered").exists()


def test_one_dunning_the_payment_hook_cannot_end_does_not_stop_the_others(
    campaign, test_clock, customer, subscription, invoice, django_capture_on_commit_callbacks
):
    second_subscription = subscription_start(customer=customer, plan=PlanFactory(prices=[Money("5.00", "USD")]))
    second = Invoice.objects.get(subscription=second_subscription)
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 1, 13))
    # The hook handles the dunnings in order: the first one cannot be recovered (closed).
    first_dunning, second_dunning = InvoiceDunning.objects.filter(invoice__in=[invoice, second]).order_by("pk")
    InvoiceDunning.objects.filter(pk=first_dunning.pk).update(status=DunningStatus.CLOSED)

    with django_capture_on_commit_callbacks(execute=True):
        payment_record_manual(
            customer_id=customer.pk, amount=Decimal("15.00"), currency="USD", method="bank_transfer",
            reference="wire", received_at=utc(2026, 1, 13),
            allocations=[(invoice.pk, Decimal("10.00")), (second.pk, Decimal("5.00"))],
        )  # fmt: skip

    first_dunning.refresh_from_db()
    second_dunning.refresh_from_db()
    assert (first_dunning.status, second_dunning.status) == (DunningStatus.CLOSED, DunningStatus.RECOVERED)


def _pay(invoice, amount: str) -> None:
    payment_record_manual(
        customer_id=invoice.customer_id, amount=Decimal(amount), currency="USD", method="bank_transfer",
        reference="wire", received_at=utc(2026, 1, 13), allocations=[(invoice.pk, Decimal(amount))],
    )  # fmt: skip
