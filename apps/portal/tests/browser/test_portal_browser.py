"""The portal in a real browser (headless Chromium): sign in, the dashboard, a PDF download, a plan
change after reading its preview, cancel and resume, a bad tax ID refused, Simplified Chinese; and
axe-core finds no serious or critical accessibility violation on the main pages."""

import re

import pytest
from playwright.sync_api import expect

from apps.accounts.credentials import portal_token_create
from apps.accounts.models import Customer
from apps.subscriptions.models import Subscription

from ..conftest import PASSWORD
from .conftest import axe_violations

pytestmark = pytest.mark.browser


def _sign_in(page, user):
    page.goto("/portal/")
    expect(page).to_have_url(re.compile(r"/portal/login/\?next=/portal/$"))
    assert axe_violations(page) == []
    page.get_by_label("Username or email").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(user.memberships.get().customer.name)


def test_sign_in_dashboard_invoices_and_pdf(page, world):
    _sign_in(page, world.a.user)
    expect(page.get_by_test_id("next-invoice")).to_have_text("Next invoice on 1 Apr 2026: 49.06 USD")
    expect(page.get_by_test_id("amount-due")).to_have_text("39.00 USD")
    expect(page.get_by_role("img", name="API calls per day, from 1 Mar 2026: peak 3")).to_be_visible()
    assert axe_violations(page) == []

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Invoices").click()
    expect(page.get_by_role("heading", name="Invoices", level=1)).to_be_visible()
    assert axe_violations(page) == []
    expect(page.get_by_text(world.b.invoice.number)).to_have_count(0)
    with page.expect_download() as download_info:
        page.get_by_role("link", name=f"Download {world.a.invoice.number}").click()
    download = download_info.value
    assert download.suggested_filename == f"{world.a.invoice.number}.pdf"
    with open(download.path(), "rb") as pdf:
        assert pdf.read(5) == b"%PDF-"

    page.get_by_role("rowheader").get_by_role("link", name=world.a.invoice.number, exact=True).click()
    expect(page.get_by_test_id("invoice-amount-due")).to_have_text("39.00 USD")
    assert axe_violations(page) == []


def test_change_plan_after_reading_the_preview(page, world):
    _sign_in(page, world.a.user)
    page.get_by_role("link", name="Manage subscription").click()
    assert axe_violations(page) == []
    page.get_by_role("link", name="Change plan or quantity").click()
    page.get_by_label("Plan").select_option(label="Cloud — Pro · 99.00 USD per unit · monthly")
    page.get_by_role("button", name="Preview the change").click()
    expect(page.get_by_test_id("preview-total")).to_have_text("25.81 USD")
    assert axe_violations(page) == []
    assert Subscription.objects.get(pk=world.a.subscription.pk).plan_id == world.starter.pk
    page.get_by_role("button", name="Confirm the change").click()
    expect(page.get_by_text("Your subscription is changed.")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("Cloud — Pro")
    assert Subscription.objects.get(pk=world.a.subscription.pk).plan_id == world.pro.pk


def test_cancel_then_resume(page, world):
    _sign_in(page, world.a.user)
    page.get_by_role("link", name="Manage subscription").click()
    page.get_by_role("link", name="Cancel subscription").click()
    page.get_by_label("Why are you canceling?").select_option("Too expensive")
    assert axe_violations(page) == []
    page.get_by_role("button", name="Cancel subscription").click()
    expect(page.get_by_test_id("cancel-scheduled")).to_have_text("Ends on 1 Apr 2026")
    assert Subscription.objects.get(pk=world.a.subscription.pk).cancel_at_period_end is True
    page.get_by_role("button", name="Resume subscription").click()
    expect(page.get_by_text("Your subscription continues.")).to_be_visible()
    expect(page.get_by_test_id("cancel-scheduled")).to_have_count(0)
    assert Subscription.objects.get(pk=world.a.subscription.pk).cancel_at_period_end is False


def test_bad_tax_id_is_rejected_then_a_good_one_saved(page, world):
    _sign_in(page, world.a.user)
    page.get_by_role("link", name="Billing details").click()
    page.get_by_label("Country").select_option("DE")
    page.get_by_label("Tax ID", exact=True).fill("DE123")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".field.has-error")).to_have_count(1)
    expect(page.get_by_label("Tax ID", exact=True)).to_have_attribute("aria-invalid", "true")
    assert axe_violations(page) == []
    assert Customer.objects.get(pk=world.a.customer.pk).tax_id == ""
    page.get_by_label("Tax ID", exact=True).fill("DE 136 695 976")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Your billing details are saved.")).to_be_visible()
    customer = Customer.objects.get(pk=world.a.customer.pk)
    assert (customer.tax_id, customer.tax_id_status) == ("DE136695976", "valid")


def test_switch_to_simplified_chinese(page, world):
    _sign_in(page, world.a.user)
    page.get_by_role("button", name="简体中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.get_by_test_id("next-invoice")).to_have_text("下一张发票：2026年4月1日，US$49.06")
    expect(page.get_by_role("navigation", name="主导航").get_by_role("link", name="发票")).to_be_visible()
    assert axe_violations(page) == []


def test_add_a_card_against_localstripe(page, world, localstripe):
    _sign_in(page, world.a.user)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Payment methods").click()
    expect(page.get_by_text("No card saved yet.")).to_be_visible()
    assert axe_violations(page) == []
    page.get_by_role("link", name="Add a card").click()
    # localstripe's stand-in for Stripe.js mounts plain inputs in place of Stripe's card iframe.
    card = page.locator("#card-element")
    card.get_by_placeholder("number").fill("4242424242424242")
    card.get_by_placeholder("exp_month").fill("12")
    card.get_by_placeholder("exp_year").fill("34")
    card.get_by_placeholder("cvc").fill("123")
    card.get_by_placeholder("postal_code").fill("10115")
    page.get_by_role("button", name="Save card").click()
    expect(page.get_by_text("Your card is saved.")).to_be_visible()
    expect(page.get_by_test_id("card-4242")).to_contain_text("Default")
    assert axe_violations(page) == []

    page.get_by_role("link", name="Invoices", exact=True).click()
    page.get_by_role("rowheader").get_by_role("link", name=world.a.invoice.number, exact=True).click()
    page.get_by_role("link", name="Pay now").click()
    assert axe_violations(page) == []
    page.get_by_role("button", name="Pay 39.00 USD").click()
    expect(page.get_by_text("Thank you: your payment is received.")).to_be_visible()
    expect(page.get_by_test_id("invoice-amount-due")).to_have_text("0.00 USD")


def test_api_token_on_a_phone(page, world):
    page.set_viewport_size({"width": 390, "height": 844})
    _sign_in(page, world.a.user)
    page.get_by_role("link", name="API tokens").click()
    expect(page.get_by_text("No token yet.")).to_be_visible()
    page.get_by_label("Token name").fill("Accounting export")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_label("Token", exact=True)).to_have_value(re.compile(r"^bpc_"))
    expect(page.get_by_role("button", name="Revoke Accounting export")).to_be_visible()
    assert axe_violations(page) == []
    width = _page_width(page)
    assert width["scroll"] <= width["inner"], width  # the tokens table scrolls inside its frame


PHONE = {"width": 390, "height": 844}


def _page_width(page) -> dict:
    return page.evaluate(
        """() => ({scroll: document.documentElement.scrollWidth, inner: window.innerWidth,
                  wide: [...document.querySelectorAll('body *')]
                    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5
                                 && !e.closest('.table-wrap'))
                    .slice(0, 5).map(e => e.tagName + '.' + e.className)})"""
    )


@pytest.mark.parametrize("language", ["English", "简体中文"])
def test_no_page_scrolls_sideways_on_a_phone(page, world, localstripe, language):
    """At 390 px (a phone) no page is wider than the screen: wide tables scroll inside their frame."""
    portal_token_create(membership_id=world.a.user.memberships.get().pk, name="Accounting export")  # a table
    page.set_viewport_size(PHONE)
    for path in ["/portal/login/", "/portal/login/link/", "/portal/password/reset/"]:
        page.goto(path)
        width = _page_width(page)
        assert width["scroll"] <= width["inner"], (path, width)
    _sign_in(page, world.a.user)
    page.get_by_role("button", name=language).click()
    paths = [
        "/portal/",
        "/portal/invoices/",
        f"/portal/invoices/{world.a.invoice.pk}/",
        f"/portal/subscriptions/{world.a.subscription.pk}/",
        f"/portal/subscriptions/{world.a.subscription.pk}/change/",
        f"/portal/subscriptions/{world.a.subscription.pk}/cancel/",
        "/portal/billing/",
        "/portal/budgets/",
        "/portal/payment-methods/",
        "/portal/payment-methods/add/",
        "/portal/api-tokens/",
        "/portal/team/",
        "/portal/password/",
    ]
    for path in paths:
        response = page.goto(path)
        assert response.status == 200, path
        width = _page_width(page)
        assert width["scroll"] <= width["inner"], (path, width)


def test_an_invitation_is_accepted_by_the_invitee_who_then_chooses_where_to_work(page, world, eager_tasks):
    """An owner invites another customer's owner: nothing changes for the invitee until they accept on
    the chooser; from then on they pick a customer after signing in."""
    _sign_in(page, world.a.user)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Team").click()
    page.get_by_label("Email").fill(world.b.user.email)
    page.get_by_label("Role").select_option("viewer")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_role("button", name=f"Revoke the invitation of {world.b.user.email}")).to_be_visible()
    assert axe_violations(page) == []
    page.get_by_role("button", name="Sign out").click()

    _sign_in(page, world.b.user)  # lands in their own customer
    page.get_by_test_id("invitations-waiting").get_by_role("link").click()
    expect(page.get_by_role("heading", name="Choose a billing account", level=1)).to_be_visible()
    assert axe_violations(page) == []
    page.get_by_role("button", name="Accept and join Alpha Labs").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Alpha Labs")
    page.get_by_role("button", name="Sign out").click()

    page.get_by_label("Username or email").fill(world.b.user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Choose a billing account", level=1)).to_be_visible()
    page.get_by_role("button", name="Beta Works").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Beta Works")


def test_a_new_teammate_accepts_from_the_emailed_link(page, world, eager_tasks):
    from django.core import mail

    _sign_in(page, world.a.user)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Team").click()
    page.get_by_label("Email").fill("new.person@alpha.example")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_text("new.person@alpha.example is invited")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    link = re.search(r"(/portal/invitations/\S+/)", mail.outbox[-1].body).group(1)

    page.goto(link)
    expect(page.get_by_role("heading", name="Join the billing account of Alpha Labs", level=1)).to_be_visible()
    assert axe_violations(page) == []
    page.get_by_role("button", name="Accept the invitation").click()
    expect(page.get_by_text("You joined the billing account of Alpha Labs.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/portal/password/$"))
