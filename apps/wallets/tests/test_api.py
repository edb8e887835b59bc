"""`/api/v1/customers/{id}/wallets`: wallets with their balance, the ledger (paginated), grants and
purchases (Idempotency-Key honoured), field-level 400s that change nothing."""

import pytest
from django.test import override_settings

from apps.accounts.credentials import user_token_create
from apps.payments.tests.factories import make_customer
from apps.subscriptions.periods import utc
from apps.wallets.models import CreditPurchase, Wallet, WalletEntry
from apps.wallets.services.ledger import wallet_grant

from .factories import make_wallet

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def auth(superuser):
    _, token = user_token_create(user_id=superuser.pk, name="wallets")
    return {"HTTP_AUTHORIZATION": f"Token {token}"}


def test_wallets_list_with_balance_and_the_ledger_paginated(api_client, auth):
    customer = make_customer(currency="USD")
    wallet = make_wallet(customer, rate="0.50")
    for day in range(1, 4):
        wallet_grant(
            wallet_id=wallet.pk, credits="10", category="promotion", reason=f"Day {day}", now=utc(2026, 1, day)
        )

    listed = api_client.get(f"/api/v1/customers/{customer.pk}/wallets", **auth).json()
    ledger = api_client.get(f"/api/v1/customers/{customer.pk}/wallets/{wallet.pk}/ledger?page_size=2", **auth).json()

    [shown] = listed["results"]
    assert (shown["name"], shown["balance"], shown["balance_amount"]) == (
        "Main", "30.0000", {"amount": "15.00", "currency": "USD"},
    )  # fmt: skip
    assert ledger["count"] == 3
    assert [entry["reason"] for entry in ledger["results"]] == ["Day 3", "Day 2"]
    assert ledger["results"][0]["amount"] == {"amount": "5.00", "currency": "USD"}
    other = make_customer(currency="USD")
    assert api_client.get(f"/api/v1/customers/{other.pk}/wallets/{wallet.pk}", **auth).status_code == 404
    assert api_client.get("/api/v1/customers/999999/wallets", **auth).status_code == 404


def test_create_and_grant_and_bad_input_is_a_field_level_400(api_client, auth):
    customer = make_customer(currency="EUR")
    created = api_client.post(
        f"/api/v1/customers/{customer.pk}/wallets", {"name": "Promo", "rate": "0.10"}, format="json", **auth
    )
    assert created.status_code == 201, created.json()
    assert (created.json()["currency"], created.json()["balance"]) == ("EUR", "0.0000")
    wallet_id = created.json()["id"]
    url = f"/api/v1/customers/{customer.pk}/wallets/{wallet_id}/grant"

    refused = api_client.post(url, {"credits": "-1", "category": "gift", "reason": ""}, format="json", **auth)
    past = api_client.post(
        url, {"credits": "5", "category": "goodwill", "reason": "x", "expires_on": "2000-01-01"}, format="json", **auth
    )
    granted = api_client.post(
        url, {"credits": "25", "category": "goodwill", "reason": "Late delivery"}, format="json", **auth
    )

    assert refused.status_code == 400
    assert set(refused.json()["fields"]) == {"credits", "category", "reason"}
    assert (past.status_code, list(past.json()["fields"])) == (400, ["expires_on"])
    assert granted.status_code == 201
    assert (granted.json()["kind"], granted.json()["credits"], granted.json()["amount"]) == (
        "grant", "25.0000", {"amount": "2.50", "currency": "EUR"},
    )  # fmt: skip
    assert WalletEntry.objects.count() == 1
    duplicate = api_client.post(
        f"/api/v1/customers/{customer.pk}/wallets", {"name": "Promo", "rate": "1"}, format="json", **auth
    )
    assert (duplicate.status_code, list(duplicate.json()["fields"])) == (400, ["name"])
    assert Wallet.objects.count() == 1


@override_settings(INVOICE_DRAFT_GRACE_HOURS=0)
def test_purchase_issues_an_invoice_once_per_idempotency_key(api_client, auth):
    customer = make_customer(currency="USD")
    wallet = make_wallet(customer, rate="0.02")
    url = f"/api/v1/customers/{customer.pk}/wallets/{wallet.pk}/purchase"

    first = api_client.post(url, {"credits": "5000"}, format="json", HTTP_IDEMPOTENCY_KEY="buy-1", **auth)
    again = api_client.post(url, {"credits": "5000"}, format="json", HTTP_IDEMPOTENCY_KEY="buy-1", **auth)

    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert (first.json()["status"], first.json()["trigger"], first.json()["amount_due"]) == (
        "pending", "api", {"amount": "100.00", "currency": "USD"},
    )  # fmt: skip
    assert CreditPurchase.objects.count() == 1
    assert WalletEntry.objects.count() == 0  # granted once paid
