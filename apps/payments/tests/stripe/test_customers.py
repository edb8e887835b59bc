"""Stripe customers created lazily, and cards added through SetupIntents (against localstripe)."""

import pytest
import stripe
from djstripe import models as djstripe_models

from apps.accounts.tests.factories import CustomerFactory
from apps.core.errors import NotFound, ValidationFailed
from apps.payments.stripe.client import StripeNotConfigured, StripeRequestFailed
from apps.payments.stripe.customers import (
    stripe_customer_ensure,
    stripe_payment_method_attach,
    stripe_payment_method_detach,
    stripe_payment_method_set_default,
    stripe_payment_methods_list,
    stripe_setup_intent_create,
)
from apps.payments.stripe.models import StripeCustomer

from .helpers import CARD_3DS, CARD_DECLINED_AT_ATTACH, CARD_DECLINED_AT_CHARGE, CARD_OK, setup_intent_confirm

pytestmark = pytest.mark.django_db


def add_card(customer_id: int, number: str, *, make_default: bool = False):
    intent = stripe_setup_intent_create(customer_id=customer_id)
    setup_intent_confirm(intent["id"], number)
    return stripe_payment_method_attach(
        customer_id=customer_id, setup_intent_id=intent["id"], make_default=make_default
    )


def test_stripe_customer_is_created_once_and_linked(localstripe):
    customer = CustomerFactory(name="Liffey Labs", email="ap@liffey.example")

    link = stripe_customer_ensure(customer_id=customer.pk)
    again = stripe_customer_ensure(customer_id=customer.pk)

    assert again.pk == link.pk
    assert StripeCustomer.objects.count() == 1
    remote = stripe.Customer.retrieve(link.stripe_customer_id, api_key="sk_test_" + "0" * 32)
    assert remote["email"] == "ap@liffey.example"
    assert remote["name"] == "Liffey Labs"
    assert remote["metadata"].to_dict() == {"billing_customer_id": str(customer.pk)}
    synced = djstripe_models.Customer.objects.get(id=link.stripe_customer_id)
    assert synced.stripe_data["email"] == "ap@liffey.example"
    assert len(stripe.Customer.list(api_key="sk_test_" + "0" * 32)["data"]) == 1


def test_setup_intent_for_an_unknown_customer_is_not_found(localstripe):
    with pytest.raises(NotFound):
        stripe_setup_intent_create(customer_id=999_999)
    assert StripeCustomer.objects.count() == 0


def test_card_payments_off_refuses_and_creates_nothing(settings):
    settings.STRIPE_ENABLED = False
    customer = CustomerFactory()
    with pytest.raises(StripeNotConfigured):
        stripe_setup_intent_create(customer_id=customer.pk)
    assert StripeCustomer.objects.count() == 0
    assert stripe_payment_methods_list(customer_id=customer.pk) == []


def test_first_card_becomes_the_default(localstripe):
    customer = CustomerFactory()
    card = add_card(customer.pk, CARD_OK)

    assert (card.brand, card.last4, card.exp_month, card.exp_year, card.is_default) == ("visa", "4242", 12, 2034, True)
    link = StripeCustomer.objects.get(customer=customer)
    assert link.default_payment_method_id == card.id
    assert djstripe_models.PaymentMethod.objects.filter(id=card.id).count() == 1
    assert [c.as_dict() for c in stripe_payment_methods_list(customer_id=customer.pk)] == [card.as_dict()]


def test_second_card_is_listed_and_can_become_the_default(localstripe):
    customer = CustomerFactory()
    first = add_card(customer.pk, CARD_OK)
    second = add_card(customer.pk, CARD_DECLINED_AT_CHARGE)  # attaches fine; declined only when charged

    assert second.is_default is False
    assert [(c.id, c.is_default) for c in stripe_payment_methods_list(customer_id=customer.pk)] == [
        (first.id, True),
        (second.id, False),
    ]

    made_default = stripe_payment_method_set_default(customer_id=customer.pk, payment_method_id=second.id)

    assert made_default.is_default is True
    listed = stripe_payment_methods_list(customer_id=customer.pk)
    assert [(c.id, c.last4, c.is_default) for c in listed] == [(second.id, "0341", True), (first.id, "4242", False)]


def test_three_d_secure_card_is_added_once_authenticated(localstripe):
    customer = CustomerFactory()
    card = add_card(customer.pk, CARD_3DS)
    assert (card.last4, card.is_default) == ("3155", True)


def test_card_declined_at_attach_is_refused_and_nothing_is_added(localstripe):
    customer = CustomerFactory()
    intent = stripe_setup_intent_create(customer_id=customer.pk)
    with pytest.raises(stripe.CardError):
        setup_intent_confirm(intent["id"], CARD_DECLINED_AT_ATTACH)  # refused in the browser already

    with pytest.raises(ValidationFailed) as error:
        stripe_payment_method_attach(customer_id=customer.pk, setup_intent_id=intent["id"])

    assert error.value.fields == {"setup_intent": ["The card is not confirmed yet (canceled)."]}
    assert stripe_payment_methods_list(customer_id=customer.pk) == []
    assert StripeCustomer.objects.get(customer=customer).default_payment_method_id is None


def test_unconfirmed_setup_intent_is_refused(localstripe):
    customer = CustomerFactory()
    intent = stripe_setup_intent_create(customer_id=customer.pk)
    with pytest.raises(ValidationFailed) as error:
        stripe_payment_method_attach(customer_id=customer.pk, setup_intent_id=intent["id"])
    assert error.value.fields == {"setup_intent": ["The card is not confirmed yet (waiting for a card)."]}
    assert stripe_payment_methods_list(customer_id=customer.pk) == []


def test_another_customers_setup_intent_and_card_are_not_found(localstripe):
    owner, other = CustomerFactory(), CustomerFactory()
    card = add_card(owner.pk, CARD_OK)
    intent = stripe_setup_intent_create(customer_id=owner.pk)
    setup_intent_confirm(intent["id"], CARD_OK)
    stripe_customer_ensure(customer_id=other.pk)

    with pytest.raises(NotFound):
        stripe_payment_method_attach(customer_id=other.pk, setup_intent_id=intent["id"])
    with pytest.raises(NotFound):
        stripe_payment_method_set_default(customer_id=other.pk, payment_method_id=card.id)
    with pytest.raises(NotFound):
        stripe_payment_method_detach(customer_id=other.pk, payment_method_id=card.id)
    with pytest.raises(NotFound):
        stripe_payment_method_attach(customer_id=owner.pk, setup_intent_id="seti_doesnotexist")

    assert stripe_payment_methods_list(customer_id=other.pk) == []
    assert [c.id for c in stripe_payment_methods_list(customer_id=owner.pk)] == [card.id]


def test_detaching_the_default_card_leaves_no_default(localstripe):
    customer = CustomerFactory()
    first = add_card(customer.pk, CARD_OK)
    second = add_card(customer.pk, CARD_OK)

    stripe_payment_method_detach(customer_id=customer.pk, payment_method_id=first.id)

    assert [(c.id, c.is_default) for c in stripe_payment_methods_list(customer_id=customer.pk)] == [(second.id, False)]
    assert StripeCustomer.objects.get(customer=customer).default_payment_method_id is None


def test_stripe_errors_become_application_errors(localstripe):
    customer = CustomerFactory()
    stripe_customer_ensure(customer_id=customer.pk)
    with pytest.raises(NotFound):
        stripe_payment_method_set_default(customer_id=customer.pk, payment_method_id="pm_doesnotexist")
    assert StripeRequestFailed.http_status == 402
