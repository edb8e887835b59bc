"""Portal pages laid out and answering as a customer expects, in a real browser (headless Chromium), in
English and Simplified Chinese, on a desktop screen and on a phone (390 px): the actions of a saved
card on the card's own row."""

import pytest
from playwright.sync_api import expect

from apps.payments.stripe.customers import stripe_payment_method_attach, stripe_setup_intent_create
from apps.payments.tests.stripe.helpers import CARD_DECLINED_AT_CHARGE, CARD_OK, setup_intent_confirm

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
