"""The payments admin: list, record-a-manual-payment page, reversal with a reason, payments on the
invoice and customer pages; form errors change nothing; permissions."""

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from apps.invoices.models import Invoice
from apps.payments.constants import PaymentMethod, PaymentStatus
from apps.payments.models import Payment
from apps.payments.services import payment_record_manual, payment_reverse
from apps.payments.tests.factories import RECEIVED_AT, make_customer, make_invoice

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:payments_payment_changelist")
ADD = reverse("admin:payments_payment_add")


def _messages(response) -> list[tuple[str, str]]:
    return [(message.level_tag, message.message) for message in get_messages(response.wsgi_request)]


def _pay(customer, amount: str, invoice=None, reference="SEPA 1") -> Payment:
    return payment_record_manual(
        customer_id=customer.pk, amount=Decimal(amount), currency="USD", method=PaymentMethod.BANK_TRANSFER,
        reference=reference, received_at=RECEIVED_AT,
        allocations=None if invoice is None else [(invoice.pk, Decimal(amount))],
    )  # fmt: skip


def _record_data(customer, amount: str, **invoices: str) -> dict:
    return {
        "customer": customer.pk,
        "amount": amount,
        "method": "cheque",
        "reference": "Cheque 000777",
        "received_at_0": "2026-02-01",
        "received_at_1": "12:00:00",
        **invoices,
    }


def _state(invoice: Invoice) -> tuple[str, Decimal]:
    invoice.refresh_from_db()
    return invoice.status, invoice.amount_paid.amount


def test_the_payment_list_filters_searches_and_shows_allocations(client, superuser):
    customer = make_customer(name="Harbour Freight Ltd")
    invoice = make_invoice(customer, "100.00")
    _pay(customer, "100.00", invoice, reference="SEPA HF-1")
    _pay(make_customer(), "5.00", reference="Cash at desk")
    client.force_login(superuser)

    page = client.get(CHANGELIST)
    searched = client.get(CHANGELIST, {"q": "HF-1"})
    filtered = client.get(CHANGELIST, {"method__exact": "bank_transfer", "status__exact": "succeeded"})

    assert page.status_code == 200
    content = page.content.decode()
    assert invoice.number in content and "Cash at desk" in content
    assert searched.context["cl"].result_count == 1
    assert filtered.context["cl"].result_count == 2
    assert client.get(CHANGELIST, {"received_at__year": "2026"}).status_code == 200


def test_record_a_manual_payment_in_two_steps(client, superuser):
    customer = make_customer()
    first, second = make_invoice(customer, "100.00"), make_invoice(customer, "50.00")
    client.force_login(superuser)

    choose = client.get(ADD)
    form = client.get(ADD, {"customer": customer.pk})
    response = client.post(ADD, _record_data(customer, "120.00", **{f"invoice_{second.pk}": "50.00"}))

    assert choose.status_code == 200 and "record-payment-customer" in choose.content.decode()
    assert form.status_code == 200
    assert f"{first.number} (due on" in form.content.decode()
    payment = Payment.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("admin:payments_payment_change", args=[payment.pk])
    assert (payment.method, payment.reference, payment.amount.amount, payment.created_by) == (
        PaymentMethod.CHEQUE,
        "Cheque 000777",
        Decimal("120.00"),
        superuser,
    )
    assert _state(second) == ("paid", Decimal("50.00"))
    assert _state(first) == ("open", Decimal("0.00"))  # the rest went to the balance, not to another invoice
    assert _messages(response) == [("success", f"Recorded payment #{payment.pk} of 120.00 USD from {customer}.")]


def test_without_amounts_per_invoice_the_oldest_due_is_paid(client, superuser):
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    client.force_login(superuser)

    client.post(ADD, _record_data(customer, "60.00"))

    assert _state(invoice) == ("open", Decimal("60.00"))


def test_bad_input_shows_form_errors_and_records_nothing(client, superuser):
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    client.force_login(superuser)

    too_much = client.post(ADD, _record_data(customer, "200.00", **{f"invoice_{invoice.pk}": "150.00"}))
    negative = client.post(ADD, _record_data(customer, "-1.00"))

    assert too_much.status_code == 200
    assert too_much.context["form"].errors == {
        f"invoice_{invoice.pk}": [f"At most 100.00 USD is due on invoice {invoice.number}."]
    }
    assert negative.context["form"].errors == {"amount": ["Must be greater than zero."]}
    assert Payment.objects.count() == 0
    assert _state(invoice) == ("open", Decimal("0.00"))


def test_reverse_a_payment_with_a_reason_from_its_page(client, superuser):
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    payment = _pay(customer, "100.00", invoice)
    url = reverse("admin:payments_payment_reverse", args=[payment.pk])
    client.force_login(superuser)

    page = client.get(reverse("admin:payments_payment_change", args=[payment.pk]))
    no_reason = client.post(url, {"reason": ""})
    response = client.post(url, {"reason": "Booked on the wrong customer"})

    assert url in page.content.decode()
    assert no_reason.status_code == 200 and no_reason.context["form"].errors == {"reason": ["This field is required."]}
    assert response.status_code == 302
    payment.refresh_from_db()
    assert (payment.status, payment.reversal_reason) == (PaymentStatus.REVERSED, "Booked on the wrong customer")
    assert _state(invoice) == ("open", Decimal("0.00"))


def test_reverse_selected_payments_through_an_intermediate_page(client, superuser):
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    manual = _pay(customer, "40.00", invoice)
    already = _pay(customer, "10.00", invoice, reference="SEPA 2")
    payment_reverse(payment_id=already.pk, reason="earlier")
    client.force_login(superuser)
    selection = {"action": "reverse_selected", "_selected_action": [manual.pk, already.pk]}

    confirm = client.post(CHANGELIST, selection)
    done = client.post(CHANGELIST, {**selection, "post": "yes", "reason": "Duplicates"})

    assert confirm.status_code == 200 and "Reverse 2 payments?" in confirm.content.decode()
    assert done.status_code == 302
    manual.refresh_from_db()
    assert (manual.status, manual.reversal_reason) == (PaymentStatus.REVERSED, "Duplicates")
    levels = sorted(level for level, _ in _messages(done))
    assert levels == ["error", "success"]
    assert _state(invoice) == ("open", Decimal("0.00"))


def test_invoice_and_customer_pages_show_payments_and_amounts(client, superuser):
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    payment = _pay(customer, "30.00", invoice, reference="SEPA PART")
    client.force_login(superuser)

    invoice_page = client.get(reverse("admin:invoices_invoice_change", args=[invoice.pk])).content.decode()
    customer_page = client.get(reverse("admin:accounts_customer_change", args=[customer.pk])).content.decode()
    invoice_list = client.get(reverse("admin:invoices_invoice_changelist")).content.decode()

    payment_url = reverse("admin:payments_payment_change", args=[payment.pk])
    assert payment_url in invoice_page and "SEPA PART" in invoice_page
    assert "70.00 USD" in invoice_page  # amount due
    assert payment_url in customer_page and "customer-record-payment" in customer_page
    assert "30.00 USD" in invoice_list and "70.00 USD" in invoice_list


@pytest.mark.parametrize(
    ("perms", "view", "expected"),
    [
        (["payments.view_payment"], "changelist", 200),
        ([], "changelist", 403),
        (["payments.view_payment"], "add", 403),
        (["payments.add_payment"], "add", 200),
        (["payments.view_payment", "payments.add_payment"], "reverse", 403),
        (["payments.view_payment", "payments.change_payment"], "reverse", 302),
    ],
)
def test_payment_admin_permission_matrix(client, make_staff, perms, view, expected):
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    payment = _pay(customer, "100.00", invoice)
    client.force_login(make_staff(*perms))

    if view == "changelist":
        response = client.get(CHANGELIST)
    elif view == "add":
        response = client.get(ADD, {"customer": customer.pk})
    else:
        response = client.post(reverse("admin:payments_payment_reverse", args=[payment.pk]), {"reason": "x"})

    assert response.status_code == expected
    payment.refresh_from_db()
    assert payment.status == (PaymentStatus.REVERSED if expected == 302 else PaymentStatus.SUCCEEDED)


def test_a_credit_note_of_a_partly_paid_invoice_refunds_its_payment_from_the_admin(client, superuser):
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    payment = _pay(customer, "60.00", invoice)
    url = reverse("admin:invoices_invoice_credit_note", args=[invoice.pk])
    client.force_login(superuser)

    form = client.get(url)
    response = client.post(
        url,
        {"mode": "full", "reason": "duplicate", "refund_amount": "60.00", "refund_reference": "Back", "confirm": "1"},
    )

    assert "paid in part" in form.content.decode()
    assert response.status_code == 302
    refund = payment.refunds.get()
    assert (refund.amount.amount, refund.reference, refund.status) == (Decimal("60.00"), "Back", "succeeded")
    assert _state(invoice) == ("paid", Decimal("60.00"))
