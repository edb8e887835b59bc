"""An interim invoice (progressive billing) in a real browser: the customer's invoice list marks it
"Interim" (中期账单 in Simplified Chinese), and only it, with no serious accessibility issue."""

from decimal import Decimal

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from apps.billing.services.progressive import subscription_progressive_evaluate
from apps.subscriptions.services import subscription_progressive_billing_set

from ..conftest import NOW
from .conftest import axe_violations
from .test_portal_browser import _sign_in

pytestmark = pytest.mark.browser


def test_the_invoice_list_marks_the_interim_invoice_in_english_and_chinese(page, world):
    subscription = world.a.subscription
    subscription_progressive_billing_set(subscription_id=subscription.pk, amounts=["0.05"], now=NOW)
    # 6 API calls × 0.01 = 0.06 ≥ 0.05: the usage so far is invoiced at once, as an interim invoice.
    interim = subscription_progressive_evaluate(subscription_id=subscription.pk, now=NOW)
    assert interim.total.amount == Decimal("0.06")
    _sign_in(page, world.a.user)

    page.goto(reverse("portal:invoices"))
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=interim.number, exact=True))
    badge = row.get_by_test_id("invoice-kind")
    expect(badge).to_have_text("Interim")
    expect(badge).to_be_visible()
    expect(badge).to_have_attribute("title", "Your usage this period reached a billing threshold; the invoice "
                                    "closing the period deducts it.")  # fmt: skip
    expect(page.get_by_test_id("invoice-kind")).to_have_count(1)  # the renewals carry no badge
    assert axe_violations(page) == []

    page.get_by_role("button", name="简体中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(badge).to_have_text("中期账单")
    expect(page.get_by_test_id("invoice-kind")).to_have_count(1)
    assert axe_violations(page) == []

    badge.locator("xpath=..").get_by_role("link", name=interim.number, exact=True).click()
    expect(page.get_by_test_id("invoice-kind-note")).to_contain_text("本期用量已达到计费阈值")
