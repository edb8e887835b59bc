"""The admin's "Record a payment" page in a real browser (headless Chromium), in English and Simplified
Chinese, on a desktop screen and on a phone (390 px): its scripts run without an error, the date and
time fields have their calendar, clock, Today and Now shortcuts, and its fields are laid out as on
every other admin form."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from apps.payments.models import Payment
from apps.payments.tests.factories import make_customer, make_invoice

pytestmark = pytest.mark.browser

PASSWORD = "correct-horse-battery"  # UserFactory's
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# The admin speaks the browser's language.
LANGUAGES = {
    "en": {"locale": "en-GB", "today": "Today", "now": "Now", "record": "Record payment"},
    "zh-hans": {"locale": "zh-CN", "today": "今天", "now": "现在", "record": "记录付款"},
}


@pytest.fixture
def admin_page(browser, live_server, superuser, request):
    language, viewport = request.param
    context = browser.new_context(base_url=live_server.url, locale=LANGUAGES[language]["locale"], viewport=viewport)
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
    page.on("console", lambda message: _console_error(message, errors))
    page.goto("/admin/login/?next=/admin/")
    page.locator("#id_username").fill(superuser.username)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("input[type=submit]").click()
    expect(page.locator("#user-tools")).to_be_visible()
    yield page, LANGUAGES[language], errors
    context.close()


def _console_error(message, errors: list[str]) -> None:
    url = message.location.get("url") or ""
    # The browser's own request for /favicon.ico (the admin has none) is not the page's.
    if message.type == "error" and not url.endswith("/favicon.ico"):
        errors.append(f"{message.text} ({url})")


def _row_geometry(page, field: str) -> dict:
    """Where the label and the input of a field's row are, relative to the row."""
    return page.evaluate(
        """(field) => {
            const row = document.querySelector(`.form-row.field-${field}`);
            const label = row.querySelector('label').getBoundingClientRect();
            const input = row.querySelector('input, select').getBoundingClientRect();
            const box = row.getBoundingClientRect();
            return {label_x: label.left - box.left, input_x: input.left - box.left,
                    input_below_label: input.top >= label.bottom - 1,
                    fieldset: !!row.closest('fieldset.module.aligned')};
        }""",
        field,
    )


@pytest.mark.parametrize(
    "admin_page",
    [(language, viewport) for language in LANGUAGES for viewport in (DESKTOP, PHONE)],
    ids=["en-desktop", "en-phone", "zh-desktop", "zh-phone"],
    indirect=True,
)
def test_record_a_payment_has_the_date_shortcuts_and_the_admin_form_layout(admin_page):
    page, words, errors = admin_page
    customer = make_customer(name="Harbour Freight Ltd")
    make_invoice(customer, "100.00")

    page.goto(f"{reverse('admin:payments_payment_add')}?customer={customer.pk}")

    expect(page.locator("#id_amount")).to_be_visible()
    assert errors == []  # "gettext is not defined" was thrown here
    date_row = page.locator(".form-row.field-received_at")
    expect(date_row.get_by_role("link", name=words["today"], exact=True)).to_be_visible()
    expect(date_row.get_by_role("link", name=words["now"], exact=True)).to_be_visible()
    date_row.locator("a[id^=calendarlink]").click()
    expect(page.locator("#calendarbox0")).to_be_visible()  # the calendar opens
    page.keyboard.press("Escape")
    date_row.locator("a[id^=clocklink]").click()
    expect(page.locator("#clockbox0")).to_be_visible()
    page.keyboard.press("Escape")
    page.locator("#id_received_at_1").fill("")
    date_row.get_by_role("link", name=words["now"], exact=True).click()
    expect(page.locator("#id_received_at_1")).to_have_value(re.compile(r"^\d\d:\d\d(:\d\d)?$"))

    # Fields laid out as the admin lays out every form: compared with the customer's add form.
    record = _row_geometry(page, "amount")
    page.goto(reverse("admin:accounts_customer_add"))
    standard = _row_geometry(page, "name")
    assert record == standard
    assert errors == []


@pytest.mark.parametrize(
    "admin_page", [("en", DESKTOP), ("zh-hans", PHONE)], ids=["en-desktop", "zh-phone"], indirect=True
)
def test_record_a_payment_in_the_browser(admin_page):
    """The date and time as the page fills them in (in the browser's language's format) are read back."""
    page, words, errors = admin_page
    customer = make_customer(name="Harbour Freight Ltd")
    invoice = make_invoice(customer, "100.00")
    page.goto(f"{reverse('admin:payments_payment_add')}?customer={customer.pk}")

    page.locator("#id_amount").fill("100.00")
    page.locator("#id_reference").fill("SEPA 42")
    page.get_by_role("button", name=words["record"]).click()

    expect(page.locator(".messagelist .success")).to_be_visible()
    payment = Payment.objects.get()
    expect(page.locator(".messagelist .success")).to_contain_text(f"#{payment.pk}")
    assert (payment.reference, payment.amount.amount) == ("SEPA 42", Decimal("100.00"))
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    assert errors == []
