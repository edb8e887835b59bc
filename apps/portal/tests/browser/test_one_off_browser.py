"""One-off charges in a real browser: the pending charge on the subscription page's upcoming invoice
and a one-off invoice's line, in English and Simplified Chinese, with no serious accessibility issue."""

import pytest
from playwright.sync_api import expect

from apps.billing.services.one_off import OneOffCharge, invoice_item_create, invoice_one_off_create

from ..conftest import NOW
from .conftest import axe_violations
from .test_portal_browser import _sign_in

pytestmark = pytest.mark.browser


def test_one_off_charges_on_the_upcoming_invoice_and_on_the_invoice(page, world):
    invoice_item_create(
        customer_id=world.a.customer.pk, now=NOW,
        charge=OneOffCharge(quantity="2", unit_amount="75", description="Onboarding workshop"),
    )  # fmt: skip
    invoice = invoice_one_off_create(
        customer_id=world.a.customer.pk, now=NOW, finalize=True,
        charges=[OneOffCharge(quantity="3", unit_amount="149.995", description="Gateway hardware")],
    )  # fmt: skip
    _sign_in(page, world.a.user)

    page.get_by_role("link", name="Manage subscription").click()
    upcoming = page.get_by_test_id("upcoming-invoice")
    expect(upcoming.get_by_role("row", name="Onboarding workshop")).to_contain_text("(One-off charge)")
    expect(upcoming.get_by_role("row", name="Onboarding workshop")).to_contain_text("150.00 USD")
    expect(upcoming.get_by_role("row", name="Total 199.06 USD", exact=True)).to_be_visible()
    assert axe_violations(page) == []

    page.goto(f"/portal/invoices/{invoice.pk}/")
    expect(page.get_by_role("row", name="Gateway hardware")).to_contain_text("449.99 USD")
    assert axe_violations(page) == []

    page.get_by_role("button", name="简体中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.get_by_role("row", name="Gateway hardware")).to_contain_text("(一次性费用)")
    assert axe_violations(page) == []
