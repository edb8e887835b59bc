"""The admin in a real browser (headless Chromium), in English and Simplified Chinese, on a desktop
screen and on a phone (390 px): every amount in one format (the one of the bills and the portal,
docs/money.md), a money field next to a computed one; quantities without their stored trailing zeros;
the audit trail naming fields by their labels."""

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from apps.accounts.services import customer_update
from apps.accounts.tests.factories import CustomerFactory
from apps.invoices.tests.factories import make_manual_invoice

pytestmark = pytest.mark.browser

PASSWORD = "correct-horse-battery"  # UserFactory's
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
LANGUAGES = {
    "en": {"locale": "en-GB", "total": "75.00 EUR", "paid": "0.00 EUR", "due": "75.00 EUR"},
    "zh-hans": {"locale": "zh-CN", "total": "€75.00", "paid": "€0.00", "due": "€75.00"},
}


@pytest.fixture
def admin_page(browser, live_server, superuser, request):
    language, viewport = request.param
    context = browser.new_context(base_url=live_server.url, locale=LANGUAGES[language]["locale"], viewport=viewport)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/admin/login/?next=/admin/")
    page.locator("#id_username").fill(superuser.username)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("input[type=submit]").click()
    expect(page.locator("#user-tools")).to_be_visible()
    yield page, LANGUAGES[language]
    context.close()


PARAMS = [
    pytest.param((language, viewport), id=f"{language}-{name}")
    for language in LANGUAGES
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE))
]


@pytest.mark.parametrize("admin_page", PARAMS, indirect=True)
def test_amounts_read_one_way_and_quantities_without_trailing_zeros(admin_page):
    page, expected = admin_page
    customer = CustomerFactory(name="Format GmbH", currency="EUR", country="US")
    invoice = make_manual_invoice(customer=customer, lines=[("Seats", "3", "75.00")])
    assert (invoice.total.amount, invoice.lines.get().quantity) == (Decimal("75.00"), Decimal("3.000000"))

    page.goto("/admin/invoices/invoice/")
    row = page.locator("#result_list tbody tr").filter(has_text=invoice.number)
    # The money field (total) and the computed columns (paid, due) read alike.
    assert row.locator("td.field-total").inner_text().strip() == expected["total"]
    assert row.locator("td.field-amount_paid_column").inner_text().strip() == expected["paid"]
    assert row.locator("td.field-amount_due_column").inner_text().strip() == expected["due"]

    page.goto(f"/admin/invoices/invoice/{invoice.pk}/change/")
    line = page.locator("tr.form-row").filter(has_text="Seats")
    assert line.locator("td.field-quantity").inner_text().strip() == "3"
    assert line.locator("td.field-amount").inner_text().strip() == expected["total"]
    assert page.locator(".field-total .readonly").inner_text().strip() == expected["total"]


@pytest.mark.parametrize("admin_page", PARAMS, indirect=True)
def test_the_audit_trail_names_fields_by_their_labels(admin_page):
    page, _ = admin_page
    customer = CustomerFactory(name="Label Ltd", payment_terms_days=None)
    customer_update(customer_id=customer.pk, payment_terms_days=30, preferred_language="zh-hans")

    page.goto(f"/admin/auditlog/logentry/?model=accounts.customer&object_id={customer.pk}")
    details = page.locator("table").filter(has_text="Label Ltd").first.inner_text()
    # The labels in the staff user's language (the back office in Chinese translates them).
    labels = ("Payment terms days: None → 30", "Payment terms: None → 30", "付款期限（天）: None → 30")
    assert any(text in details for text in labels), details
    assert "Preferred language: en → zh-hans" in details or "首选语言: en → zh-hans" in details, details
    assert "payment_terms_days" not in details and "preferred_language" not in details
