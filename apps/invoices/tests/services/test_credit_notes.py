"""Credit notes: what they credit (lines, taxes, discounts), how they are settled, what they refuse."""

from decimal import Decimal

import pytest
from django.db import DatabaseError, IntegrityError, transaction
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import subscription_upcoming_invoice
from apps.catalog.tests.factories import PlanFactory
from apps.core.errors import InvalidTransition, ValidationFailed
from apps.invoices.constants import (
    CreditNoteLineKind,
    CreditNoteStatus,
    InvoiceEventType,
    InvoiceLineKind,
    InvoiceStatus,
)
from apps.invoices.models import CreditNote, CreditNoteLine, Invoice, InvoiceItem, InvoiceNumberSequence, TaxRate
from apps.invoices.selectors import customer_balance, invoice_amount_due, invoice_creditable_amount
from apps.invoices.services import (
    CreditNoteLineRequest,
    credit_note_issue,
    credit_note_preview,
    credit_note_void,
    invoice_void,
)
from apps.invoices.tests.factories import make_draft_invoice, make_manual_invoice, make_open_invoice
from apps.payments.services import invoice_mark_paid
from apps.subscriptions.periods import utc
from apps.subscriptions.tests.factories import make_subscription

pytestmark = pytest.mark.django_db

NOW = utc(2026, 2, 1, 12)


def _german_customer(**kwargs):
    TaxRate.objects.get_or_create(name="VAT", percentage=Decimal("19"), country="DE")
    return CustomerFactory(country="DE", currency="EUR", **kwargs)


def _amounts(document) -> tuple[Decimal, Decimal, Decimal]:
    return document.subtotal.amount, document.tax_total.amount, document.total.amount


def _taxes(document) -> list[tuple]:
    return [
        (tax.name, tax.percentage, tax.inclusive, tax.taxable_amount.amount, tax.tax_amount.amount)
        for tax in document.taxes.all()
    ]


def _paid(invoice: Invoice) -> Invoice:
    return invoice_mark_paid(invoice_id=invoice.pk, reference=f"bank {invoice.number}", now=NOW)


# --- Full credit notes reproduce the invoice --------------------------------------------------------


def test_a_full_credit_reproduces_an_exclusive_tax_exactly():
    invoice = make_manual_invoice(
        customer=_german_customer(), lines=[("Setup", "1", "190.00"), ("Support", "3", "33.37")]
    )
    assert _amounts(invoice) == (Decimal("223.37"), Decimal("42.44"), Decimal("265.81"))

    note = credit_note_issue(invoice_id=invoice.pk, reason="duplicate", full=True, now=NOW)

    assert note.number == "CN-2026-000001"
    assert _amounts(note) == _amounts(invoice)
    assert _taxes(note) == _taxes(invoice) == [("VAT", Decimal("19"), False, Decimal("223.37"), Decimal("42.44"))]
    assert [(line.kind, line.invoice_line_id, line.quantity, line.amount.amount) for line in note.lines.all()] == [
        (CreditNoteLineKind.INVOICE_LINE, line.pk, line.quantity, line.amount.amount) for line in invoice.lines.all()
    ]
    assert note.status == CreditNoteStatus.ISSUED
    assert note.issued_at == NOW
    assert note.customer_details == invoice.customer_details


def test_a_full_credit_reproduces_an_inclusive_tax_exactly():
    TaxRate.objects.create(name="VAT", percentage=Decimal("20"), country="GB", inclusive=True)
    invoice = make_manual_invoice(
        customer=CustomerFactory(country="GB", currency="GBP"), lines=[("Plan", "1", "120.00")]
    )

    note = credit_note_issue(invoice_id=invoice.pk, reason="other", full=True, now=NOW)

    assert _amounts(note) == (Decimal("120.00"), Decimal("0.00"), Decimal("120.00"))
    assert _taxes(note) == [("VAT", Decimal("20"), True, Decimal("100.00"), Decimal("20.00"))]


def test_a_reverse_charged_invoice_is_credited_without_tax():
    TaxRate.objects.create(name="VAT", percentage=Decimal("21"), country="NL")
    customer = CustomerFactory(country="NL", currency="EUR", tax_id="NL003456729B02")
    invoice = make_manual_invoice(customer=customer, lines=[("Plan", "1", "80.00")])
    assert invoice.reverse_charge is True

    note = credit_note_issue(invoice_id=invoice.pk, reason="order_change", full=True, now=NOW)

    assert _amounts(note) == (Decimal("80.00"), Decimal("0.00"), Decimal("80.00"))
    assert _taxes(note) == []
    assert note.reverse_charge is True


def test_the_invoice_itself_never_changes():
    invoice = make_manual_invoice(customer=_german_customer())
    before = (_amounts(invoice), _taxes(invoice), list(invoice.lines.values_list("amount", "quantity")))

    credit_note_issue(invoice_id=invoice.pk, reason="duplicate", amount=Decimal("10.00"), now=NOW)

    invoice.refresh_from_db()
    assert (_amounts(invoice), _taxes(invoice), list(invoice.lines.values_list("amount", "quantity"))) == before


# --- Partial credit notes ---------------------------------------------------------------------------


def test_crediting_a_line_unit_by_unit_adds_up_to_the_line_and_its_tax():
    invoice = make_manual_invoice(customer=_german_customer(), lines=[("Seats", "3", "100.00")])
    line = invoice.lines.get()

    notes = [
        credit_note_issue(
            invoice_id=invoice.pk,
            reason="order_change",
            lines=[CreditNoteLineRequest(line.pk, quantity=Decimal(1))],
            now=NOW,
        )  # fmt: skip
        for _ in range(3)
    ]

    # 100.00 × 1/3 = 33.33; cumulatively 66.67 (so 33.34), then all of it (33.33). VAT on the cumulative
    # amount, rounded once: 6.33, then 12.67 − 6.33 = 6.34, then 19.00 − 12.67 = 6.33.
    assert [_amounts(note) for note in notes] == [
        (Decimal("33.33"), Decimal("6.33"), Decimal("39.66")),
        (Decimal("33.34"), Decimal("6.34"), Decimal("39.68")),
        (Decimal("33.33"), Decimal("6.33"), Decimal("39.66")),
    ]
    assert sum(note.total.amount for note in notes) == invoice.total.amount == Decimal("119.00")
    assert [note.lines.get().quantity for note in notes] == [Decimal(1)] * 3
    assert invoice_creditable_amount(invoice) == Decimal("0.00")


def test_crediting_part_of_a_line_by_amount():
    invoice = make_manual_invoice(customer=_german_customer(), lines=[("Setup", "1", "50.00"), ("Plan", "1", "60.00")])
    plan_line = invoice.lines.get(description="Plan")

    note = credit_note_issue(
        invoice_id=invoice.pk, reason="product_unsatisfactory",
        lines=[CreditNoteLineRequest(plan_line.pk, amount=Decimal("10.55"))], now=NOW,
    )  # fmt: skip

    assert _amounts(note) == (Decimal("10.55"), Decimal("2.00"), Decimal("12.55"))  # 10.55 × 19 % = 2.0045
    assert [(line.description, line.quantity, line.amount.amount) for line in note.lines.all()] == [
        ("Plan", None, Decimal("10.55"))
    ]


def test_crediting_a_plain_amount_adds_an_adjustment_line_taxed_like_the_invoice():
    invoice = make_manual_invoice(customer=_german_customer(), lines=[("Plan", "1", "100.00")])

    note = credit_note_issue(
        invoice_id=invoice.pk, reason="other", memo="Goodwill for the outage", amount=Decimal("0.05"), now=NOW
    )

    assert _amounts(note) == (Decimal("0.05"), Decimal("0.01"), Decimal("0.06"))  # 0.0095 rounds half up
    [line] = note.lines.all()
    assert (line.kind, line.description, line.invoice_line_id) == (
        CreditNoteLineKind.ADJUSTMENT,
        "Goodwill for the outage",
        None,
    )


def test_the_discounts_of_the_invoice_go_with_the_lines_credited():
    invoice = make_manual_invoice(
        customer=_german_customer(), lines=[("Plan", "1", "100.00"), ("Discount 10 %", "1", "-10.00")]
    )
    assert _amounts(invoice) == (Decimal("90.00"), Decimal("17.10"), Decimal("107.10"))
    plan_line = invoice.lines.get(description="Plan")

    half = credit_note_issue(
        invoice_id=invoice.pk, reason="other", lines=[CreditNoteLineRequest(plan_line.pk, amount=Decimal("50.00"))],
        now=NOW,
    )  # fmt: skip
    rest = credit_note_issue(invoice_id=invoice.pk, reason="other", full=True, now=NOW)

    assert [(line.kind, line.amount.amount) for line in half.lines.all()] == [
        (CreditNoteLineKind.INVOICE_LINE, Decimal("50.00")),
        (CreditNoteLineKind.DISCOUNT_SHARE, Decimal("-5.00")),
    ]
    assert _amounts(half) == (Decimal("45.00"), Decimal("8.55"), Decimal("53.55"))
    assert _amounts(rest) == (Decimal("45.00"), Decimal("8.55"), Decimal("53.55"))
    assert invoice_creditable_amount(invoice) == Decimal("0.00")


def test_a_full_credit_after_partial_ones_credits_exactly_what_is_left():
    invoice = make_manual_invoice(
        customer=_german_customer(), lines=[("Seats", "7", "123.45"), ("Setup", "1", "19.99")]
    )
    seats = invoice.lines.get(description="Seats")
    credit_note_issue(
        invoice_id=invoice.pk, reason="other", lines=[CreditNoteLineRequest(seats.pk, quantity=Decimal(2))], now=NOW
    )
    credit_note_issue(invoice_id=invoice.pk, reason="other", amount=Decimal("3.33"), now=NOW)

    credit_note_issue(invoice_id=invoice.pk, reason="other", full=True, now=NOW)

    notes = CreditNote.objects.filter(invoice=invoice)
    assert sum(note.subtotal.amount for note in notes) == invoice.subtotal.amount
    assert sum(note.tax_total.amount for note in notes) == invoice.tax_total.amount
    assert sum(note.total.amount for note in notes) == invoice.total.amount
    assert invoice_creditable_amount(invoice) == Decimal("0.00")


# --- Refusals: field errors, nothing written ----------------------------------------------------------


def _nothing_written(invoice: Invoice, events_before: int) -> None:
    assert not CreditNote.objects.exists()
    assert not InvoiceNumberSequence.objects.filter(key__startswith="CN").exclude(last_value=0).exists()
    assert not InvoiceItem.objects.filter(kind=InvoiceLineKind.CREDIT_NOTE).exists()
    assert invoice.events.count() == events_before


def test_crediting_more_than_the_invoice_is_refused_and_nothing_is_written():
    invoice = make_manual_invoice(customer=_german_customer(), lines=[("Plan", "1", "100.00")])
    events = invoice.events.count()

    with pytest.raises(ValidationFailed) as refused:
        credit_note_issue(invoice_id=invoice.pk, reason="other", amount=Decimal("100.01"), now=NOW)

    assert refused.value.fields == {
        "amount": ["Only 119.00 EUR is left to credit on invoice INV-2026-000001 (tax included)."]
    }
    _nothing_written(invoice, events)


def test_earlier_credit_notes_count_against_what_is_left():
    invoice = make_manual_invoice(lines=[("Seats", "2", "98.00")])
    line = invoice.lines.get()
    credit_note_issue(
        invoice_id=invoice.pk, reason="other", lines=[CreditNoteLineRequest(line.pk, quantity=Decimal(1))], now=NOW
    )

    with pytest.raises(ValidationFailed) as by_quantity:
        credit_note_preview(invoice_id=invoice.pk, lines=[CreditNoteLineRequest(line.pk, quantity=Decimal(2))])
    with pytest.raises(ValidationFailed) as by_amount:
        credit_note_preview(invoice_id=invoice.pk, lines=[CreditNoteLineRequest(line.pk, amount=Decimal("49.01"))])

    assert by_quantity.value.fields == {"lines.0.quantity": ["At most 1 unit(s) are left to credit on this line."]}
    assert by_amount.value.fields == {"lines.0.amount": ["At most 49.00 USD is left to credit on this line."]}
    assert CreditNote.objects.count() == 1


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"amount": Decimal("0")}, {"amount": ["Must be greater than zero."]}),
        ({"amount": Decimal("-5")}, {"amount": ["Must be greater than zero."]}),
        ({"amount": Decimal("1.001")}, {"amount": ["Has more decimals than USD allows."]}),
        ({}, {"lines": ["Credit the whole invoice, some of its lines, or an amount."]}),
        ({"full": True, "amount": Decimal("1")}, {"full": ["A full credit note takes no lines or amount."]}),
        (
            {"reason": "whim", "amount": Decimal("1")},
            {"reason": ["Choose one of: duplicate, product_unsatisfactory, order_change, other."]},
        ),
        (
            {"lines": [CreditNoteLineRequest(0, quantity=Decimal(1))]},
            {"lines.0.invoice_line": ["Not a line of invoice INV-2026-000001."]},
        ),
    ],
)
def test_bad_input_is_refused_per_field(arguments, expected):
    invoice = make_manual_invoice()
    events = invoice.events.count()

    with pytest.raises(ValidationFailed) as refused:
        credit_note_issue(invoice_id=invoice.pk, **{"reason": "other", **arguments})

    assert refused.value.fields == expected
    _nothing_written(invoice, events)


def test_a_discount_line_cannot_be_credited_on_its_own():
    invoice = make_manual_invoice(lines=[("Plan", "1", "100.00"), ("Discount", "1", "-10.00")])
    discount = invoice.lines.get(description="Discount")

    with pytest.raises(ValidationFailed) as refused:
        credit_note_preview(invoice_id=invoice.pk, lines=[CreditNoteLineRequest(discount.pk)])

    assert refused.value.fields == {
        "lines.0.invoice_line": ["Only charges can be credited line by line (not discounts or credits)."]
    }


def test_drafts_and_void_invoices_cannot_be_credited():
    draft = make_draft_invoice()
    void = make_open_invoice()
    invoice_void(invoice_id=void.pk)

    with pytest.raises(InvalidTransition, match="draft"):
        credit_note_issue(invoice_id=draft.pk, reason="other", full=True)
    with pytest.raises(InvalidTransition, match="void"):
        credit_note_issue(invoice_id=void.pk, reason="other", full=True)
    assert not CreditNote.objects.exists()


def test_an_invoice_with_credit_notes_is_not_voided():
    invoice = make_manual_invoice()
    credit_note_issue(invoice_id=invoice.pk, reason="other", amount=Decimal("1.00"), now=NOW)

    with pytest.raises(InvalidTransition, match="credit notes"):
        invoice_void(invoice_id=invoice.pk)

    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OPEN


# --- Settlement ---------------------------------------------------------------------------------------


def test_on_an_open_invoice_a_credit_reduces_what_is_due_and_settles_it_when_nothing_is_left():
    invoice = make_manual_invoice(lines=[("Plan", "1", "100.00")])

    first = credit_note_issue(invoice_id=invoice.pk, reason="other", amount=Decimal("30.00"), now=NOW)
    invoice.refresh_from_db()
    assert (invoice.status, invoice_amount_due(invoice)) == (InvoiceStatus.OPEN, Decimal("70.00"))
    second = credit_note_issue(invoice_id=invoice.pk, reason="other", full=True, now=NOW)

    assert [
        (n.amount_due_reduction.amount, n.credit_to_balance.amount, n.refund_amount.amount) for n in (first, second)
    ] == [
        (Decimal("30.00"), Decimal("0.00"), Decimal("0.00")),
        (Decimal("70.00"), Decimal("0.00"), Decimal("0.00")),
    ]
    invoice.refresh_from_db()
    assert (invoice.status, invoice.paid_at, invoice_amount_due(invoice)) == (InvoiceStatus.PAID, NOW, Decimal(0))
    assert list(invoice.events.filter(occurred_at=NOW).values_list("type", "data")) == [
        (InvoiceEventType.CREDIT_NOTE_ISSUED, {
            "credit_note": "CN-2026-000001", "total": "30.00", "currency": "USD", "reason": "other",
            "amount_due_reduction": "30.00", "credit_to_balance": "0.00", "refund_amount": "0.00",
        }),
        (InvoiceEventType.CREDIT_NOTE_ISSUED, {
            "credit_note": "CN-2026-000002", "total": "70.00", "currency": "USD", "reason": "other",
            "amount_due_reduction": "70.00", "credit_to_balance": "0.00", "refund_amount": "0.00",
        }),
        (InvoiceEventType.PAID, {"reason": "credited in full", "credit_note": "CN-2026-000002"}),
    ]  # fmt: skip


def test_an_open_invoice_is_not_refunded_or_credited_to_the_balance():
    invoice = make_manual_invoice()

    with pytest.raises(ValidationFailed) as refused:
        credit_note_issue(invoice_id=invoice.pk, reason="other", full=True, refund_amount=Decimal("100.00"))

    assert list(refused.value.fields) == ["refund_amount"]
    assert not CreditNote.objects.exists()


def test_a_paid_invoice_is_refunded_and_credited_to_the_balance_as_asked():
    invoice = _paid(make_manual_invoice(customer=_german_customer(), lines=[("Plan", "1", "100.00")]))

    note = credit_note_issue(
        invoice_id=invoice.pk, reason="product_unsatisfactory", full=True, refund_amount=Decimal("19.00"),
        refund_reference="SEPA-42", now=NOW,
    )  # fmt: skip

    assert (note.amount_due_reduction.amount, note.refund_amount.amount, note.credit_to_balance.amount) == (
        Decimal("0.00"),
        Decimal("19.00"),
        Decimal("100.00"),
    )
    item = note.balance_item
    assert (item.kind, item.subscription, item.invoice, item.amount) == (
        InvoiceLineKind.CREDIT_NOTE,
        None,
        None,
        Money("-100.00", "EUR"),
    )
    assert customer_balance(customer=invoice.customer) == Money("100.00", "EUR")


def test_on_a_paid_invoice_the_refund_and_the_balance_credit_must_add_up():
    invoice = _paid(make_manual_invoice(lines=[("Plan", "1", "100.00")]))

    with pytest.raises(ValidationFailed) as refused:
        credit_note_issue(
            invoice_id=invoice.pk, reason="other", full=True, refund_amount=Decimal("60"),
            credit_to_balance=Decimal("60"),
        )  # fmt: skip

    assert refused.value.fields == {
        "refund_amount": [
            "The refund and the credit to the balance must add up to the credit note's total, 100.00 USD."
        ]
    }


def test_a_balance_credit_comes_off_the_next_invoices_after_tax_never_below_zero():
    customer = _german_customer()
    paid = _paid(make_manual_invoice(customer=customer, lines=[("Setup", "1", "100.00")]))
    credit_note_issue(invoice_id=paid.pk, reason="duplicate", full=True, now=NOW)  # 119.00 to the balance
    plan = PlanFactory(prices=[Money("49.00", "EUR")])

    first = make_open_invoice(subscription=make_subscription(customer=customer, plan=plan, started_at=utc(2026, 3, 1)))

    # 49.00 + 9.31 VAT = 58.31 due; the credit (tax included) takes all of it and is not taxed again.
    credit_line = first.lines.get(kind=InvoiceLineKind.CREDIT_NOTE)
    assert credit_line.amount == Money("-58.31", "EUR")
    assert _taxes(first) == [("VAT", Decimal("19"), False, Decimal("49.00"), Decimal("9.31"))]
    assert _amounts(first) == (Decimal("-9.31"), Decimal("9.31"), Decimal("0.00"))
    assert first.status == InvoiceStatus.PAID  # nothing to pay
    assert customer_balance(customer=customer) == Money("60.69", "EUR")


# --- Numbering, void, database guard ---------------------------------------------------------------


def test_credit_notes_have_a_gapless_series_of_their_own():
    invoice = make_manual_invoice(lines=[("Plan", "1", "100.00")])
    credit_note_issue(invoice_id=invoice.pk, reason="other", amount=Decimal("1.00"), now=NOW)
    with pytest.raises(ValidationFailed):
        credit_note_issue(invoice_id=invoice.pk, reason="other", amount=Decimal("500.00"), now=NOW)
    credit_note_issue(invoice_id=invoice.pk, reason="other", amount=Decimal("1.00"), now=NOW)
    other = make_manual_invoice(lines=[("Plan", "1", "10.00")])

    assert other.number == "INV-2026-000002"
    assert list(CreditNote.objects.order_by("pk").values_list("number", flat=True)) == [
        "CN-2026-000001", "CN-2026-000002"
    ]  # fmt: skip
    assert InvoiceNumberSequence.objects.get(key="CN-2026").last_value == 2


def test_voiding_a_credit_note_gives_back_what_it_credited():
    invoice = _paid(make_manual_invoice(lines=[("Plan", "1", "100.00")]))
    note = credit_note_issue(invoice_id=invoice.pk, reason="other", full=True, now=NOW)

    voided = credit_note_void(credit_note_id=note.pk, reason="wrong customer", now=NOW)

    assert (voided.status, voided.voided_at, voided.balance_item) == (CreditNoteStatus.VOID, NOW, None)
    assert not InvoiceItem.objects.filter(kind=InvoiceLineKind.CREDIT_NOTE).exists()
    assert customer_balance(customer=invoice.customer) == Money("0.00", "USD")
    assert invoice_creditable_amount(invoice) == Decimal("100.00")
    assert invoice.events.filter(type=InvoiceEventType.CREDIT_NOTE_VOIDED, data__credit_note=note.number).exists()
    with pytest.raises(InvalidTransition, match="already void"):
        credit_note_void(credit_note_id=note.pk)


def test_a_credit_note_whose_credit_was_used_or_that_settled_its_invoice_is_not_voided():
    open_invoice = make_manual_invoice(lines=[("Plan", "1", "100.00")])
    settling = credit_note_issue(invoice_id=open_invoice.pk, reason="other", full=True, now=NOW)
    paid = _paid(make_manual_invoice(lines=[("Plan", "1", "10.00")]))
    refunded = credit_note_issue(invoice_id=paid.pk, reason="other", full=True, refund_amount=Decimal("10.00"))

    with pytest.raises(InvalidTransition, match="cannot be voided"):
        credit_note_void(credit_note_id=settling.pk)
    with pytest.raises(InvalidTransition, match="refund"):
        credit_note_void(credit_note_id=refunded.pk)
    assert set(CreditNote.objects.values_list("status", flat=True)) == {CreditNoteStatus.ISSUED}


def test_the_database_refuses_changes_to_an_issued_credit_note():
    invoice = make_manual_invoice(customer=_german_customer())
    note = credit_note_issue(invoice_id=invoice.pk, reason="other", full=True, now=NOW)

    for statement in [
        lambda: CreditNote.objects.filter(pk=note.pk).update(total=Money("1.00", "USD"), subtotal=Money("1.00", "USD")),
        lambda: CreditNote.objects.filter(pk=note.pk).update(number="CN-9"),
        lambda: CreditNote.objects.filter(pk=note.pk).update(balance_returned=Decimal("5.00")),
        lambda: CreditNoteLine.objects.filter(credit_note=note).update(description="changed"),
        lambda: note.taxes.update(name="changed"),
    ]:
        with pytest.raises((IntegrityError, DatabaseError)), transaction.atomic():
            statement()
    note.refresh_from_db()
    assert (note.number, note.total) == ("CN-2026-000001", Money("119.00", "EUR"))


def test_the_rest_of_a_line_credited_earlier_by_amount_is_an_amount_not_units():
    invoice = make_manual_invoice(lines=[("Seats", "4", "100.00")])
    line = invoice.lines.get()
    credit_note_issue(
        invoice_id=invoice.pk, reason="other", lines=[CreditNoteLineRequest(line.pk, amount=Decimal("10.00"))], now=NOW
    )

    rest = credit_note_preview(invoice_id=invoice.pk, lines=[CreditNoteLineRequest(line.pk)])
    everything = credit_note_preview(invoice_id=invoice.pk, full=True)

    assert [(draft.quantity, draft.amount) for draft in rest.lines] == [(None, Decimal("90.00"))]
    assert [(draft.quantity, draft.amount) for draft in everything.lines] == [(None, Decimal("90.00"))]


def test_the_upcoming_invoice_shows_the_balance_credit_taken_after_tax():
    customer = _german_customer()
    paid = _paid(make_manual_invoice(customer=customer, lines=[("Setup", "1", "20.00")]))
    credit_note_issue(invoice_id=paid.pk, reason="other", full=True, now=NOW)  # 23.80 to the balance
    plan = PlanFactory(prices=[Money("49.00", "EUR")])
    subscription = make_subscription(customer=customer, plan=plan, started_at=utc(2026, 3, 1))
    make_open_invoice(subscription=subscription)  # the first period takes all of the credit
    paid_again = _paid(make_manual_invoice(customer=customer, lines=[("Setup", "1", "10.00")]))
    credit_note_issue(invoice_id=paid_again.pk, reason="other", full=True, now=NOW)  # 11.90 waiting

    upcoming = subscription_upcoming_invoice(subscription_id=subscription.pk, now=utc(2026, 3, 10))

    assert [(line.kind, line.amount) for line in upcoming.lines][-1] == (InvoiceLineKind.CREDIT_NOTE, Decimal("-11.90"))
    assert (upcoming.subtotal, upcoming.tax_total, upcoming.total) == (
        Decimal("37.10"), Decimal("9.31"), Decimal("46.41")
    )  # fmt: skip
