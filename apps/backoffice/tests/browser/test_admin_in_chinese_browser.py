"""The back office in Simplified Chinese, in a real browser (headless Chromium, 1280 px): a finance
admin picks 简体中文 from the admin's header (their browser asks for English), and the admin index with
the finance dashboard, the invoice list with its filters and a customer's page are then in Chinese,
with no English label left, amounts and dates written the Chinese way."""

import re

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from playwright.sync_api import expect

from apps.accounts.models import Customer, StaffPreference
from apps.accounts.roles import FINANCE_ADMIN
from apps.accounts.tests.factories import UserFactory
from apps.catalog.models import PlanVersion
from apps.catalog.tests.factories import PlanFactory, add_charge
from apps.invoices.tests.factories import make_draft_invoice, make_manual_invoice
from apps.payments.tests.factories import make_customer
from apps.reports.services import reports_refresh

pytestmark = pytest.mark.browser

PASSWORD = "correct-horse-battery"  # UserFactory's
DESKTOP = {"width": 1280, "height": 900}

# Labels each page shows in English; none may be left once the staff user chose Chinese.
ENGLISH_LABELS = {
    "index": [
        "Finance dashboard",
        "Active customers",
        "Logo churn",
        "Revenue churn",
        "Net revenue retention",
        "Deferred revenue",
        "Export CSV",
        "Figures",
        "MRR movements",
        "Invoiced and collected",
        "Revenue recognition",
        "Receivables aging",
        "Administration",
        "Customers",
        "Invoices",
        "Credit notes",
        "Subscriptions",
        "Payments",
        "Tax rates",
        "Billing runs",
        "Products",
        "Plans",
        "Coupons",
        "Billable metrics",
        "Usage events",
        "Apply",
        "Reset",
        "Log out",
        "Add",
        "View",
    ],
    "invoices": [
        "Select invoice to change",
        "Filter",
        "By status",
        "By currency",
        "By billing reason",
        "Overdue",
        "Not overdue",
        "Draft",
        "Open",
        "Number",
        "Customer",
        "Status",
        "Total",
        "Due on",
        "Amount due",
        "Action:",
        "Finalize: selected invoices",
        "Void: selected invoices",
        "Search",
        "All",
    ],
    "customer": [
        "Change customer",
        "Name",
        "Email",
        "Address",
        "Currency",
        "Country",
        "Tax ID",
        "Preferred language",
        "Billing contacts",
        "Receives invoices",
        "Collection method",
        "Payment terms days",
        "Invoice grouping",
        "Activity",
        "Save",
        "Save and continue editing",
        "Save and add another",
        "History",
        "Record a payment",
        "Delete",
        "subscription(s)",
        "invoice(s)",
        "credit balance",
    ],
}
# Words that stay as they are in Chinese: codes, acronyms, names from the test data.
KEPT = {
    "MRR",
    "ARR",
    "ARPA",
    "NRR",
    "CSV",
    "PDF",
    "UTC",
    "API",
    "URL",
    "ID",
    "SHA",
    "CNY",
    "USD",
    "EUR",
    "Stripe",
    "Webhook",
    "Billing",
    "Portal",
    "Lin",
    "Trading",
    "Consulting",
    "Platform",
    "fee",
    "Pro",
    "monthly",
}


def _text(page, selector: str = "body") -> str:
    return page.locator(selector).first.inner_text()


def _labels_left(page, labels: list[str]) -> list[str]:
    text = _text(page)
    return [label for label in labels if re.search(rf"(?<![\w]){re.escape(label)}(?![\w])", text)]


def _english_words(page) -> list[str]:
    """English words in the page's labels: headings, column heads, field labels, filters, buttons,
    the action menu and the header's links (customer data and codes aside)."""
    parts = page.evaluate(
        """() => Array.from(document.querySelectorAll(
            'h1, h2, h3, th, caption, label, legend, summary, #changelist-filter a, select[name=action] option, '
            + '.object-tools a, .object-tools button, .submit-row input, .submit-row a, #user-tools a, '
            + '#user-tools button, .fin-kpi .label, .fin-kpi .hint, .fin-card-head a, .breadcrumbs a'
        )).filter(e => e.offsetParent !== null || e.tagName === 'OPTION').map(e => e.innerText || e.value || '')"""
    )
    return sorted({part.strip() for part in parts if _english(part)})


def _english(text: str) -> set[str]:
    """Words of three letters or more, but currency codes ("CNY") and the words in KEPT."""
    kept = {word.lower() for word in KEPT}
    return {
        word
        for word in re.findall(r"[A-Za-z]{3,}", text)
        if not re.fullmatch(r"[A-Z]{3}", word) and word.lower() not in kept  # CSS may upper-case a heading
    }


@pytest.fixture
def finance_admin(db):
    user = UserFactory(username="wang.fang", first_name="Fang", is_staff=True)
    user.groups.add(Group.objects.get(name=FINANCE_ADMIN))
    return user


@pytest.fixture
def books(db, settings):
    settings.CURRENCIES = [*settings.CURRENCIES, "CNY"]  # a seller in China bills in yuan
    customer = make_customer(name="Lin Trading", currency="CNY", country="CN", preferred_language="zh-hans")
    make_manual_invoice(customer=customer, lines=[("Consulting", "1", "1234.50")])
    draft = make_draft_invoice()
    Customer.objects.filter(pk=draft.customer_id).update(name="上海云数科技有限公司")
    reports_refresh(full=True)
    return customer


@pytest.fixture
def page(browser, live_server, finance_admin):
    context = browser.new_context(base_url=live_server.url, locale="en-GB", viewport=DESKTOP)
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto("/admin/login/?next=/admin/")
    page.locator("#id_username").fill(finance_admin.username)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("input[type=submit]").click()
    expect(page.locator("#user-tools")).to_be_visible()
    yield page
    context.close()
    assert errors == []


def test_a_finance_admin_who_chose_chinese_sees_the_back_office_in_chinese(page, finance_admin, books):
    # The browser asks for English: the admin speaks English until the user chooses.
    assert page.locator("html").get_attribute("lang") == "en"
    expect(page.locator("h1")).to_have_text("Finance dashboard")

    page.locator("[data-testid=staff-language]").click()
    page.get_by_label("简体中文").check()
    page.locator("input[type=submit]").click()

    # Back on the page they came from, in Chinese, and so on every admin page from now on.
    expect(page).to_have_url(re.compile(r"/admin/$"))
    assert StaffPreference.objects.get(user=finance_admin).language == "zh-hans"
    assert page.locator("html").get_attribute("lang") == "zh-hans"

    # The admin index: the finance dashboard and the app list.
    expect(page.locator("h1")).to_have_text("财务仪表板")
    assert "活跃客户" in _text(page, ".fin-kpis")
    assert "导出 CSV" in _text(page, ".fin-grid")
    assert "发票" in _text(page, "#admin-sections") and "贷项通知单" in _text(page, "#admin-sections")
    assert "语言: 简体中文" in _text(page, "#user-tools") or "语言：简体中文" in _text(page, "#user-tools")
    assert _labels_left(page, ENGLISH_LABELS["index"]) == []
    left = _english_words(page)
    assert left == [], "\n".join(left)

    # The invoice list with its filters.
    page.goto(reverse("admin:invoices_invoice_changelist"))
    expect(page.locator("#changelist-filter")).to_be_visible()
    filters = _text(page, "#changelist-filter")
    assert "状态" in filters and "草稿" in filters and "已逾期" in filters
    assert "¥1,234.50" in _text(page, "#result_list")
    page.locator("#changelist-filter").get_by_role("link", name="草稿").click()
    expect(page).to_have_url(re.compile(r"status__exact=draft"))
    assert _labels_left(page, ENGLISH_LABELS["invoices"]) == []
    left = _english_words(page)
    assert left == [], "\n".join(left)

    # A customer's page.
    page.goto(reverse("admin:accounts_customer_change", args=[books.pk]))
    expect(page.locator("h1")).to_have_text("修改 客户")
    content = _text(page, "#content")
    assert "账单联系人" in content and "税号" in content and "首选语言" in content
    assert "¥0.00" in content, re.findall(
        r".{0,30}账户余额.{0,30}|.{0,20}CNY.{0,20}", content
    )  # the credit balance, as the portal writes yuan
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日", content)  # dates the Chinese way
    assert _labels_left(page, ENGLISH_LABELS["customer"]) == []
    left = _english_words(page)
    assert left == [], "\n".join(left)


def test_the_price_calculator_computes_as_you_type_in_chinese(page, finance_admin):
    plan = PlanFactory(prices=[])
    version = PlanVersion.objects.create(plan=plan, number=1)
    price = add_charge(
        version, name="API calls", price_model="graduated",
        tiers=[("5", "7", "0"), ("10", "6.5", "0"), (None, "6", "0")],
    )  # fmt: skip
    StaffPreference.objects.create(user=finance_admin, language="zh-hans")

    page.goto(reverse("admin:catalog_price_change", args=[price.pk]))
    expect(page.locator("#price-calculator h2")).to_have_text("价格计算器")
    page.locator("#calculator-quantity").fill("12")

    result = page.locator("#calculator-result")
    expect(result.locator("thead")).to_contain_text("计算方式")  # drawn by the page's script
    expect(result).to_contain_text("精确金额")
    expect(result).to_contain_text("金额 （精确值 79.5，仅取整一次）")
    assert not _english(_text(page, "#calculator-result thead")), _text(page, "#calculator-result")
