"""Custom prices in the admin: set on their own page (the service's refusals as form errors), shown on the
subscription's page beside the plan's price, removed through the service (docs/credits.md)."""

import json
from decimal import Decimal

import pytest
from django.urls import reverse

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import subscription_start
from apps.catalog.services import ChargeInput, PriceInput, TierInput, billable_metric_create, plan_create
from apps.catalog.tests.factories import ProductFactory
from apps.subscriptions.models import SubscriptionEvent, SubscriptionPriceOverride
from apps.subscriptions.periods import utc

pytestmark = pytest.mark.django_db

D = Decimal
ADD = "admin:subscriptions_subscriptionpriceoverride_add"


@pytest.fixture
def subscription():
    billable_metric_create(code="api_calls", name="API calls", aggregation="sum", field_name="calls")
    plan = plan_create(
        product=ProductFactory(name="Cloud"),
        code="team",
        name="Team",
        charges=[
            ChargeInput(name="Seats", price_model="per_unit", prices=[PriceInput(currency="USD", amount=D("10.00"))]),
            ChargeInput(
                name="API calls",
                kind="usage",
                metric_code="api_calls",
                price_model="graduated",
                prices=[
                    PriceInput(
                        currency="USD",
                        tiers=[TierInput(up_to=D(100), unit_amount=D(1)), TierInput(up_to=None, unit_amount=D("0.5"))],
                    )
                ],
            ),
        ],
    )
    return subscription_start(
        customer=CustomerFactory(currency="USD", external_id="acme"), plan=plan, quantity=3, now=utc(2026, 4, 1)
    )


def _data(subscription, charge, **extra) -> dict:
    return {
        "subscription": subscription.pk,
        "charge": charge.pk,
        "amount": "0",
        "tiers": "",
        "package_size": "1",
        "package_rounding": "up",
        "included_units": "0",
        "percentage": "0",
        "fixed_fee": "0",
        "min_per_transaction": "",
        "max_per_transaction": "",
        "minimum_amount": "",
        "note": "",
        "_save": "Save",
        **extra,
    }


def test_a_custom_price_set_in_the_admin_shows_on_the_subscription_page(client, superuser, subscription):
    client.force_login(superuser)
    seats = subscription.plan_version.charges.get(name="Seats")
    page = reverse("admin:subscriptions_subscription_change", args=[subscription.pk])
    assert "The plan&#x27;s prices" in client.get(page).content.decode()

    response = client.post(reverse(ADD), _data(subscription, seats, amount="7.5", note="Deal 17"))

    assert response.status_code == 302
    assert response.url == page
    override = SubscriptionPriceOverride.objects.get()
    assert (override.amount, override.currency, override.note) == (D("7.5"), "USD", "Deal 17")
    html = client.get(page).content.decode()
    assert "Differs from its plan: 1 custom price" in html
    assert "10.00 USD per unit" in html  # the plan's price
    assert "7.50 USD per unit" in html  # the custom price
    event = SubscriptionEvent.objects.get(subscription=subscription, type="price_override_set")
    assert (event.actor, event.data["plan_price"], event.data["price"]) == (
        superuser,
        "10.00 USD per unit",
        "7.50 USD per unit",
    )


def test_bad_tiers_are_form_errors_on_the_tiers_field_and_nothing_is_saved(client, superuser, subscription):
    client.force_login(superuser)
    calls = subscription.plan_version.charges.get(name="API calls")

    response = client.post(
        reverse(ADD), _data(subscription, calls, tiers=json.dumps([{"up_to": "10", "unit_amount": "1"}]))
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["tiers"] == [
        "The last tier must be open-ended (no upper bound), so that every quantity has a price; add a tier above 10."
    ]
    response = client.post(reverse(ADD), _data(subscription, calls, tiers="[{"))
    assert list(response.context["adminform"].form.errors) == ["tiers"]
    assert not SubscriptionPriceOverride.objects.exists()
    assert not SubscriptionEvent.objects.filter(type="price_override_set").exists()


def test_a_charge_of_another_version_is_a_form_error_on_the_charge(client, superuser, subscription):
    client.force_login(superuser)
    other = plan_create(
        product=ProductFactory(name="Other"),
        code="other",
        name="Other",
        charges=[ChargeInput(name="Fee", price_model="flat", prices=[PriceInput(currency="USD", amount=D(5))])],
    )

    response = client.post(reverse(ADD), _data(subscription, other.versions.get().charges.get(), amount="1"))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["charge"] == [
        "Choose a charge of the subscription's plan version."
    ]
    assert not SubscriptionPriceOverride.objects.exists()


def test_deleting_in_the_admin_removes_it_through_the_service(client, superuser, subscription):
    client.force_login(superuser)
    seats = subscription.plan_version.charges.get(name="Seats")
    client.post(reverse(ADD), _data(subscription, seats, amount="7.5"))
    override = SubscriptionPriceOverride.objects.get()

    response = client.post(
        reverse("admin:subscriptions_subscriptionpriceoverride_delete", args=[override.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    assert not SubscriptionPriceOverride.objects.exists()
    assert SubscriptionEvent.objects.filter(subscription=subscription, type="price_override_removed").exists()


def test_opened_from_a_subscription_the_form_offers_its_versions_charges(client, superuser, subscription):
    client.force_login(superuser)
    plan_create(
        product=ProductFactory(name="Other"),
        code="other",
        name="Other",
        charges=[ChargeInput(name="Fee", price_model="flat", prices=[PriceInput(currency="USD", amount=D(5))])],
    )

    response = client.get(f"{reverse(ADD)}?subscription={subscription.pk}")

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert sorted(form.fields["charge"].queryset.values_list("name", flat=True)) == ["API calls", "Seats"]
