"""Staff charge a card now: the invoice admin's operation and `POST /api/v1/invoices/{id}/charge`;
the customer's Stripe id and default card in the admin."""

import re
from decimal import Decimal

import pytest
import stripe
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.timezone import localtime
from djmoney.money import Money

from apps.core.errors import InvalidTransition
from apps.invoices.constants import InvoiceStatus
from apps.payments.constants import PaymentStatus
from apps.payments.models import Payment
from apps.payments.services import payment_record_manual
from apps.payments.stripe.client import StripeUnavailable
from apps.payments.stripe.collection import invoice_charge_now, invoice_collect
from apps.payments.stripe.customers import stripe_payment_method_attach, stripe_setup_intent_create
from apps.payments.tests.factories import make_customer, make_invoice

from .helpers import CARD_3DS, CARD_DECLINED_AT_CHARGE, CARD_OK, setup_intent_confirm, stripe_list, unreachable_url
from .test_collection import PAST_THE_CANCEL_MARGIN, customer_with_card

pytestmark = pytest.mark.django_db


def charge_url(invoice) -> str:
    return reverse("admin:invoices_invoice_charge_card", args=[invoice.pk])


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]


def test_charge_card_button_charges_a_new_attempt(localstripe, client, superuser):
    customer = customer_with_card(CARD_DECLINED_AT_CHARGE)
    invoice = make_invoice(customer, "60.00")
    invoice_collect(invoice_id=invoice.pk, attempt=1)  # declined
    from apps.payments.stripe.customers import stripe_payment_method_attach, stripe_setup_intent_create

    from .helpers import setup_intent_confirm

    intent = stripe_setup_intent_create(customer_id=customer.pk)
    setup_intent_confirm(intent["id"], CARD_OK)
    stripe_payment_method_attach(customer_id=customer.pk, setup_intent_id=intent["id"], make_default=True)
    client.force_login(superuser)

    page = client.get(reverse("admin:invoices_invoice_change", args=[invoice.pk]))
    assert [op["name"] for op in page.context["invoice_operations"]].count("charge_card") == 1
    response = client.post(charge_url(invoice))

    assert response.status_code == 302
    assert messages_of(response) == [("success", f"Charged the card for {invoice}.")]
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    keys = list(Payment.objects.order_by("pk").values_list("idempotency_key", "status"))
    assert keys == [
        (f"invoice-{invoice.pk}-attempt-1", PaymentStatus.FAILED),
        (f"invoice-{invoice.pk}-attempt-2", PaymentStatus.SUCCEEDED),
    ]


def test_declined_charge_is_reported_as_an_error(localstripe, client, superuser):
    invoice = make_invoice(customer_with_card(CARD_DECLINED_AT_CHARGE), "60.00")
    client.force_login(superuser)

    response = client.post(charge_url(invoice))

    assert messages_of(response) == [("error", f"{invoice}: The card was not charged: The card was declined.")]
    assert Payment.objects.get().status == PaymentStatus.FAILED
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OPEN


def test_charge_card_is_not_offered_while_card_payments_are_off(settings, client, superuser):
    settings.STRIPE_ENABLED = False
    invoice = make_invoice(make_customer(collection_method="charge_automatically"), "60.00")
    client.force_login(superuser)

    page = client.get(reverse("admin:invoices_invoice_change", args=[invoice.pk]))

    assert "charge_card" not in [op["name"] for op in page.context["invoice_operations"]]


def test_customer_page_shows_stripe_customer_and_default_card(localstripe, client, superuser):
    customer = customer_with_card(CARD_OK)
    client.force_login(superuser)

    response = client.get(reverse("admin:accounts_customer_change", args=[customer.pk]))

    content = response.content.decode()
    assert response.status_code == 200
    assert customer.stripe_link.stripe_customer_id in content
    assert "Visa •••• 4242 (12/2034)" in content
    listing = client.get(reverse("admin:payments_stripecustomer_changelist"))
    assert listing.status_code == 200
    assert "Visa •••• 4242 (12/2034)" in listing.content.decode()


def api_url(invoice) -> str:
    return f"/api/v1/invoices/{invoice.pk}/charge"


def test_api_charge_returns_the_attempt(localstripe, api_client, superuser):
    invoice = make_invoice(customer_with_card(CARD_3DS), "15.00")
    api_client.force_authenticate(superuser)

    response = api_client.post(api_url(invoice), HTTP_IDEMPOTENCY_KEY="charge-1")
    replay = api_client.post(api_url(invoice), HTTP_IDEMPOTENCY_KEY="charge-1")

    assert response.status_code == 201
    body = response.json()
    payment = Payment.objects.get()
    assert body == {
        "payment": payment.pk,
        "status": "requires_action",
        "amount": "15.0000",
        "currency": "USD",
        "idempotency_key": f"invoice-{invoice.pk}-attempt-1",
        "provider_payment_id": payment.provider_payment_id,
        "failure_code": "",
        "failure_message": "",
        "next_action_url": f"http://127.0.0.1:8000/portal/invoices/{invoice.pk}/pay/",
    }
    assert replay.status_code == 201
    assert replay.json() == body
    assert len(stripe_list(stripe.PaymentIntent)) == 1


def test_api_charge_of_a_paid_invoice_is_a_conflict(localstripe, api_client, superuser):
    invoice = make_invoice(customer_with_card(CARD_OK), "15.00")
    invoice_collect(invoice_id=invoice.pk, attempt=1)
    api_client.force_authenticate(superuser)

    response = api_client.post(api_url(invoice))

    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"
    assert Payment.objects.count() == 1


@pytest.mark.parametrize(
    ("perms", "expected"),
    [
        (None, 401),
        ([], 403),
        (["invoices.view_invoice"], 403),
        (["invoices.view_invoice", "invoices.change_invoice"], 201),
    ],
)
def test_api_charge_permission_matrix(localstripe, api_client, make_staff, perms, expected):
    invoice = make_invoice(customer_with_card(CARD_OK), "15.00")
    if perms is not None:
        api_client.force_authenticate(make_staff(*perms))

    assert api_client.post(api_url(invoice)).status_code == expected
    assert Payment.objects.count() == (1 if expected == 201 else 0)


def test_api_charge_of_an_unknown_invoice_is_not_found(localstripe, api_client, superuser):
    api_client.force_authenticate(superuser)
    assert api_client.post("/api/v1/invoices/999999/charge").status_code == 404


def _inline_cells(page: str, field: str) -> list[str]:
    cells = re.findall(rf'<td class="field-{field}">(.*?)</td>', page, flags=re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<(?!br)[^>]+>", "", cell)).strip() for cell in cells]


def test_the_invoice_page_lists_card_payments_with_the_card_and_formatted_times(localstripe, client, superuser):
    """A failed attempt has no receipt time ("—", not "None"); a time is formatted like the rest of
    the admin; a card payment's reference is the card charged, its PaymentIntent id below it."""
    customer = customer_with_card(CARD_DECLINED_AT_CHARGE)
    invoice = make_invoice(customer, "60.00")
    failed = invoice_collect(invoice_id=invoice.pk, attempt=1)
    intent = stripe_setup_intent_create(customer_id=customer.pk)
    setup_intent_confirm(intent["id"], CARD_OK)
    stripe_payment_method_attach(customer_id=customer.pk, setup_intent_id=intent["id"], make_default=True)
    paid = invoice_collect(invoice_id=invoice.pk, attempt=2)
    assert (failed.status, paid.status) == (PaymentStatus.FAILED, PaymentStatus.SUCCEEDED)
    client.force_login(superuser)

    page = client.get(reverse("admin:invoices_invoice_change", args=[invoice.pk])).content.decode()

    assert _inline_cells(page, "received_at") == ["—", date_format(localtime(paid.received_at), "DATETIME_FORMAT")]
    assert _inline_cells(page, "reference") == [
        "Visa •••• 0341",  # declined: Stripe gave no PaymentIntent to keep
        f"Visa •••• 4242<br>{paid.provider_payment_id}",
    ]
    assert "None" not in "".join(_inline_cells(page, "received_at") + _inline_cells(page, "reference"))


def _pay_by_transfer(invoice, amount: str):
    return payment_record_manual(
        customer_id=invoice.customer_id, amount=Decimal(amount), currency="USD", method="bank_transfer",
        reference="TRF-1", received_at=invoice.issued_at, allocations=[(invoice.pk, Decimal(amount))],
    )  # fmt: skip


def _attempt_left_pending(invoice, settings, localstripe):
    """Attempt 1 never reached Stripe and stays pending (the network was down)."""
    settings.STRIPE_API_BASE = unreachable_url()
    with pytest.raises(StripeUnavailable):
        invoice_collect(invoice_id=invoice.pk, attempt=1)
    settings.STRIPE_API_BASE = localstripe
    return Payment.objects.get(idempotency_key=f"invoice-{invoice.pk}-attempt-1")


def test_api_charge_of_an_invoice_paid_by_transfer_while_an_attempt_was_pending_is_a_conflict(
    localstripe, api_client, superuser, settings
):
    """A card attempt left pending, then the customer paid by bank transfer: charging the card now
    must not charge the invoice again (the pending attempt is not sent again either)."""
    invoice = make_invoice(customer_with_card(CARD_OK), "15.00")
    pending = _attempt_left_pending(invoice, settings, localstripe)
    _pay_by_transfer(invoice, "15.00")
    api_client.force_authenticate(superuser)

    response = api_client.post(api_url(invoice))

    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"
    assert response.json()["fields"] == {"invoice": ["The invoice is paid, not open."]}
    assert stripe_list(stripe.PaymentIntent) == []
    pending.refresh_from_db()
    assert pending.status == PaymentStatus.PENDING


def test_the_attempts_own_retry_after_a_transfer_payment_sends_nothing(localstripe, settings):
    invoice = make_invoice(customer_with_card(CARD_OK), "15.00")
    _attempt_left_pending(invoice, settings, localstripe)
    _pay_by_transfer(invoice, "15.00")

    with pytest.raises(InvalidTransition):
        invoice_collect(invoice_id=invoice.pk, attempt=1)  # its task's retry
    with pytest.raises(InvalidTransition):
        invoice_charge_now(invoice_id=invoice.pk)

    assert stripe_list(stripe.PaymentIntent) == []


def test_charge_now_after_a_part_payment_by_transfer_charges_what_is_due_now(localstripe, settings):
    invoice = make_invoice(customer_with_card(CARD_OK), "15.00")
    stale = _attempt_left_pending(invoice, settings, localstripe)
    _pay_by_transfer(invoice, "5.00")
    with pytest.raises(InvalidTransition):  # the pending attempt (15.00) is not sent again for 10.00 due
        invoice_collect(invoice_id=invoice.pk, attempt=1)
    Payment.objects.filter(pk=stale.pk).update(created_at=stale.created_at - PAST_THE_CANCEL_MARGIN)

    payment = invoice_charge_now(invoice_id=invoice.pk)

    stale.refresh_from_db()
    assert stale.status == PaymentStatus.CANCELED
    assert (payment.status, payment.amount) == (PaymentStatus.SUCCEEDED, Money("10.00", "USD"))
    [intent] = stripe_list(stripe.PaymentIntent)
    assert intent["amount"] == 1000
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID


def test_charge_card_is_not_offered_for_a_customer_without_a_card(localstripe, client, superuser):
    invoice = make_invoice(make_customer(collection_method="charge_automatically"), "60.00")
    with_card = make_invoice(customer_with_card(CARD_OK), "60.00")
    client.force_login(superuser)

    page = client.get(reverse("admin:invoices_invoice_change", args=[invoice.pk]))
    carded = client.get(reverse("admin:invoices_invoice_change", args=[with_card.pk]))

    assert "charge_card" not in [op["name"] for op in page.context["invoice_operations"]]
    assert "charge_card" in [op["name"] for op in carded.context["invoice_operations"]]
