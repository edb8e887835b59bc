"""The portal's credits page: balance and history of each wallet, buying credits (an invoice, then
its pay page), in English and Chinese; a viewer reads but cannot buy."""

import re
from decimal import Decimal

import pytest
from django.test import override_settings
from django.urls import reverse

from apps.accounts.models import CustomerMembership
from apps.accounts.tests.factories import UserFactory
from apps.portal.tests.conftest import NOW
from apps.wallets.models import CreditPurchase
from apps.wallets.services.ledger import wallet_grant

from .factories import make_wallet

pytestmark = [pytest.mark.django_db]


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


@override_settings(INVOICE_DRAFT_GRACE_HOURS=0)
def test_balance_history_and_buying_credits(client, world):
    customer = world.a.customer
    wallet = make_wallet(customer, "Main", rate="0.05")
    wallet_grant(wallet_id=wallet.pk, credits="200", category="promotion", reason="Welcome", now=NOW)
    make_wallet(world.b.customer, "Other customer's")
    client.force_login(world.a.user)

    page = _text(client.get(reverse("portal:credits")))

    assert "Main" in page and "Other customer's" not in page
    assert "200 credits" in page
    assert "10.00 USD" in page  # 200 × 0.05
    assert "Grant" in page

    refused = client.post(reverse("portal:credits"), {"wallet": wallet.pk, "credits": "0"})
    assert refused.status_code == 200
    assert "Your credits are not bought" in _text(refused)
    assert not CreditPurchase.objects.exists()

    bought = client.post(reverse("portal:credits"), {"wallet": wallet.pk, "credits": "1000", "request_key": "k1"})
    again = client.post(reverse("portal:credits"), {"wallet": wallet.pk, "credits": "1000", "request_key": "k1"})

    assert again.status_code == 302
    [purchase] = CreditPurchase.objects.all()  # the form sent twice bought once
    assert (purchase.trigger, purchase.credits, purchase.invoice.total.amount) == (
        "portal",
        Decimal(1000),
        Decimal("50.00"),
    )
    assert bought.status_code == 302
    assert bought["Location"] == reverse("portal:credits")  # card payments off here: pay from the invoice list


def test_in_chinese_and_a_viewer_cannot_buy(client, world):
    wallet = make_wallet(world.a.customer, "Main", rate="1.00")
    wallet_grant(wallet_id=wallet.pk, credits="5", category="goodwill", reason="Sorry", now=NOW)
    viewer = UserFactory(username="viewer-a")
    CustomerMembership.objects.create(customer=world.a.customer, user=viewer, role="viewer")
    client.force_login(viewer)
    client.post(reverse("portal:language"), {"language": "zh-hans", "next": "/portal/"})

    page = _text(client.get(reverse("portal:credits")))
    refused = client.post(reverse("portal:credits"), {"wallet": wallet.pk, "credits": "10"})

    assert "预付点数" in page and "5 点" in page and "赠送" in page
    assert "购买点数" not in page  # no form for a viewer
    assert refused.status_code == 403
    assert not CreditPurchase.objects.exists()
