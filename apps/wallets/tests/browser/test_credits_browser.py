"""Prepaid credits in the portal, in headless Chromium: the balance, buying credits, paying their
invoice with the saved card (against localstripe) and seeing them added; the page in Chinese."""

import pytest
from playwright.sync_api import expect

from apps.payments.stripe.customers import stripe_payment_method_attach, stripe_setup_intent_create
from apps.payments.tests.stripe.helpers import CARD_OK, setup_intent_confirm
from apps.portal.tests.browser.conftest import axe_violations
from apps.portal.tests.browser.test_portal_browser import _sign_in
from apps.portal.tests.conftest import NOW
from apps.wallets.services.ledger import wallet_grant
from apps.wallets.tests.factories import make_wallet

pytestmark = pytest.mark.browser


def test_buy_credits_and_pay_them_by_card(page, world, localstripe, settings):
    settings.INVOICE_DRAFT_GRACE_HOURS = 0
    customer = world.a.customer
    intent = stripe_setup_intent_create(customer_id=customer.pk)
    setup_intent_confirm(intent["id"], CARD_OK)
    stripe_payment_method_attach(customer_id=customer.pk, setup_intent_id=intent["id"], make_default=True)
    wallet = make_wallet(customer, "Main", rate="0.05")
    wallet_grant(wallet_id=wallet.pk, credits="200", category="promotion", reason="Welcome", now=NOW)
    _sign_in(page, world.a.user)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Credits").click()
    expect(page.get_by_test_id("wallet-balance")).to_have_text("200 credits")
    assert axe_violations(page) == []
    page.get_by_label("Credits", exact=True).fill("1000")
    page.get_by_role("button", name="Buy credits").click()
    page.get_by_role("button", name="Pay 50.00 USD").click()
    expect(page.get_by_text("Thank you: your payment is received.")).to_be_visible()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Credits").click()
    expect(page.get_by_test_id("wallet-balance")).to_have_text("1,200 credits")
    page.get_by_role("button", name="简体中文").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("预付点数")
    expect(page.get_by_test_id("wallet-balance")).to_have_text("1,200 点")
    assert axe_violations(page) == []
