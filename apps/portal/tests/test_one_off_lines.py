"""The customer sees one-off charges on the upcoming invoice (subscription page) and on the invoice,
like any other line, in English and Simplified Chinese."""

import re

import pytest
from django.urls import reverse

from apps.billing.services.one_off import OneOffCharge, invoice_item_create, invoice_one_off_create

from .conftest import NOW

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_a_pending_one_off_charge_is_on_the_upcoming_invoice(client, world):
    invoice_item_create(
        customer_id=world.a.customer.pk, now=NOW,
        charge=OneOffCharge(quantity="2", unit_amount="75", description="Onboarding workshop"),
    )  # fmt: skip
    invoice_item_create(
        customer_id=world.b.customer.pk, now=NOW,
        charge=OneOffCharge(quantity="1", unit_amount="5", description="Beta's own charge"),
    )  # fmt: skip
    client.force_login(world.a.user)
    url = reverse("portal:subscription", args=[world.a.subscription.pk])

    text = _text(client.get(url))

    assert "Onboarding workshop (One-off charge) 2 150.00 USD" in text
    assert "Beta's own charge" not in text
    # April's fee 49.00 + March's API calls 6 × 0.01 = 0.06 + the charge 2 × 75.00 = 150.00 (no tax rate on file).
    assert "Next invoice on 1 Apr 2026: 199.06 USD" in text
    assert "Subtotal 199.06 USD Total 199.06 USD" in text

    client.post(reverse("portal:language"), {"language": "zh-hans", "next": url})
    text = _text(client.get(url))
    assert "Onboarding workshop (一次性费用) 2" in text


def test_a_one_off_invoice_shows_its_lines_in_the_portal(client, world):
    invoice = invoice_one_off_create(
        customer_id=world.a.customer.pk, now=NOW, finalize=True,
        charges=[OneOffCharge(quantity="3", unit_amount="149.995", description="Gateway hardware")],
    )  # fmt: skip
    client.force_login(world.a.user)
    url = reverse("portal:invoice", args=[invoice.pk])

    text = _text(client.get(url))
    assert f"Invoice {invoice.number}" in text
    assert "Gateway hardware (One-off charge) 3 449.99 USD" in text  # 3 × 149.995 = 449.985 → 449.99

    client.post(reverse("portal:language"), {"language": "zh-hans", "next": url})
    text = _text(client.get(url))
    assert "Gateway hardware (一次性费用) 3" in text
    assert "明细" in text
