"""The wallets' admin: balance and ledger on the wallet's page, grant and void with a reason through
an intermediate page, CSV export."""

from decimal import Decimal

import pytest
from django.urls import reverse

from apps.payments.tests.factories import make_customer
from apps.subscriptions.periods import utc
from apps.wallets.constants import WalletEntryKind
from apps.wallets.models import WalletEntry
from apps.wallets.selectors import wallet_balance
from apps.wallets.services.ledger import wallet_grant

from .factories import make_wallet

pytestmark = pytest.mark.django_db


def test_grant_from_the_admin_asks_for_a_reason_then_writes_the_grant(client, superuser):
    wallet = make_wallet(make_customer(currency="USD"), rate="0.50")
    client.force_login(superuser)
    url = reverse("admin:wallets_wallet_changelist")
    selected = {"action": "grant_credits_selected", "_selected_action": [wallet.pk]}

    page = client.post(url, selected)
    refused = client.post(url, {**selected, "post": "yes", "credits": "40", "category": "goodwill", "reason": ""})
    assert page.status_code == refused.status_code == 200
    assert b"This field is required" in refused.content
    assert not WalletEntry.objects.exists()

    done = client.post(
        url, {**selected, "post": "yes", "credits": "40", "category": "goodwill", "reason": "Outage", "expires_on": ""}
    )

    assert done.status_code == 302
    [entry] = WalletEntry.objects.all()
    assert (entry.kind, entry.credits, entry.reason, entry.actor) == (
        WalletEntryKind.GRANT,
        Decimal(40),
        "Outage",
        superuser,
    )
    change = client.get(reverse("admin:wallets_wallet_change", args=[wallet.pk]))
    assert change.status_code == 200
    assert b"Outage" in change.content  # the ledger inline


def test_void_and_csv_export_of_the_ledger(client, superuser):
    wallet = make_wallet(make_customer(currency="USD", external_id="cus-7"), rate="0.50")
    lot = wallet_grant(wallet_id=wallet.pk, credits="10", category="promotion", reason="Offer", now=utc(2026, 1, 1))
    client.force_login(superuser)
    url = reverse("admin:wallets_walletentry_changelist")

    client.post(url, {"action": "void_selected", "_selected_action": [lot.pk], "post": "yes", "reason": "Fraud"})

    assert wallet_balance(wallet=wallet) == Decimal(0)
    export = client.post(url, {"action": "export_csv", "_selected_action": [e.pk for e in WalletEntry.objects.all()]})
    lines = export.content.decode().splitlines()
    assert lines[0].startswith("id,occurred_at,customer_external_id,wallet,kind,credits,amount")
    assert [line.split(",")[4:7] for line in lines[1:]] == [
        ["grant", "10.0000", "5.0000"],
        ["void", "-10.0000", "-5.0000"],
    ]
