"""Cards (SetupIntents against localstripe) and paying an open invoice now, in the portal; each customer
sees and uses only its own cards and invoices."""

import re

import pytest
from django.urls import reverse

from apps.invoices.models import Invoice
from apps.payments.stripe.customers import stripe_payment_method_attach, stripe_setup_intent_create
from apps.payments.tests.stripe.helpers import CARD_DECLINED_AT_CHARGE, CARD_OK, setup_intent_confirm

pytestmark = pytest.mark.django_db


def _add_card(customer, number=CARD_OK):
    intent = stripe_setup_intent_create(customer_id=customer.pk)
    setup_intent_confirm(intent["id"], number)
    return stripe_payment_method_attach(customer_id=customer.pk, setup_intent_id=intent["id"], make_default=True)


def test_add_a_card_through_the_page(client, world, localstripe):
    client.force_login(world.a.user)
    page = client.get(reverse("portal:payment-method-add"))
    assert page.status_code == 200
    secret = re.search(r'data-client-secret="([^"]+)"', page.content.decode()).group(1)
    setup_intent_id = secret.split("_secret_")[0]
    assert f'src="{localstripe}/js.stripe.com/v3/"' in page.content.decode()
    # The page's scripts are files (no inline script) and its CSP lets Stripe.js (here localstripe) in.
    assert "<script>" not in page.content.decode()
    policy = page["Content-Security-Policy"]
    assert f"script-src 'self' {localstripe}" in policy
    assert f"connect-src 'self' {localstripe}" in policy
    assert "js.stripe.com" not in client.get(reverse("portal:dashboard"))["Content-Security-Policy"]
    setup_intent_confirm(setup_intent_id, CARD_OK)
    response = client.post(reverse("portal:payment-method-add"), {"setup_intent": setup_intent_id, "make_default": "1"})
    assert response.status_code == 302
    listing = client.get(reverse("portal:payment-methods")).content.decode()
    assert "•••• 4242" in listing
    assert "Default" in listing


def test_another_customers_cards_and_setup_intents_are_404(client, world, localstripe):
    card_b = _add_card(world.b.customer)
    intent_b = stripe_setup_intent_create(customer_id=world.b.customer.pk)
    setup_intent_confirm(intent_b["id"], CARD_OK)
    client.force_login(world.a.user)
    assert client.post(reverse("portal:payment-method-default", args=[card_b.id])).status_code == 404
    assert client.post(reverse("portal:payment-method-remove", args=[card_b.id])).status_code == 404
    assert client.post(reverse("portal:payment-method-remove", args=["pm_guessed"])).status_code == 404
    assert client.post(reverse("portal:payment-method-add"), {"setup_intent": intent_b["id"]}).status_code == 404
    assert "4242" not in client.get(reverse("portal:payment-methods")).content.decode()
    assert client.get(reverse("portal:invoice-pay", args=[world.b.invoice.pk])).status_code == 404
    response = client.post(
        reverse("portal:invoice-pay", args=[world.b.invoice.pk]), {"request_key": "k1", "payment_method": card_b.id}
    )
    assert response.status_code == 404
    assert Invoice.objects.get(pk=world.b.invoice.pk).status == "open"


def test_pay_now_with_the_default_card(client, world, localstripe):
    _add_card(world.a.customer)
    client.force_login(world.a.user)
    url = reverse("portal:invoice-pay", args=[world.a.invoice.pk])
    assert "Pay 39.00 USD" in client.get(url).content.decode()
    response = client.post(url, {"request_key": "first-click"})
    assert response.status_code == 302
    invoice = Invoice.objects.get(pk=world.a.invoice.pk)
    assert (invoice.status, invoice.amount_paid.amount, invoice.amount_due.amount) == ("paid", 39, 0)
    # The same submission again (a double click) charges nothing more.
    again = client.post(url, {"request_key": "first-click"})
    assert again.status_code == 302
    assert Invoice.objects.get(pk=world.a.invoice.pk).amount_paid.amount == 39


def test_pay_now_declined_shows_why_and_leaves_the_invoice_open(client, world, localstripe):
    _add_card(world.a.customer, CARD_DECLINED_AT_CHARGE)
    client.force_login(world.a.user)
    response = client.post(reverse("portal:invoice-pay", args=[world.a.invoice.pk]), {"request_key": "k"})
    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()
    invoice = Invoice.objects.get(pk=world.a.invoice.pk)
    assert (invoice.status, invoice.amount_paid.amount) == ("open", 0)


def test_customer_api_cards_and_pay(api_client, world, localstripe):
    card_b = _add_card(world.b.customer)
    api_client.force_authenticate(world.a.user)
    assert api_client.get("/api/v1/portal/payment-methods").json() == []
    intent = api_client.post("/api/v1/portal/payment-methods/setup-intent").json()
    setup_intent_confirm(intent["id"], CARD_OK)
    card = api_client.post("/api/v1/portal/payment-methods", {"setup_intent": intent["id"]}, format="json").json()
    assert (card["last4"], card["is_default"]) == ("4242", True)
    # Customer B's card, SetupIntent and invoice are 404.
    for response in [
        api_client.post(f"/api/v1/portal/payment-methods/{card_b.id}/default"),
        api_client.delete(f"/api/v1/portal/payment-methods/{card_b.id}"),
        api_client.post(
            f"/api/v1/portal/invoices/{world.b.invoice.pk}/pay", {}, format="json", HTTP_IDEMPOTENCY_KEY="b-1"
        ),
        api_client.post(
            f"/api/v1/portal/invoices/{world.a.invoice.pk}/pay",
            {"payment_method": card_b.id},
            format="json",
            HTTP_IDEMPOTENCY_KEY="a-0",
        ),
    ]:
        assert response.status_code == 404, response.json()
    assert Invoice.objects.get(pk=world.b.invoice.pk).status == "open"
    assert Invoice.objects.get(pk=world.a.invoice.pk).status == "open"
    # Without a key: refused; with one: paid once, however often it is sent.
    refused = api_client.post(f"/api/v1/portal/invoices/{world.a.invoice.pk}/pay", {}, format="json")
    assert refused.status_code == 400
    assert Invoice.objects.get(pk=world.a.invoice.pk).status == "open"
    for _ in range(2):
        paid = api_client.post(
            f"/api/v1/portal/invoices/{world.a.invoice.pk}/pay", {}, format="json", HTTP_IDEMPOTENCY_KEY="a-1"
        )
        assert paid.status_code == 200
        assert (paid.json()["status"], paid.json()["amount"]) == ("succeeded", {"amount": "39.00", "currency": "USD"})
    invoice = Invoice.objects.get(pk=world.a.invoice.pk)
    assert (invoice.status, invoice.amount_paid.amount) == ("paid", 39)
