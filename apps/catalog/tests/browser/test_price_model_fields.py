"""The plan version page shows each price only the fields of its charge's price model, and follows
the model as staff change it (static/catalog/price_model_fields.js)."""

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from apps.accounts.tests.factories import UserFactory
from apps.catalog.models import PlanVersion
from apps.catalog.tests.factories import PlanFactory, add_charge

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"


def test_the_version_page_shows_only_the_chosen_models_fields(page):
    user = UserFactory(username="finance", is_staff=True, is_superuser=True)
    user.set_password(PASSWORD)
    user.save()
    version = PlanVersion.objects.create(plan=PlanFactory(prices=[]), number=1)
    add_charge(version, name="Hours", price_model="package", amount=Decimal(10), package_size=60)

    page.goto(f"/admin/login/?next=/admin/catalog/planversion/{version.pk}/change/")
    page.get_by_label("Username").fill("finance")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    def shown(name: str):
        return page.locator(f'[name="charges-0-prices-0-{name}"]')

    expect(shown("package_rounding")).to_be_visible()
    expect(shown("amount")).to_be_visible()
    for hidden in ("percentage", "fixed_fee", "min_per_transaction", "max_per_transaction"):
        expect(shown(hidden)).to_be_hidden()
    expect(page.locator('[id="charges-0-prices-0-tiers-group"]')).to_be_hidden()

    page.locator('[name="charges-0-price_model"]').select_option("graduated_percentage")

    for hidden in ("amount", "package_size", "package_rounding", "included_units"):
        expect(shown(hidden)).to_be_hidden()
    expect(page.locator('[id="charges-0-prices-0-tiers-group"]')).to_be_visible()
    expect(shown("minimum_amount")).to_be_visible()  # every model has a minimum charge
