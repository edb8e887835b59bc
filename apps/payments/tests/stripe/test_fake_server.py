"""The local fake Stripe behaves like Stripe where our code relies on it."""

import urllib.parse

import pytest
import stripe

from .helpers import stripe_list, stripe_options


def test_listens_on_localhost_only(localstripe_url):
    assert urllib.parse.urlsplit(localstripe_url).hostname == "127.0.0.1"


def test_account_is_served(localstripe):
    account = stripe.Account.retrieve(**stripe_options())
    assert (account["id"], account["object"]) == ("acct_localstripe0001", "account")


def test_a_repeated_key_gets_the_first_answer_and_creates_nothing(localstripe):
    first = stripe.Customer.create(email="a@example.com", idempotency_key="same-key", **stripe_options())
    again = stripe.Customer.create(email="a@example.com", idempotency_key="same-key", **stripe_options())

    assert again["id"] == first["id"]
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(stripe_list(stripe.Customer)) == 1


def test_a_repeated_key_with_other_parameters_is_refused(localstripe):
    stripe.Customer.create(email="a@example.com", idempotency_key="same-key", **stripe_options())

    with pytest.raises(stripe.IdempotencyError):
        stripe.Customer.create(email="b@example.com", idempotency_key="same-key", **stripe_options())

    assert len(stripe_list(stripe.Customer)) == 1


def test_missing_objects_are_resource_missing(localstripe):
    for retrieve in (stripe.Customer.retrieve, stripe.Dispute.retrieve):
        with pytest.raises(stripe.InvalidRequestError) as error:
            retrieve("xx_missing", **stripe_options())
        assert error.value.code == "resource_missing"
        assert error.value.http_status == 404


def test_payment_intents_are_listed_by_customer_and_creation_time(localstripe):
    options = stripe_options()
    first, second = (stripe.Customer.create(email=f"{n}@example.com", **options) for n in ("a", "b"))
    mine = stripe.PaymentIntent.create(amount=100, currency="usd", customer=first["id"], **options)
    stripe.PaymentIntent.create(amount=200, currency="usd", customer=second["id"], **options)

    listed = stripe.PaymentIntent.list(customer=first["id"], created={"gte": mine["created"]}, **options)
    later = stripe.PaymentIntent.list(customer=first["id"], created={"gt": mine["created"]}, **options)

    assert [intent["id"] for intent in listed["data"]] == [mine["id"]]
    assert later["data"] == []
    with pytest.raises(stripe.InvalidRequestError):
        stripe.PaymentIntent.list(created={"after": 1}, **options)
