"""Refunds: a credit note on a paid invoice refunds out of the invoice's payments (or credits the
balance); refunds never exceed what was paid."""

from decimal import Decimal

import pytest
from djmoney.money import Money

from apps.core.errors import InvalidTransition, ValidationFailed
from apps.invoices.constants import InvoiceEventType, InvoiceStatus
from apps.invoices.selectors import customer_balance
from apps.invoices.services import credit_note_issue
from apps.payments import signals
from apps.payments.constants import PaymentMethod, PaymentProvider, RefundStatus
from apps.payments.models import Refund
from apps.payments.services import (
    credit_note_issue_and_refund,
    payment_create_pending,
    payment_mark_succeeded,
    payment_record_manual,
    refund_create,
    refund_mark_failed,
    refund_mark_succeeded,
)
from apps.payments.tests.factories import RECEIVED_AT, make_customer, make_invoice
from apps.subscriptions.periods import utc

pytestmark = pytest.mark.django_db


def _pay(customer, amount: str, invoice, *, received_at=RECEIVED_AT, reference="SEPA"):
    return payment_record_manual(
        customer_id=customer.pk, amount=Decimal(amount), currency="USD", method=PaymentMethod.BANK_TRANSFER,
        reference=reference, received_at=received_at, allocations=[(invoice.pk, Decimal(amount))],
    )  # fmt: skip


def _card_payment(customer, invoice):
    payment = payment_create_pending(
        customer_id=customer.pk, invoice_ids=[invoice.pk], amount=None, provider=PaymentProvider.STRIPE,
        method=PaymentMethod.CARD, idempotency_key=f"invoice-{invoice.pk}-attempt-1",
    )  # fmt: skip
    return payment_mark_succeeded(payment_id=payment.pk, provider_payment_id=f"pi_{invoice.pk}")


def test_a_credit_note_refunds_a_paid_invoice_out_of_its_manual_payment():
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    payment = _pay(customer, "100.00", invoice)

    note = credit_note_issue_and_refund(
        invoice_id=invoice.pk, reason="duplicate", amount=Decimal("30.00"), refund_amount=Decimal("30.00"),
        refund_reference="Refund SEPA 7",
    )  # fmt: skip

    [refund] = Refund.objects.all()
    assert (refund.payment_id, refund.credit_note_id, refund.amount, refund.status, refund.reference) == (
        payment.pk,
        note.pk,
        Money("30.00", "USD"),
        RefundStatus.SUCCEEDED,
        "Refund SEPA 7",
    )
    payment.refresh_from_db()
    assert payment.amount_refunded == Money("30.00", "USD")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid.amount, invoice.amount_due.amount) == (
        InvoiceStatus.PAID,
        Decimal("100.00"),
        Decimal("0.00"),
    )
    assert invoice.events.filter(type=InvoiceEventType.REFUNDED).count() == 1


def test_a_credit_note_credits_the_balance_instead_of_refunding():
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    _pay(customer, "100.00", invoice)

    credit_note_issue_and_refund(invoice_id=invoice.pk, reason="other", amount=Decimal("40.00"))

    assert Refund.objects.count() == 0
    assert customer_balance(customer=customer) == Money("40.00", "USD")


def test_a_refund_spans_the_invoices_payments_latest_first():
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    early = _pay(customer, "60.00", invoice, received_at=utc(2026, 1, 20), reference="first")
    late = _pay(customer, "40.00", invoice, received_at=utc(2026, 1, 25), reference="second")

    credit_note_issue_and_refund(invoice_id=invoice.pk, reason="duplicate", full=True, refund_amount=Decimal("70.00"))

    assert sorted((r.payment_id, r.amount.amount) for r in Refund.objects.all()) == sorted(
        [(late.pk, Decimal("40.00")), (early.pk, Decimal("30.00"))]
    )
    late.refresh_from_db()
    early.refresh_from_db()
    assert (late.amount_refunded.amount, early.amount_refunded.amount) == (Decimal("40.00"), Decimal("30.00"))
    assert customer_balance(customer=customer) == Money("30.00", "USD")


def test_a_card_refund_waits_for_the_provider_and_is_idempotent(django_capture_on_commit_callbacks):
    customer = make_customer()
    invoice = make_invoice(customer, "50.00")
    payment = _card_payment(customer, invoice)
    created: list[int] = []

    def receiver(sender, refund_id, **kwargs):
        created.append(refund_id)

    signals.refund_created.connect(receiver, dispatch_uid="test-refund-created")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            credit_note_issue_and_refund(
                invoice_id=invoice.pk, reason="duplicate", full=True, refund_amount=Decimal("50.00")
            )
    finally:
        signals.refund_created.disconnect(dispatch_uid="test-refund-created")

    [refund] = Refund.objects.all()
    assert created == [refund.pk]
    assert refund.status == RefundStatus.PENDING
    payment.refresh_from_db()
    assert payment.amount_refunded.amount == Decimal("0.00")

    refund_mark_succeeded(refund_id=refund.pk, provider_refund_id="re_1")
    refund_mark_succeeded(refund_id=refund.pk, provider_refund_id="re_1")
    payment.refresh_from_db()
    refund.refresh_from_db()
    assert (refund.status, refund.provider_refund_id) == (RefundStatus.SUCCEEDED, "re_1")
    assert payment.amount_refunded.amount == Decimal("50.00")
    with pytest.raises(InvalidTransition):
        refund_mark_failed(refund_id=refund.pk, failure_code="x")


def test_a_failed_card_refund_frees_the_amount_again():
    customer = make_customer()
    invoice = make_invoice(customer, "50.00")
    payment = _card_payment(customer, invoice)
    refund = refund_create(payment_id=payment.pk, amount=Decimal("50.00"))
    with pytest.raises(ValidationFailed):
        refund_create(payment_id=payment.pk, amount=Decimal("0.01"))

    refund_mark_failed(refund_id=refund.pk, failure_code="expired_card", failure_message="Card expired")

    refund.refresh_from_db()
    assert (refund.status, refund.failure_code) == (RefundStatus.FAILED, "expired_card")
    again = refund_create(payment_id=payment.pk, amount=Decimal("50.00"))
    assert again.status == RefundStatus.PENDING


def test_a_refund_never_exceeds_the_payment_and_bad_input_stores_nothing():
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    payment = _pay(customer, "100.00", invoice)
    refund_create(payment_id=payment.pk, amount=Decimal("90.00"))

    for amount, fields in [
        (Decimal("10.01"), {"amount": [f"At most 10.00 USD of payment #{payment.pk} can be refunded."]}),
        (Decimal("-5"), {"amount": ["Must be greater than zero."]}),
    ]:
        with pytest.raises(ValidationFailed) as refused:
            refund_create(payment_id=payment.pk, amount=amount)
        assert refused.value.fields == fields
    assert Refund.objects.count() == 1
    payment.refresh_from_db()
    assert payment.amount_refunded.amount == Decimal("90.00")


def test_a_partly_paid_invoice_credit_reduces_what_is_due_and_refunds_the_rest():
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    payment = _pay(customer, "60.00", invoice)

    note = credit_note_issue_and_refund(
        invoice_id=invoice.pk, reason="duplicate", full=True, refund_amount=Decimal("60.00")
    )

    assert (note.amount_due_reduction.amount, note.refund_amount.amount, note.credit_to_balance.amount) == (
        Decimal("40.00"),
        Decimal("60.00"),
        Decimal("0.00"),
    )
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    payment.refresh_from_db()
    assert payment.amount_refunded.amount == Decimal("60.00")


def test_a_credit_note_within_what_is_due_refunds_nothing():
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    _pay(customer, "60.00", invoice)
    with pytest.raises(ValidationFailed) as refused:
        credit_note_issue(invoice_id=invoice.pk, reason="other", amount=Decimal("40.00"), refund_amount=Decimal("1"))
    assert list(refused.value.fields) == ["refund_amount"]

    note = credit_note_issue(invoice_id=invoice.pk, reason="other", amount=Decimal("40.00"))

    assert note.amount_due_reduction.amount == Decimal("40.00")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid.amount, invoice.amount_due.amount) == (
        InvoiceStatus.PAID,
        Decimal("60.00"),
        Decimal("0.00"),
    )


def test_a_refund_for_a_credit_note_stays_within_it_and_its_customer():
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    payment = _pay(customer, "100.00", invoice)
    note = credit_note_issue(
        invoice_id=invoice.pk, reason="other", amount=Decimal("30.00"), refund_amount=Decimal("10")
    )
    stranger = make_customer()
    strangers_invoice = make_invoice(stranger, "50.00")
    _pay(stranger, "50.00", strangers_invoice)
    strangers_note = credit_note_issue(invoice_id=strangers_invoice.pk, reason="other", full=True)

    refund_create(payment_id=payment.pk, amount=Decimal("6.00"), credit_note_id=note.pk)
    for credit_note_id, amount, fields in [
        (
            note.pk,
            Decimal("4.01"),
            {"amount": [f"Credit note {note.number} refunds 10.00 USD in all; 6.00 is already refunded."]},
        ),
        (strangers_note.pk, Decimal("1.00"), {"credit_note": ["Not a credit note of the payment's customer."]}),
    ]:
        with pytest.raises(ValidationFailed) as refused:
            refund_create(payment_id=payment.pk, amount=amount, credit_note_id=credit_note_id)
        assert refused.value.fields == fields

    assert [r.amount.amount for r in Refund.objects.filter(payment=payment)] == [Decimal("6.00")]
