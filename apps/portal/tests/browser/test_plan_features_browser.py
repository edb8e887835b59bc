"""The plan picker shows what each plan grants (docs/entitlements.md), in English and Simplified
Chinese, on a desktop screen and on a phone, in a real browser (headless Chromium)."""

import pytest
from playwright.sync_api import expect

from apps.catalog.models import FeatureGrant
from apps.catalog.services import feature_create

from .conftest import axe_violations
from .test_portal_pages_browser import DESKTOP, LANGUAGES, PHONE, _open_in

pytestmark = pytest.mark.browser

TABLE = {
    "English": (
        ["Feature", "Pro", "Starter\n(your plan)"],
        [
            ["Audit log", "Included", "—\nNot included"],
            ["Seats", "Unlimited", "3"],
            ["Single sign-on", "Included", "Not included"],
            ["Support", "Priority, 24/7", "Email"],
        ],
    ),
    "简体中文": (
        ["功能", "Pro", "Starter\n（您当前的套餐）"],
        [
            ["Audit log", "包含", "—\n不包含"],
            ["Seats", "不限", "3"],
            ["Single sign-on", "包含", "不包含"],
            ["Support", "Priority, 24/7", "Email"],
        ],
    ),
}


def _grant(plan, feature, value):
    # The Starter plan has subscribers, so its grants are fixed for the services; test data sets them.
    FeatureGrant.objects.create(plan_version=plan.current_version, feature=feature, value=value)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_plan_picker_shows_what_each_plan_grants(page, world, language, viewport):
    seats = feature_create(code="seats", name="Seats", kind="limit")
    sso = feature_create(code="sso", name="Single sign-on", kind="boolean")
    support = feature_create(code="support", name="Support", kind="value")
    audit = feature_create(code="audit-log", name="Audit log", kind="boolean")
    for feature, starter, pro in [
        (seats, "3", "unlimited"),
        (sso, "false", "true"),
        (support, "Email", "Priority, 24/7"),
    ]:
        _grant(world.starter, feature, starter)
        _grant(world.pro, feature, pro)
    _grant(world.pro, audit, "true")
    _open_in(page, world.a.user, language=language, viewport=viewport)

    page.goto(f"/portal/subscriptions/{world.a.subscription.pk}/change/")

    table = page.get_by_test_id("plan-features")
    expect(table).to_be_visible()
    header, rows = TABLE[language]
    assert [text.strip() for text in table.locator("thead th").all_inner_texts()] == header
    assert [
        [text.strip() for text in row.locator("th, td").all_inner_texts()] for row in table.locator("tbody tr").all()
    ] == rows
    width = page.evaluate("() => ({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})")
    assert width["scroll"] <= width["inner"], width
    assert axe_violations(page) == []


def test_the_plan_picker_has_no_feature_table_when_no_plan_grants_anything(page, world):
    _open_in(page, world.a.user, language="English", viewport=DESKTOP)

    page.goto(f"/portal/subscriptions/{world.a.subscription.pk}/change/")

    expect(page.locator("#id_plan")).to_be_visible()
    expect(page.get_by_test_id("plan-features")).to_have_count(0)
