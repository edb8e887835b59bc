"""An interim invoice (progressive billing) is recognisable in the customer's invoice list and on its
page, in English and Simplified Chinese."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from apps.billing.services.progressive import subscription_progressive_evaluate
from apps.subscriptions.services import subscription_progressive_billing_set

from .conftest import NOW

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_the_invoice_list_and_page_show_an_interim_invoice_as_such(client, world):
    subscription = world.a.subscription
    subscription_progressive_billing_set(subscription_id=subscription.pk, amounts=["0.05"], now=NOW)
    # 6 API calls × 0.01 = 0.06 ≥ 0.05: the usage so far is invoiced now.
    interim = subscription_progressive_evaluate(subscription_id=subscription.pk, now=NOW)
    assert interim.total.amount == Decimal("0.06")
    client.force_login(world.a.user)
    listing = reverse("portal:invoices")

    html = client.get(listing).content.decode()
    assert html.count('data-testid="invoice-kind"') == 1  # the interim invoice only, not the renewals
    assert f"{interim.number} Interim" in _text(client.get(listing))
    page = _text(client.get(reverse("portal:invoice", args=[interim.pk])))
    assert "Interim invoice: your usage this period reached a billing threshold" in page

    client.post(reverse("portal:language"), {"language": "zh-hans", "next": listing})
    assert f"{interim.number} 中期账单" in _text(client.get(listing))
    page = _text(client.get(reverse("portal:invoice", args=[interim.pk])))
    assert "本期用量已达到计费阈值" in page
