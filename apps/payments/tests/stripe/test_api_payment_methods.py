"""Staff API for a customer's cards, against localstripe."""

import pytest

from apps.accounts.credentials import user_token_create
from apps.accounts.tests.factories import CustomerFactory
from apps.payments.stripe.customers import stripe_payment_methods_list
from apps.payments.stripe.models import StripeCustomer

from .helpers import CARD_OK, setup_intent_confirm

pytestmark = pytest.mark.django_db


def url(customer_id, suffix=""):
    return f"/api/v1/customers/{customer_id}/payment-methods{suffix}"


def add_card_through_api(api_client, customer_id, number=CARD_OK, **extra):
    intent = api_client.post(url(customer_id, "/setup-intent")).json()
    setup_intent_confirm(intent["id"], number)
    return api_client.post(url(customer_id), {"setup_intent": intent["id"], **extra})


def test_staff_adds_lists_defaults_and_removes_cards(localstripe, api_client, superuser):
    customer = CustomerFactory()
    api_client.force_authenticate(superuser)

    intent = api_client.post(url(customer.pk, "/setup-intent"))
    assert intent.status_code == 201
    assert intent.json()["id"].startswith("seti_")
    assert intent.json()["client_secret"].startswith(intent.json()["id"] + "_secret_")
    assert intent.json()["publishable_key"] == "pk_test_localstripe"
    setup_intent_confirm(intent.json()["id"], CARD_OK)

    added = api_client.post(url(customer.pk), {"setup_intent": intent.json()["id"]})
    assert added.status_code == 201
    first = added.json()
    assert {k: v for k, v in first.items() if k != "id"} == {
        "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2034, "is_default": True,
    }  # fmt: skip
    second = add_card_through_api(api_client, customer.pk, make_default=True).json()
    assert second["is_default"] is True

    listed = api_client.get(url(customer.pk))
    assert listed.status_code == 200
    assert [(c["id"], c["is_default"]) for c in listed.json()] == [(second["id"], True), (first["id"], False)]

    made_default = api_client.post(url(customer.pk, f"/{first['id']}/default"))
    assert made_default.status_code == 200
    assert made_default.json()["is_default"] is True

    removed = api_client.delete(url(customer.pk, f"/{second['id']}"))
    assert removed.status_code == 204
    assert [c.id for c in stripe_payment_methods_list(customer_id=customer.pk)] == [first["id"]]


def test_bad_input_is_a_field_error_and_changes_nothing(localstripe, api_client, superuser):
    customer = CustomerFactory()
    api_client.force_authenticate(superuser)

    response = api_client.post(url(customer.pk), {"setup_intent": "not-an-intent"})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert list(response.json()["fields"]) == ["setup_intent"]
    assert StripeCustomer.objects.count() == 0


def test_unconfirmed_setup_intent_is_refused(localstripe, api_client, superuser):
    customer = CustomerFactory()
    api_client.force_authenticate(superuser)
    intent = api_client.post(url(customer.pk, "/setup-intent")).json()

    response = api_client.post(url(customer.pk), {"setup_intent": intent["id"]})

    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid",
        "message": "The card is not confirmed yet.",
        "fields": {"setup_intent": ["The card is not confirmed yet (waiting for a card)."]},
    }
    assert stripe_payment_methods_list(customer_id=customer.pk) == []


def test_unknown_customer_and_card_are_not_found(localstripe, api_client, superuser):
    customer = CustomerFactory()
    api_client.force_authenticate(superuser)
    assert api_client.get(url(999_999)).status_code == 404
    assert api_client.post(url(customer.pk, "/pm_unknown/default")).status_code == 404
    assert api_client.delete(url(customer.pk, "/pm_unknown")).status_code == 404


def test_card_payments_off_is_a_conflict(settings, api_client, superuser):
    settings.STRIPE_ENABLED = False
    customer = CustomerFactory()
    api_client.force_authenticate(superuser)
    response = api_client.post(url(customer.pk, "/setup-intent"))
    assert response.status_code == 409
    assert response.json()["code"] == "stripe_not_configured"
    assert api_client.get(url(customer.pk)).json() == []


@pytest.mark.parametrize(
    ("who", "perms", "list_status", "add_status"),
    [
        ("anonymous", None, 401, 401),
        ("not staff", None, 403, 403),
        ("staff without permission", [], 403, 403),
        ("staff who may view", ["accounts.view_customer"], 200, 403),
        # A customer's cards are a money matter (docs/roles.md): changing the customer is not enough.
        ("staff who may change the customer", ["accounts.view_customer", "accounts.change_customer"], 200, 403),
        ("staff who may change its billing", ["accounts.view_customer", "accounts.change_customer_billing"], 200, 201),
    ],
)
def test_permission_matrix(localstripe, api_client, make_staff, who, perms, list_status, add_status):
    customer = CustomerFactory()
    if who == "not staff":
        from apps.accounts.tests.factories import UserFactory

        user = UserFactory()
        api_client.credentials(HTTP_AUTHORIZATION=f"Token {user_token_create(user_id=user.pk, name='cards')[1]}")
    elif perms is not None:
        api_client.force_authenticate(make_staff(*perms))

    assert api_client.get(url(customer.pk)).status_code == list_status
    assert api_client.post(url(customer.pk, "/setup-intent")).status_code == add_status
    assert StripeCustomer.objects.filter(customer=customer).count() == (1 if add_status == 201 else 0)
