"""Payments collected by a provider (the row a Stripe attempt starts from): guarded, idempotent
transitions, allocation on success, and the signals sent after commit."""

from decimal import Decimal

import pytest
from djmoney.money import Money

from apps.core.errors import Conflict, InvalidTransition, ValidationFailed
from apps.invoices.constants import InvoiceStatus
from apps.invoices.selectors import customer_balance
from apps.payments import signals
from apps.payments.constants import PaymentEventType, PaymentMethod, PaymentProvider, PaymentStatus
from apps.payments.models import Payment, PaymentEvent
from apps.payments.services import (
    payment_cancel,
    payment_create_pending,
    payment_mark_failed,
    payment_mark_requires_action,
    payment_mark_succeeded,
    payment_record_manual,
)
from apps.payments.tests.factories import RECEIVED_AT, make_customer, make_invoice

pytestmark = pytest.mark.django_db


def _pending(customer, invoices, *, amount=None, key="invoice-attempt-1"):
    return payment_create_pending(
        customer_id=customer.pk,
        invoice_ids=[invoice.pk for invoice in invoices],
        amount=amount,
        provider=PaymentProvider.STRIPE,
        method=PaymentMethod.CARD,
        idempotency_key=key,
    )


def _events(payment) -> list[str]:
    return list(PaymentEvent.objects.filter(payment=payment).order_by("id").values_list("type", flat=True))


@pytest.fixture
def received():
    """Collects the payment signals sent (signal name, payment id)."""
    log: list[tuple[str, int]] = []
    receivers = {}
    for name in ("payment_succeeded", "payment_failed", "payment_requires_action"):

        def receiver(sender, payment_id, _name=name, **kwargs):
            log.append((_name, payment_id))

        receivers[name] = receiver
        getattr(signals, name).connect(receiver, dispatch_uid=f"test-{name}")
    yield log
    for name in receivers:
        getattr(signals, name).disconnect(dispatch_uid=f"test-{name}")


def test_a_pending_payment_is_allocated_to_what_its_invoices_owe():
    customer = make_customer()
    first, second = make_invoice(customer, "100.00"), make_invoice(customer, "20.00")

    payment = _pending(customer, [first, second])

    assert (payment.status, payment.amount, payment.provider, payment.idempotency_key) == (
        PaymentStatus.PENDING,
        Money("120.00", "USD"),
        PaymentProvider.STRIPE,
        "invoice-attempt-1",
    )
    assert [(a.invoice_id, a.amount.amount) for a in payment.allocations.order_by("pk")] == [
        (first.pk, Decimal("100.00")),
        (second.pk, Decimal("20.00")),
    ]
    first.refresh_from_db()
    assert (first.status, first.amount_paid.amount) == (InvoiceStatus.OPEN, Decimal("0.00"))  # pending counts nothing


def test_the_same_idempotency_key_returns_the_same_payment():
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    first = _pending(customer, [invoice])
    again = _pending(customer, [invoice])
    assert again.pk == first.pk
    assert Payment.objects.count() == 1
    with pytest.raises(Conflict):
        _pending(make_customer(), [make_invoice(make_customer(), "1.00")])


def test_a_pending_payment_refuses_bad_invoices_and_amounts():
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    with pytest.raises(ValidationFailed) as refused:
        _pending(customer, [make_invoice(make_customer(), "5.00")], amount=Decimal("-1"))
    assert refused.value.fields == {
        "invoice_ids.0": [f"Not an invoice of customer {customer.name}."],
        "amount": ["Must be greater than zero."],
    }
    assert Payment.objects.count() == 0
    invoice.refresh_from_db()
    assert invoice.amount_paid.amount == Decimal("0.00")


def test_success_pays_the_invoices_and_is_idempotent(django_capture_on_commit_callbacks, received):
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    payment = _pending(customer, [invoice])

    with django_capture_on_commit_callbacks(execute=True):
        succeeded = payment_mark_succeeded(payment_id=payment.pk, provider_payment_id="pi_123")
    with django_capture_on_commit_callbacks(execute=True) as second_callbacks:
        again = payment_mark_succeeded(payment_id=payment.pk, provider_payment_id="pi_123")

    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid.amount, invoice.amount_due.amount) == (
        InvoiceStatus.PAID,
        Decimal("100.00"),
        Decimal("0.00"),
    )
    assert (succeeded.status, succeeded.provider_payment_id) == (PaymentStatus.SUCCEEDED, "pi_123")
    assert succeeded.received_at is not None
    assert again.updated_at == succeeded.updated_at
    assert second_callbacks == []
    assert received == [("payment_succeeded", payment.pk)]
    assert _events(payment) == [PaymentEventType.CREATED, PaymentEventType.SUCCEEDED, PaymentEventType.ALLOCATED]


def test_a_pending_payment_overtaken_by_a_manual_one_credits_the_rest_to_the_balance():
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    payment = _pending(customer, [invoice])
    payment_record_manual(
        customer_id=customer.pk, amount=Decimal("70.00"), currency="USD", method=PaymentMethod.BANK_TRANSFER,
        reference="SEPA", received_at=RECEIVED_AT,
    )  # fmt: skip

    payment_mark_succeeded(payment_id=payment.pk)

    assert [(a.invoice_id, a.amount.amount) for a in payment.allocations.all()] == [(invoice.pk, Decimal("30.00"))]
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid.amount) == (InvoiceStatus.PAID, Decimal("100.00"))
    assert customer_balance(customer=customer) == Money("70.00", "USD")


def test_failure_is_recorded_once_and_may_still_succeed(django_capture_on_commit_callbacks, received):
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    payment = _pending(customer, [invoice])

    with django_capture_on_commit_callbacks(execute=True):
        failed = payment_mark_failed(payment_id=payment.pk, failure_code="card_declined", failure_message="Declined")
        payment_mark_failed(payment_id=payment.pk, failure_code="card_declined", failure_message="Declined")

    assert (failed.status, failed.failure_code, failed.failure_message) == (
        PaymentStatus.FAILED,
        "card_declined",
        "Declined",
    )
    assert received == [("payment_failed", payment.pk)]
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid.amount) == (InvoiceStatus.OPEN, Decimal("0.00"))

    succeeded = payment_mark_succeeded(payment_id=payment.pk)
    assert (succeeded.status, succeeded.failure_code, succeeded.failure_message) == (PaymentStatus.SUCCEEDED, "", "")
    assert _events(payment) == [
        PaymentEventType.CREATED,
        PaymentEventType.FAILED,
        PaymentEventType.SUCCEEDED,
        PaymentEventType.ALLOCATED,
    ]


def test_requires_action_keeps_the_link_and_is_idempotent(django_capture_on_commit_callbacks, received):
    customer = make_customer()
    payment = _pending(customer, [make_invoice(customer, "10.00")])

    with django_capture_on_commit_callbacks(execute=True):
        first = payment_mark_requires_action(
            payment_id=payment.pk, provider_payment_id="pi_3ds", next_action_url="https://bank.example/3ds"
        )
        payment_mark_requires_action(payment_id=payment.pk, provider_payment_id="pi_3ds")

    assert (first.status, first.provider_payment_id, first.next_action_url) == (
        PaymentStatus.REQUIRES_ACTION,
        "pi_3ds",
        "https://bank.example/3ds",
    )
    assert received == [("payment_requires_action", payment.pk)]


def test_transitions_outside_the_table_are_refused_and_change_nothing():
    customer = make_customer()
    invoice = make_invoice(customer, "10.00")
    payment = _pending(customer, [invoice])
    payment_mark_succeeded(payment_id=payment.pk)

    for attempt in (
        lambda: payment_mark_failed(payment_id=payment.pk, failure_code="x", failure_message="y"),
        lambda: payment_mark_requires_action(payment_id=payment.pk, provider_payment_id="pi_x"),
        lambda: payment_cancel(payment_id=payment.pk),
    ):
        with pytest.raises(InvalidTransition):
            attempt()
    payment.refresh_from_db()
    assert (payment.status, payment.failure_code, payment.provider_payment_id) == (PaymentStatus.SUCCEEDED, "", "")

    canceled = payment_cancel(payment_id=_pending(customer, [make_invoice(customer, "5.00")], key="k2").pk)
    with pytest.raises(InvalidTransition):
        payment_mark_succeeded(payment_id=canceled.pk)


def test_a_provider_payment_id_belongs_to_one_payment():
    customer = make_customer()
    first = _pending(customer, [make_invoice(customer, "10.00")], key="a")
    second = _pending(customer, [make_invoice(customer, "10.00")], key="b")
    payment_mark_requires_action(payment_id=first.pk, provider_payment_id="pi_same")
    with pytest.raises(Conflict):
        payment_mark_succeeded(payment_id=second.pk, provider_payment_id="pi_same")
    second.refresh_from_db()
    assert second.status == PaymentStatus.PENDING
