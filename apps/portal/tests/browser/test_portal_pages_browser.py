"""Portal pages laid out and answering as a customer expects, in a real browser (headless Chromium), in
English and Simplified Chinese, on a desktop screen and on a phone (390 px): the actions of a saved
card on the card's own row; billing details refused with the reason at the top, where the focus goes;
the plan picker with each plan's price and interval."""

import re

import pytest
from djmoney.money import Money
from playwright.sync_api import expect

from apps.accounts.models import Customer
from apps.accounts.services import customer_update
from apps.catalog.tests.factories import PlanFactory
from apps.payments.stripe.customers import stripe_payment_method_attach, stripe_setup_intent_create
from apps.payments.tests.stripe.helpers import CARD_DECLINED_AT_CHARGE, CARD_OK, setup_intent_confirm
from apps.portal.selectors import portal_configuration

from .conftest import axe_violations
from .test_portal_browser import _sign_in

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
LANGUAGES = ["English", "简体中文"]


def _open_in(page, user, *, language: str, viewport: dict) -> None:
    page.set_viewport_size(viewport)
    _sign_in(page, user)
    if language != "English":
        page.get_by_role("button", name=language).click()
        expect(page.locator("html")).to_have_attribute("lang", "zh-hans")


def _add_card(customer, number: str) -> None:
    intent = stripe_setup_intent_create(customer_id=customer.pk)
    setup_intent_confirm(intent["id"], number)
    stripe_payment_method_attach(customer_id=customer.pk, setup_intent_id=intent["id"], make_default=True)


# --- Payment methods ------------------------------------------------------------------------------


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_cards_actions_sit_on_the_cards_row(page, world, localstripe, language, viewport):
    """Each action link starts on the first line of its row, level with the card's name (they sat a
    margin's height below it), and the actions cell fills the row like its other cells."""
    _add_card(world.a.customer, CARD_DECLINED_AT_CHARGE)
    _add_card(world.a.customer, CARD_OK)  # the default; the other card offers both actions
    _open_in(page, world.a.user, language=language, viewport=viewport)

    page.goto("/portal/payment-methods/")

    rows = page.evaluate(
        """() => [...document.querySelectorAll('tr[data-testid^="card-"]')].map(row => {
            const text = document.createRange();
            text.selectNodeContents(row.cells[0]);
            const actions = row.querySelector('td.actions');
            return {
                card: row.dataset.testid,
                row: row.getBoundingClientRect().toJSON(),
                cell: actions.getBoundingClientRect().toJSON(),
                text: text.getClientRects()[0].toJSON(),
                buttons: [...actions.querySelectorAll('button')].map(b => b.getBoundingClientRect().toJSON()),
            };
        })"""
    )
    assert [(row["card"], len(row["buttons"])) for row in rows] == [("card-4242", 1), ("card-0341", 2)]
    for row in rows:
        assert abs(row["cell"]["top"] - row["row"]["top"]) < 1, row
        assert abs(row["cell"]["bottom"] - row["row"]["bottom"]) < 1, row
        first = row["buttons"][0]
        assert abs(first["top"] - row["text"]["top"]) <= 2, row  # on the line of the card's name
    assert axe_violations(page) == []


# --- Billing details ------------------------------------------------------------------------------

REFUSED = {
    "English": {
        "summary": "Your billing details are not saved",
        "error": "Tax ID: DE123 is not a VAT number of Germany",
    },
    "简体中文": {"summary": "您的账单信息未保存", "error": "税号：DE123 不是有效的德国的增值税号"},
}


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_refused_tax_id_is_announced_at_the_top_without_the_saved_ones_badge(page, world, language, viewport):
    """The save fails on a bad tax ID: a summary at the top says so and takes the focus (and the view),
    its link leads to the field; the saved tax ID's "Valid" badge is not shown beside the refused one."""
    customer_update(customer_id=world.a.customer.pk, country="DE", tax_id="DE136695976")  # valid
    _open_in(page, world.a.user, language=language, viewport=viewport)
    page.goto("/portal/billing/")
    expect(page.get_by_text(re.compile(r"DE136695976 \(\S"))).to_be_visible()  # the saved one, and its status

    page.locator("#id_tax_id").fill("DE123")
    page.locator("form.card button[type=submit]").click()

    summary = page.get_by_role("alert").filter(has_text=REFUSED[language]["summary"])
    expect(summary).to_be_focused()
    expect(summary).to_be_in_viewport()
    expect(page.get_by_text(re.compile(r"DE136695976 \(\S"))).to_have_count(0)  # no stale badge
    assert axe_violations(page) == []
    summary.get_by_role("link", name=re.compile(REFUSED[language]["error"])).click()
    expect(page.locator("#id_tax_id")).to_be_focused()
    expect(page.locator("#id_tax_id")).to_have_value("DE123")
    assert Customer.objects.get(pk=world.a.customer.pk).tax_id == "DE136695976"


# --- Plan picker ----------------------------------------------------------------------------------

PLAN_OPTIONS = {
    "English": [
        "Cloud — Pro · 99.00 USD per unit · monthly",
        "Cloud — Pro · 990.00 USD per unit · yearly",
        "Cloud — Starter · 49.00 USD per unit · monthly, plus usage",
    ],
    "简体中文": [
        "Cloud — Pro · 每单位 US$99.00 · 按月",
        "Cloud — Pro · 每单位 US$990.00 · 按年",
        "Cloud — Starter · 每单位 US$49.00 · 按月，另计用量费",
    ],
}


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_plan_picker_shows_each_plans_price_and_interval(page, world, language, viewport):
    """A plan sold monthly and yearly under one name: each option says how often it bills and what,
    in the customer's currency, formatted for the reader's language (usage charged on top said too)."""
    yearly = PlanFactory(product=world.pro.product, name="Pro", interval="year", prices=[Money("990.00", "USD")])
    portal_configuration().allowed_plans.add(yearly)
    _open_in(page, world.a.user, language=language, viewport=viewport)

    page.goto(f"/portal/subscriptions/{world.a.subscription.pk}/change/")

    plan = page.locator("#id_plan")
    assert [text.strip() for text in plan.locator("option").all_inner_texts()] == PLAN_OPTIONS[language]
    expect(plan).to_have_value(str(world.starter.pk))  # the subscription's own plan, chosen
    width = page.evaluate("() => ({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})")
    assert width["scroll"] <= width["inner"], width
    assert axe_violations(page) == []
