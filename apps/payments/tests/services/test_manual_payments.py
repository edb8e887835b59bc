"""Manual payments: allocation to invoices, partial payments, overpayments to the credit balance,
what is refused (nothing stored), and the reversal of a wrong payment."""

import itertools
from decimal import Decimal

import pytest
from djmoney.money import Money

from apps.catalog.tests.factories import PlanFactory
from apps.core.errors import InvalidTransition, ValidationFailed
from apps.invoices.constants import InvoiceEventType, InvoiceLineKind, InvoiceStatus
from apps.invoices.models import Invoice, InvoiceEvent, InvoiceItem
from apps.invoices.selectors import customer_balance, invoice_amount_due
from apps.invoices.services import invoice_mark_uncollectible, invoice_void
from apps.invoices.tests.factories import make_manual_invoice, make_open_invoice
from apps.payments.constants import PaymentEventType, PaymentMethod, PaymentProvider, PaymentStatus
from apps.payments.models import Payment, PaymentAllocation, PaymentEvent
from apps.payments.services import (
    invoice_mark_paid,
    payment_create_pending,
    payment_record_manual,
    payment_reverse,
)
from apps.payments.tests.factories import RECEIVED_AT, make_customer, make_invoice
from apps.subscriptions.periods import utc
from apps.subscriptions.tests.factories import make_subscription

pytestmark = pytest.mark.django_db


_references = itertools.count(1)


def _pay(customer, amount: str, *, allocations=None, method=PaymentMethod.BANK_TRANSFER, reference=None):
    """A manual payment; each gets a reference of its own unless one is given (they are unique per customer)."""
    if reference is None:
        reference = f"SEPA-AUTO-{next(_references)}"
    return payment_record_manual(
        customer_id=customer.pk,
        amount=Decimal(amount),
        currency=customer.currency,
        method=method,
        reference=reference,
        received_at=RECEIVED_AT,
        allocations=allocations,
    )


def _state(invoice: Invoice) -> tuple[str, Decimal, Decimal]:
    invoice.refresh_from_db()
    return invoice.status, invoice.amount_paid.amount, invoice.amount_due.amount


def _allocations(payment: Payment) -> list[tuple[int, Decimal]]:
    return [(a.invoice_id, a.amount.amount) for a in payment.allocations.order_by("pk")]


# --- Partial payments and allocation -----------------------------------------------------------------


def test_partial_payments_add_up_to_the_invoice_and_pay_it_exactly():
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")

    _pay(customer, "33.33")
    assert _state(invoice) == (InvoiceStatus.OPEN, Decimal("33.33"), Decimal("66.67"))
    _pay(customer, "33.33")
    assert _state(invoice) == (InvoiceStatus.OPEN, Decimal("66.66"), Decimal("33.34"))
    last = _pay(customer, "33.34", reference="SEPA 3")

    assert _state(invoice) == (InvoiceStatus.PAID, Decimal("100.00"), Decimal("0.00"))
    assert invoice.paid_at == RECEIVED_AT
    assert invoice_amount_due(invoice) == Decimal("0.00")
    assert customer_balance(customer=customer) == Money("0.00", "USD")
    assert last.balance_item is None
    events = InvoiceEvent.objects.filter(
        invoice=invoice, type__in=[InvoiceEventType.PAYMENT_APPLIED, InvoiceEventType.PAID]
    ).order_by("id")
    assert [(event.type, event.data.get("amount")) for event in events] == [
        ("payment_applied", "33.33"),
        ("payment_applied", "33.33"),
        ("payment_applied", "33.34"),
        ("paid", None),
    ]
    assert InvoiceEvent.objects.get(invoice=invoice, type=InvoiceEventType.PAID).data["payment"] == last.pk


def test_a_manual_payment_is_succeeded_with_its_reference_and_events():
    customer = make_customer()
    invoice = make_invoice(customer, "80.00")

    payment = _pay(customer, "80.00", method=PaymentMethod.CHEQUE, reference="Cheque 000123")

    payment.refresh_from_db()
    assert (payment.provider, payment.method, payment.status, payment.reference, payment.received_at) == (
        PaymentProvider.MANUAL,
        PaymentMethod.CHEQUE,
        PaymentStatus.SUCCEEDED,
        "Cheque 000123",
        RECEIVED_AT,
    )
    assert payment.amount == Money("80.00", "USD")
    assert payment.amount_refunded == Money("0.00", "USD")
    assert _allocations(payment) == [(invoice.pk, Decimal("80.00"))]
    assert list(payment.events.values_list("type", flat=True)) == [
        PaymentEventType.CREATED,
        PaymentEventType.SUCCEEDED,
        PaymentEventType.ALLOCATED,
    ]


def test_by_default_a_payment_pays_the_oldest_due_invoices_first():
    customer = make_customer(payment_terms_days=30)
    newer = make_invoice(customer, "80.00", now=utc(2026, 1, 20))
    older = make_invoice(customer, "100.00", now=utc(2026, 1, 5))
    assert older.due_on < newer.due_on

    payment = _pay(customer, "150.00")

    assert _allocations(payment) == [(older.pk, Decimal("100.00")), (newer.pk, Decimal("50.00"))]
    assert _state(older) == (InvoiceStatus.PAID, Decimal("100.00"), Decimal("0.00"))
    assert _state(newer) == (InvoiceStatus.OPEN, Decimal("50.00"), Decimal("30.00"))


def test_explicit_allocations_pay_the_invoices_named_and_the_rest_goes_to_the_balance():
    customer = make_customer()
    first = make_invoice(customer, "100.00")
    second = make_invoice(customer, "40.00")
    third = make_invoice(customer, "25.00")

    payment = _pay(customer, "100.00", allocations=[(second.pk, Decimal("40.00")), (first.pk, Decimal("50.00"))])

    assert _allocations(payment) == [(second.pk, Decimal("40.00")), (first.pk, Decimal("50.00"))]
    assert _state(first) == (InvoiceStatus.OPEN, Decimal("50.00"), Decimal("50.00"))
    assert _state(second) == (InvoiceStatus.PAID, Decimal("40.00"), Decimal("0.00"))
    assert _state(third) == (InvoiceStatus.OPEN, Decimal("0.00"), Decimal("25.00"))
    assert customer_balance(customer=customer) == Money("10.00", "USD")


def test_an_overpayment_goes_to_the_balance_and_comes_off_the_next_invoice():
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")

    payment = _pay(customer, "130.00")

    assert _state(invoice) == (InvoiceStatus.PAID, Decimal("100.00"), Decimal("0.00"))
    item = payment.balance_item
    assert (item.kind, item.amount, item.invoice_id, item.subscription_id) == (
        InvoiceLineKind.PAYMENT_CREDIT,
        Money("-30.00", "USD"),
        None,
        None,
    )
    assert customer_balance(customer=customer) == Money("30.00", "USD")
    assert PaymentEvent.objects.get(payment=payment, type=PaymentEventType.CREDITED_TO_BALANCE).data == {
        "amount": "30.00",
        "currency": "USD",
        "invoice_item": item.pk,
    }

    # The next invoice (49.00) takes 30.00 of credit after tax: 19.00 left to pay.
    plan = PlanFactory(prices=[Money("49.00", "USD")])
    following = make_open_invoice(
        subscription=make_subscription(customer=customer, plan=plan, started_at=utc(2026, 3, 1))
    )
    credit_line = following.lines.get(kind=InvoiceLineKind.PAYMENT_CREDIT)
    assert credit_line.amount == Money("-30.00", "USD")
    assert following.total == Money("19.00", "USD")
    assert following.amount_due == Money("19.00", "USD")
    assert customer_balance(customer=customer) == Money("0.00", "USD")


def test_a_payment_without_open_invoices_goes_wholly_to_the_balance():
    customer = make_customer()

    payment = _pay(customer, "25.50")

    assert _allocations(payment) == []
    assert customer_balance(customer=customer) == Money("25.50", "USD")


def test_overpayments_are_refused_when_the_setting_says_so(settings):
    settings.PAYMENT_OVERPAYMENT_TO_BALANCE = False
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")

    with pytest.raises(ValidationFailed) as refused:
        _pay(customer, "120.00")

    assert refused.value.fields == {
        "amount": ["Only 100.00 USD is allocated to invoices; overpayments are not accepted."]
    }
    assert Payment.objects.count() == 0
    assert _state(invoice) == (InvoiceStatus.OPEN, Decimal("0.00"), Decimal("100.00"))
    _pay(customer, "100.00")
    assert _state(invoice) == (InvoiceStatus.PAID, Decimal("100.00"), Decimal("0.00"))


def test_an_uncollectible_invoice_can_still_be_paid():
    customer = make_customer()
    invoice = make_invoice(customer, "60.00")
    invoice_mark_uncollectible(invoice_id=invoice.pk)

    _pay(customer, "60.00")

    assert _state(invoice) == (InvoiceStatus.PAID, Decimal("60.00"), Decimal("0.00"))


def test_a_credit_note_reduction_counts_towards_what_is_due():
    from apps.invoices.services import credit_note_issue

    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    credit_note_issue(invoice_id=invoice.pk, reason="other", amount=Decimal("30.00"))

    payment = _pay(customer, "100.00")

    assert _allocations(payment) == [(invoice.pk, Decimal("70.00"))]
    assert _state(invoice) == (InvoiceStatus.PAID, Decimal("70.00"), Decimal("0.00"))
    assert customer_balance(customer=customer) == Money("30.00", "USD")


# --- Bad input: refused with field errors, nothing stored ---------------------------------------------


def _refused(customer, invoice, **overrides) -> dict:
    arguments = {
        "customer_id": customer.pk,
        "amount": Decimal("10.00"),
        "currency": customer.currency,
        "method": PaymentMethod.BANK_TRANSFER,
        "reference": "SEPA",
        "received_at": RECEIVED_AT,
        "allocations": [(invoice.pk, Decimal("10.00"))],
        **overrides,
    }
    before = _state(invoice)
    with pytest.raises(ValidationFailed) as refused:
        payment_record_manual(**arguments)
    assert Payment.objects.count() == 0
    assert PaymentAllocation.objects.count() == 0
    assert InvoiceItem.objects.filter(customer=customer).count() == 0
    assert _state(invoice) == before
    return refused.value.fields


def test_a_negative_or_zero_amount_is_refused():
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    assert _refused(customer, invoice, amount=Decimal("-10.00"), allocations=None) == {
        "amount": ["Must be greater than zero."]
    }
    assert _refused(customer, invoice, amount=Decimal("0"), allocations=None) == {
        "amount": ["Must be greater than zero."]
    }
    assert _refused(customer, invoice, amount=Decimal("10.001")) == {"amount": ["Has more decimals than USD allows."]}


def test_a_payment_in_another_currency_is_refused():
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    assert _refused(customer, invoice, currency="EUR") == {"currency": [f"Customer {customer.name} pays in USD."]}


def test_an_allocation_larger_than_what_is_due_is_refused():
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    _pay(customer, "70.00")
    Payment.objects.all().delete()  # keep the invoice's 70.00 paid; count what the refused call stores
    assert _refused(customer, invoice, amount=Decimal("50.00"), allocations=[(invoice.pk, Decimal("30.01"))]) == {
        "allocations.0.amount": [f"At most 30.00 USD is due on invoice {invoice.number}."]
    }


def test_allocations_larger_than_the_payment_are_refused():
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    assert _refused(customer, invoice, amount=Decimal("10.00"), allocations=[(invoice.pk, Decimal("20.00"))]) == {
        "allocations": ["The allocations add up to 20.00 USD, more than the payment's 10.00 USD."]
    }


def test_unknown_other_customers_draft_void_and_paid_invoices_are_refused():
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    others = make_invoice(make_customer(), "50.00")
    draft = make_manual_invoice(customer=customer, finalize=False)
    void = invoice_void(invoice_id=make_invoice(customer, "10.00").pk)
    paid = make_invoice(customer, "5.00")
    _pay(customer, "5.00", allocations=[(paid.pk, Decimal("5.00"))])
    Payment.objects.all().delete()
    fields = _refused(
        customer,
        invoice,
        amount=Decimal("50.00"),
        allocations=[
            (999999, Decimal("1.00")),
            (others.pk, Decimal("1.00")),
            (draft.pk, Decimal("1.00")),
            (void.pk, Decimal("1.00")),
            (paid.pk, Decimal("1.00")),
            (invoice.pk, Decimal("-1.00")),
        ],
    )
    assert fields == {
        "allocations.0.invoice": ["Invoice 999999 does not exist."],
        "allocations.1.invoice": [f"Not an invoice of customer {customer.name}."],
        "allocations.2.invoice": [f"Invoice {draft} is a draft: finalize it before it is paid."],
        "allocations.3.invoice": [f"Invoice {void.number} is void: nothing is due on it."],
        "allocations.4.invoice": [f"Invoice {paid.number} is paid: nothing is due on it."],
        "allocations.5.amount": ["Must be greater than zero."],
    }


def test_a_payment_from_the_future_or_by_card_is_refused():
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    assert _refused(customer, invoice, received_at=utc(2999, 1, 1), method=PaymentMethod.CARD) == {
        "method": ["Choose one of: bank_transfer, cheque, cash, other."],
        "received_at": ["Cannot be in the future."],
    }


# --- Reversal -------------------------------------------------------------------------------------


def test_reversing_a_payment_restores_the_invoices_amounts_and_status():
    customer = make_customer()
    first = make_invoice(customer, "100.00")
    second = make_invoice(customer, "50.00")
    _pay(customer, "20.00", allocations=[(second.pk, Decimal("20.00"))])
    wrong = _pay(customer, "130.00")  # 100.00 to first, 30.00 to second: both paid

    assert _state(first) == (InvoiceStatus.PAID, Decimal("100.00"), Decimal("0.00"))
    assert _state(second) == (InvoiceStatus.PAID, Decimal("50.00"), Decimal("0.00"))
    reversed_payment = payment_reverse(payment_id=wrong.pk, reason="Booked on the wrong customer")

    assert (reversed_payment.status, reversed_payment.reversal_reason) == (
        PaymentStatus.REVERSED,
        "Booked on the wrong customer",
    )
    assert reversed_payment.reversed_at is not None
    assert _state(first) == (InvoiceStatus.OPEN, Decimal("0.00"), Decimal("100.00"))
    assert first.paid_at is None
    assert _state(second) == (InvoiceStatus.OPEN, Decimal("20.00"), Decimal("30.00"))
    assert list(first.events.filter(type__in=["payment_reversed", "reopened"]).values_list("type", flat=True)) == [
        "payment_reversed",
        "reopened",
    ]
    assert PaymentEvent.objects.filter(payment=wrong, type=PaymentEventType.REVERSED).count() == 1


def test_reversing_takes_back_the_balance_credit_still_waiting():
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    payment = _pay(customer, "125.00")
    assert customer_balance(customer=customer) == Money("25.00", "USD")

    payment_reverse(payment_id=payment.pk, reason="duplicate entry")

    assert customer_balance(customer=customer) == Money("0.00", "USD")
    assert InvoiceItem.objects.filter(customer=customer).count() == 0
    assert _state(invoice) == (InvoiceStatus.OPEN, Decimal("0.00"), Decimal("100.00"))


def test_reversing_after_the_credit_was_used_charges_it_on_the_next_invoice():
    customer = make_customer()
    make_invoice(customer, "100.00")
    payment = _pay(customer, "130.00")  # 30.00 to the balance
    plan = PlanFactory(prices=[Money("20.00", "USD")])
    following = make_open_invoice(
        subscription=make_subscription(customer=customer, plan=plan, started_at=utc(2026, 3, 1))
    )
    assert following.total == Money("0.00", "USD")  # 20.00 of the credit used, 10.00 still waiting

    payment_reverse(payment_id=payment.pk, reason="cheque bounced")

    assert customer_balance(customer=customer) == Money("0.00", "USD")
    [debit] = InvoiceItem.objects.filter(customer=customer, invoice__isnull=True)
    assert (debit.kind, debit.amount, debit.description) == (
        InvoiceLineKind.PAYMENT_CREDIT,
        Money("20.00", "USD"),
        f"Payment #{payment.pk} reversed: its credit already used",
    )


def test_a_paid_uncollectible_invoice_is_uncollectible_again_after_reversal():
    customer = make_customer()
    invoice = make_invoice(customer, "60.00")
    invoice_mark_uncollectible(invoice_id=invoice.pk)
    payment = _pay(customer, "60.00")

    payment_reverse(payment_id=payment.pk, reason="wrong")

    assert _state(invoice) == (InvoiceStatus.UNCOLLECTIBLE, Decimal("0.00"), Decimal("60.00"))


def test_a_payment_is_reversed_once_with_a_reason_and_only_if_manual():
    customer = make_customer()
    invoice = make_invoice(customer, "60.00")
    payment = _pay(customer, "60.00")
    with pytest.raises(ValidationFailed) as no_reason:
        payment_reverse(payment_id=payment.pk, reason="  ")
    assert no_reason.value.fields == {"reason": ["This field is required."]}
    assert _state(invoice) == (InvoiceStatus.PAID, Decimal("60.00"), Decimal("0.00"))

    payment_reverse(payment_id=payment.pk, reason="wrong")
    with pytest.raises(InvalidTransition):
        payment_reverse(payment_id=payment.pk, reason="again")
    assert PaymentEvent.objects.filter(payment=payment, type=PaymentEventType.REVERSED).count() == 1

    card = payment_create_pending(
        customer_id=customer.pk, invoice_ids=[invoice.pk], amount=None, provider=PaymentProvider.STRIPE,
        method=PaymentMethod.CARD, idempotency_key="invoice-1-attempt-1",
    )  # fmt: skip
    with pytest.raises(InvalidTransition) as stripe_refused:
        payment_reverse(payment_id=card.pk, reason="no")
    assert stripe_refused.value.fields == {"provider": ["Only manual payments are reversed."]}


# --- Staff "mark paid" ------------------------------------------------------------------------------


def test_mark_paid_records_a_manual_payment_of_what_is_due():
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    _pay(customer, "40.00")

    paid = invoice_mark_paid(invoice_id=invoice.pk, reference="SEPA 99")

    assert (paid.status, paid.amount_paid, paid.amount_due) == (
        InvoiceStatus.PAID,
        Money("100.00", "USD"),
        Money("0.00", "USD"),
    )
    payment = Payment.objects.order_by("-pk").first()
    assert (payment.amount, payment.method, payment.reference, _allocations(payment)) == (
        Money("60.00", "USD"),
        PaymentMethod.BANK_TRANSFER,
        "SEPA 99",
        [(invoice.pk, Decimal("60.00"))],
    )


def test_mark_paid_refuses_drafts_and_paid_invoices_and_records_nothing():
    customer = make_customer()
    draft = make_manual_invoice(customer=customer, finalize=False)
    with pytest.raises(InvalidTransition):
        invoice_mark_paid(invoice_id=draft.pk)
    invoice = make_invoice(customer, "10.00")
    invoice_mark_paid(invoice_id=invoice.pk)
    with pytest.raises(InvalidTransition):
        invoice_mark_paid(invoice_id=invoice.pk)
    assert Payment.objects.count() == 1
