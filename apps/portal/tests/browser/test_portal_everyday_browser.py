"""The portal for everyday use, in a real browser (headless Chromium), in English and Simplified
Chinese, on a desktop screen and on a phone (390 px): the payment history with a receipt per payment
received, and a paid invoice saying when and how it was paid."""

import re
import subprocess
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import stripe
from playwright.sync_api import expect
from pypdf import PdfReader

from apps.accounts.models import Customer, SimulatedClock
from apps.billing.constants import ChangeTiming
from apps.billing.services import subscription_cancel, subscription_change
from apps.payments.services import payment_record_manual
from apps.payments.stripe.customers import stripe_payment_method_attach, stripe_setup_intent_create
from apps.payments.stripe.pay_now import invoice_pay_now
from apps.payments.tests.stripe.helpers import stripe_options
from apps.subscriptions.periods import utc
from apps.subscriptions.services import subscription_scheduled_change_cancel

from .conftest import axe_violations
from .test_portal_pages_browser import DESKTOP, LANGUAGES, PHONE, _add_card, _open_in

pytestmark = pytest.mark.browser

ZH = "简体中文"


def _pdf_pages(path) -> list[str]:
    """Each page's text as `pdftotext -layout` lays it out."""
    return [
        subprocess.run(
            ["pdftotext", "-layout", "-f", str(number), "-l", str(number), str(path), "-"],  # noqa: S607
            check=True, capture_output=True, text=True,
        ).stdout
        for number in range(1, len(PdfReader(path).pages) + 1)
    ]  # fmt: skip


def _no_sideways_scroll(page) -> None:
    width = page.evaluate("() => ({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})")
    assert width["scroll"] <= width["inner"], width


def _cells_on_screen(page, row) -> None:
    """Every cell of the row lies within the screen's width (nothing cut off, nothing to scroll to)."""
    inner = page.evaluate("() => window.innerWidth")
    for box in row.locator("th, td").evaluate_all("cells => cells.map(c => c.getBoundingClientRect().toJSON())"):
        assert box["left"] >= -0.5 and box["right"] <= inner + 0.5, box


# --- Payment history and receipts ----------------------------------------------------------------------

PAYMENTS = {
    "English": {
        "card": ["16 Mar 2026", "39.00 USD", "Visa •••• 4242, expires 12/2034", "{invoice}", "Succeeded"],
        "manual": ["10 Mar 2026", "20.00 USD", "Bank transfer", "—", "Succeeded"],
        "receipt": "Receipt {number}",
        "paid_on": "16 Mar 2026",
        "paid_with": "Visa •••• 4242, expires 12/2034 (39.00 USD) Receipt {number}",
        "pdf": ["RECEIPT", "{number}", "Alpha Labs", "16 Mar 2026", "Visa •••• 4242, expires 12/2034",
                "Invoice {invoice}", "39.00 USD", "We received 39.00 USD on 16 Mar 2026.", "Page 1 of 1"],
        "pdf_manual": ["Bank transfer", "Credited to your balance", "20.00 USD", "Reference: SEPA-2026-03-10"],
    },
    ZH: {
        "card": ["2026年3月16日", "US$39.00", "Visa •••• 4242，有效期至 12/2034", "{invoice}", "成功"],
        "manual": ["2026年3月10日", "US$20.00", "银行转账", "—", "成功"],
        "receipt": "收据 {number}",
        "paid_on": "2026年3月16日",
        "paid_with": "Visa •••• 4242，有效期至 12/2034 (US$39.00) 收据 {number}",
        "pdf": ["收据", "{number}", "Alpha Labs", "2026年3月16日", "Visa •••• 4242，有效期至 12/2034",
                "发票 {invoice}", "US$39.00", "我们已于 2026年3月16日 收到 US$39.00。", "第 1 页，共 1 页"],
        "pdf_manual": ["银行转账", "已记入您的余额", "US$20.00", "参考号：SEPA-2026-03-10"],
    },
}  # fmt: skip


def _paid_by_card_and_transfer(world):
    """Customer A: 20.00 USD by bank transfer on 10 March (nothing was due then but the open invoice,
    paid separately: it goes to the balance), then its invoice (39.00 USD due) paid by card on 16 March."""
    customer = world.a.customer
    manual = payment_record_manual(
        customer_id=customer.pk, amount=Decimal("20.00"), currency="USD", method="bank_transfer",
        reference="SEPA-2026-03-10", received_at=utc(2026, 3, 10, 9), allocations=[],
    )  # fmt: skip
    _add_card(customer, "4242424242424242")
    card = invoice_pay_now(customer_id=customer.pk, invoice_id=world.a.invoice.pk, request_key="k1")
    assert (card.status, card.amount.amount) == ("succeeded", Decimal("39.00"))
    return card, manual


def _receipt_text(page, link, tmp_path) -> list[str]:
    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    assert path.read_bytes()[:5] == b"%PDF-"
    return _pdf_pages(path)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_payment_history_lists_each_payment_with_a_receipt(page, world, localstripe, language, viewport, tmp_path):
    card, manual = _paid_by_card_and_transfer(world)
    if language == ZH:  # receipts are written in the customer's language, as its bills are
        Customer.objects.filter(pk=world.a.customer.pk).update(preferred_language="zh-hans")
    expected = PAYMENTS[language]
    number = f"R-{card.pk:06d}"
    _open_in(page, world.a.user, language=language, viewport=viewport)

    page.goto("/portal/payments/")
    rows = {"card": page.get_by_test_id(f"payment-{card.pk}"), "manual": page.get_by_test_id(f"payment-{manual.pk}")}
    expect(page.locator("tbody tr")).to_have_count(2)  # B's payments are not A's business
    for kind, row in rows.items():
        cells = [text.strip() for text in row.locator("th, td").all_inner_texts()][:5]
        # On a phone each cell starts with its column's name (CSS): only the value is compared.
        want = [value.format(invoice=world.a.invoice.number) for value in expected[kind]]
        assert [cell.split("\n")[-1].strip() if viewport == PHONE else cell for cell in cells] == want, cells
        _cells_on_screen(page, row)
    _no_sideways_scroll(page)
    assert axe_violations(page) == []

    link = rows["card"].get_by_role("link", name=expected["receipt"].format(number=number))
    pages = _receipt_text(page, link, tmp_path)
    assert len(pages) == 1
    for text in expected["pdf"]:
        assert text.format(number=number, invoice=world.a.invoice.number) in pages[0], (text, pages[0])
    manual_number = f"R-{manual.pk:06d}"
    link = rows["manual"].get_by_role("link", name=expected["receipt"].format(number=manual_number))
    pages = _receipt_text(page, link, tmp_path)
    assert len(pages) == 1
    for text in expected["pdf_manual"]:
        assert text in pages[0], (text, pages[0])

    # The paid invoice says when and how it was paid, with the receipt.
    rows["card"].get_by_role("link", name=world.a.invoice.number).click()
    expect(page.get_by_test_id("invoice-paid-on")).to_have_text(expected["paid_on"])
    expect(page.get_by_test_id("invoice-paid-with")).to_have_text(expected["paid_with"].format(number=number))
    _no_sideways_scroll(page)
    assert axe_violations(page) == []


def test_a_receipt_is_only_for_the_customers_own_payments_received(page, world, localstripe):
    card, _ = _paid_by_card_and_transfer(world)
    _open_in(page, world.b.user, language="English", viewport=DESKTOP)
    assert page.goto(f"/portal/payments/{card.pk}/receipt/").status == 404  # A's payment, seen from B
    page.goto("/portal/payments/")
    expect(page.get_by_text("No payments yet.")).to_be_visible()
    assert page.goto("/portal/payments/abc/receipt/").status == 404


# --- Overdue invoices and Pay beside the amount due --------------------------------------------------

OVERDUE = {
    "English": {"overdue": "Overdue by 6 days", "open": "Open", "due": "39.00 USD", "pay": "Pay"},
    ZH: {"overdue": "逾期 6 天", "open": "待付款", "due": "US$39.00", "pay": "支付"},
}


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_an_overdue_invoice_says_so_with_pay_beside_the_amount_due(page, world, localstripe, language, viewport):
    """A's invoice (39.00 USD due) is due on 15 March; on 21 March it is 6 days overdue: the overview
    and the invoice list say so instead of "Open", with Pay beside the amount due; Pay opens the payment
    of that invoice. On its due date it reads "Open"."""
    expected = OVERDUE[language]
    invoice = world.a.invoice
    assert invoice.due_on == date(2026, 3, 15)
    SimulatedClock.objects.filter(pk=world.a.customer.test_clock_id).update(frozen_at=utc(2026, 3, 21, 9))
    _add_card(world.a.customer, "4242424242424242")
    _open_in(page, world.a.user, language=language, viewport=viewport)

    expect(page.get_by_test_id("amount-due")).to_have_text(expected["due"])
    expect(page.get_by_test_id("overdue")).to_have_text(expected["overdue"])
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=invoice.number, exact=True))
    expect(row.get_by_test_id("invoice-status")).to_have_text(expected["overdue"])
    expect(row.get_by_test_id(f"amount-due-{invoice.number}")).to_contain_text(expected["due"])
    _no_sideways_scroll(page)
    assert axe_violations(page) == []
    tile = page.locator(".tile").filter(has=page.get_by_test_id("amount-due"))
    tile.get_by_role("link", name=expected["pay"], exact=True).click()
    expect(page).to_have_url(re.compile(rf"/portal/invoices/{invoice.pk}/pay/$"))

    page.goto("/portal/invoices/")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=invoice.number, exact=True))
    expect(row.get_by_test_id("invoice-status")).to_have_text(expected["overdue"])
    pay = row.get_by_role("link", name=f"{expected['pay']} {invoice.number}")
    expect(pay).to_be_visible()
    _no_sideways_scroll(page)
    assert axe_violations(page) == []
    pay.click()
    expect(page).to_have_url(re.compile(rf"/portal/invoices/{invoice.pk}/pay/$"))

    page.goto(f"/portal/invoices/{invoice.pk}/")
    expect(page.get_by_test_id("invoice-status")).to_have_text(expected["overdue"])

    SimulatedClock.objects.filter(pk=world.a.customer.test_clock_id).update(frozen_at=utc(2026, 3, 15, 23))
    page.goto("/portal/invoices/")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=invoice.number, exact=True))
    expect(row.get_by_test_id("invoice-status")).to_have_text(expected["open"])
    expect(row.get_by_role("link", name=f"{expected['pay']} {invoice.number}")).to_be_visible()
    page.goto("/portal/")
    expect(page.get_by_test_id("overdue")).to_have_count(0)


# --- Scheduled changes on the overview ---------------------------------------------------------------

SCHEDULED = {
    "English": {"change": "Changes to Cloud — Pro × 2 on 1 Apr 2026", "ends": "Ends on 1 Apr 2026"},
    ZH: {"change": "将于 2026年4月1日 变更为 Cloud — Pro × 2", "ends": "将于 2026年4月1日 终止"},
}


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_overview_shows_a_scheduled_change_and_a_scheduled_end_with_their_dates(page, world, language, viewport):
    """A plan change scheduled for the period's end (1 April) is on the overview with its date; once
    the subscription is set to end instead, the overview says when it ends and no change is shown."""
    subscription_change(
        subscription_id=world.a.subscription.pk, plan=world.pro, quantity=2, timing=ChangeTiming.PERIOD_END
    )
    _open_in(page, world.a.user, language=language, viewport=viewport)
    expect(page.get_by_test_id("scheduled-change")).to_have_text(SCHEDULED[language]["change"])
    expect(page.get_by_test_id("ends-on")).to_have_count(0)
    _no_sideways_scroll(page)
    assert axe_violations(page) == []

    subscription_scheduled_change_cancel(subscription_id=world.a.subscription.pk)
    subscription_cancel(subscription_id=world.a.subscription.pk, when=ChangeTiming.PERIOD_END)
    page.reload()
    expect(page.get_by_test_id("ends-on")).to_have_text(SCHEDULED[language]["ends"])
    expect(page.get_by_test_id("scheduled-change")).to_have_count(0)


# --- Tables on a phone ----------------------------------------------------------------------------------


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_invoice_tables_show_every_column_and_dates_on_one_line(page, world, language, viewport):
    """On the overview and the invoice list, every cell of every invoice and credit note row (Total and
    PDF included) lies within the screen, nothing to scroll sideways to; each date stays on one line
    (Chinese dates used to break character by character in a squeezed column)."""
    _open_in(page, world.a.user, language=language, viewport=viewport)
    for path in ["/portal/", "/portal/invoices/"]:
        page.goto(path)
        rows = page.locator("main table tbody tr")
        expect(rows.first).to_be_visible()
        for index in range(rows.count()):
            _cells_on_screen(page, rows.nth(index))
        name = f"下载 {world.a.invoice.number}" if language == ZH else f"Download {world.a.invoice.number}"
        pdf = page.get_by_role("link", name=name).first.bounding_box()
        assert pdf["x"] >= 0 and pdf["x"] + pdf["width"] <= viewport["width"], pdf
        # The issue and due dates of each invoice row: the lines their text takes.
        lines = rows.evaluate_all(
            """rows => rows.filter(row => row.cells.length === 7).flatMap(row => [1, 2].map(i => {
                const walker = document.createTreeWalker(row.cells[i], NodeFilter.SHOW_TEXT);
                const tops = new Set();
                while (walker.nextNode()) {
                    const range = document.createRange();
                    range.selectNodeContents(walker.currentNode);
                    [...range.getClientRects()].forEach(r => tops.add(Math.round(r.top)));
                }
                return [row.cells[i].textContent.trim(), tops.size];
            }))"""
        )
        assert lines and all(count == 1 for _, count in lines), lines
        _no_sideways_scroll(page)
        assert axe_violations(page) == []


# --- Two cards of the same brand and last digits --------------------------------------------------------


def _add_card_expiring(customer, *, month: int, year: int) -> None:
    """A Visa •••• 4242 with its own expiry, added as the browser does (SetupIntent confirmed)."""
    intent = stripe_setup_intent_create(customer_id=customer.pk)
    card = stripe.PaymentMethod.create(
        type="card", card={"number": "4242424242424242", "exp_month": month, "exp_year": year, "cvc": "123"},
        **stripe_options(),
    )  # fmt: skip
    stripe.SetupIntent.confirm(intent["id"], payment_method=card["id"], **stripe_options())
    stripe_payment_method_attach(customer_id=customer.pk, setup_intent_id=intent["id"])


CARDS = {
    "English": {
        "added": "{d.day} {d:%b} {d.year}",
        "default": "Default",
        "remove": "Remove: Visa •••• 4242, expires {exp}, added {added}",
        "make_default": "Make default: Visa •••• 4242, expires 06/2030, added {added}",
        "pay_with": "Visa •••• 4242, expires {exp}, added {added}",
    },
    ZH: {
        "added": "{d.year}年{d.month}月{d.day}日",
        "default": "默认",
        "remove": "移除: Visa •••• 4242，有效期至 {exp}，添加于 {added}",
        "make_default": "设为默认: Visa •••• 4242，有效期至 06/2030，添加于 {added}",
        "pay_with": "Visa •••• 4242，有效期至 {exp}，添加于 {added}",
    },
}


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_two_visa_4242_cards_are_told_apart(page, world, localstripe, language, viewport):
    """Two saved cards both "Visa •••• 4242": each row shows its expiry, the date it was added and
    which is the default; each action names its own card; the payment page tells them apart too."""
    _add_card_expiring(world.a.customer, month=12, year=2034)  # the first card: the default
    _add_card_expiring(world.a.customer, month=6, year=2030)
    expected = CARDS[language]
    added = expected["added"].format(d=datetime.now(tz=UTC).date())  # Stripe stamps a card with real time
    _open_in(page, world.a.user, language=language, viewport=viewport)

    page.goto("/portal/payment-methods/")
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(2)
    texts = [[cell.strip() for cell in row.locator("td").all_inner_texts()[:3]] for row in rows.all()]
    assert texts == [
        [f"Visa •••• 4242 {expected['default']}", "12/2034", added],
        ["Visa •••• 4242", "06/2030", added],
    ], texts
    buttons = page.locator("td.actions button")
    names = [button.evaluate("b => b.textContent.trim()") for button in buttons.all()]
    assert names == [
        expected["remove"].format(exp="12/2034", added=added),
        expected["make_default"].format(added=added),
        expected["remove"].format(exp="06/2030", added=added),
    ], names
    _no_sideways_scroll(page)
    assert axe_violations(page) == []

    page.goto(f"/portal/invoices/{world.a.invoice.pk}/pay/")
    labels = [text.strip() for text in page.locator("fieldset label").all_inner_texts()]
    assert labels == [
        f"{expected['pay_with'].format(exp='12/2034', added=added)} {expected['default']}",
        expected["pay_with"].format(exp="06/2030", added=added),
    ], labels
    _no_sideways_scroll(page)
