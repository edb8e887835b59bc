"""Setting a budget in the portal, in a real browser (headless Chromium), in English and Simplified
Chinese: a refused amount announced at the top, then the budget saved and listed; the page passes the
accessibility checks."""

import pytest
from playwright.sync_api import expect

from apps.alerts.models import Alert

from .conftest import axe_violations
from .test_portal_pages_browser import _open_in

pytestmark = pytest.mark.browser

TEXT = {
    "English": {
        "nav": "Budgets",
        "watch": "What to watch",
        "spend": "Spend this period (USD)",
        "at": "Warn me at",
        "limit": "The highest amount is a hard limit",
        "save": "Save budget",
        "refused": "Your budget is not saved",
        "error": "Each threshold must be a number above zero (got -5).",
        "saved": "Your budget is saved: we email your billing contacts when it is reached.",
        "usage": "Usage: API calls",
    },
    "简体中文": {
        "nav": "预算",
        "watch": "监控内容",
        "spend": "本期支出（USD）",
        "at": "提醒阈值",
        "limit": "最高数值为硬性上限",
        "save": "保存预算",
        "refused": "您的预算未保存",
        "error": "每个阈值必须是大于零的数字（收到的是 -5）。",
        "saved": "您的预算已保存：达到时我们会发邮件通知您的账单联系人。",
        "usage": "用量：API calls",
    },
}


@pytest.mark.parametrize("language", list(TEXT))
def test_a_customer_sets_a_budget(page, world, language):
    text = TEXT[language]
    _open_in(page, world.a.user, language=language, viewport={"width": 1280, "height": 800})

    page.get_by_role("navigation", name="Main" if language == "English" else "主导航").get_by_role(
        "link", name=text["nav"]
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(text["nav"])
    assert axe_violations(page) == []

    page.get_by_label(text["watch"]).select_option(label=text["spend"])
    page.get_by_label(text["at"]).fill("-5")
    page.get_by_role("button", name=text["save"]).click()
    summary = page.get_by_role("alert").filter(has_text=text["refused"])
    expect(summary).to_be_focused()
    expect(summary).to_contain_text(text["error"])
    assert Alert.objects.count() == 0

    page.get_by_label(text["watch"]).select_option(label=text["usage"])
    page.get_by_label(text["at"]).fill("100, 50")
    page.get_by_label(text["limit"]).check()
    page.get_by_role("button", name=text["save"]).click()

    expect(page.get_by_text(text["saved"])).to_be_visible()
    budget = Alert.objects.get()
    row = page.get_by_test_id(f"budget-{budget.pk}")
    expect(row).to_contain_text(text["usage"])
    expect(row).to_contain_text("50, 100")
    assert (budget.kind, budget.metric.code, budget.thresholds, budget.is_hard_limit, budget.origin) == (
        "usage", "api_calls", ["50", "100"], True, "customer",
    )  # fmt: skip
    assert axe_violations(page) == []
