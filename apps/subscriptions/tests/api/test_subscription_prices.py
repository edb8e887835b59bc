"""`/api/v1/subscriptions/{id}/prices/{charge_id}`: a subscription's custom prices (docs/credits.md)."""

from decimal import Decimal

import pytest
from django.urls import reverse

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import subscription_start, subscription_upcoming_invoice
from apps.catalog.services import ChargeInput, PriceInput, TierInput, billable_metric_create, plan_create
from apps.catalog.tests.factories import ProductFactory
from apps.subscriptions.models import SubscriptionEvent, SubscriptionPriceOverride
from apps.subscriptions.periods import utc

pytestmark = pytest.mark.django_db

D = Decimal


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
    customer = CustomerFactory(currency="USD", external_id="acme")
    return subscription_start(customer=customer, plan=plan, quantity=3, now=utc(2026, 4, 1))


def _url(subscription, charge_id):
    return reverse("api:subscription-price", args=[subscription.pk, charge_id])


def _charge(subscription, name):
    return subscription.plan_version.charges.get(name=name)


def test_put_sets_a_custom_price_that_the_detail_and_the_preview_show(api_client, superuser, subscription):
    api_client.force_authenticate(superuser)
    seats = _charge(subscription, "Seats")

    response = api_client.put(_url(subscription, seats.pk), {"amount": "7.5", "note": "Deal 17"}, format="json")

    assert response.status_code == 200, response.data
    body = response.json()
    assert (body["charge"], body["charge_name"], body["currency"], body["amount"], body["note"]) == (
        seats.pk,
        "Seats",
        "USD",
        "7.5",
        "Deal 17",
    )
    assert (body["description"], body["plan_price"]) == ("7.50 USD per unit", "10.00 USD per unit")
    detail = api_client.get(reverse("api:subscription-detail", args=[subscription.pk])).json()
    assert [override["charge"] for override in detail["price_overrides"]] == [seats.pk]
    assert api_client.get(_url(subscription, seats.pk)).json()["amount"] == "7.5"
    listed = api_client.get(reverse("api:subscription-prices", args=[subscription.pk])).json()
    assert [row["charge_name"] for row in listed] == ["Seats"]
    # 3 seats × 7.50 = 22.50 on the next invoice
    upcoming = subscription_upcoming_invoice(subscription_id=subscription.pk, now=utc(2026, 4, 20))
    assert upcoming.total == D("22.50")

    # PUT again replaces it; the audit trail has both
    response = api_client.put(_url(subscription, seats.pk), {"amount": "8"}, format="json")
    assert response.status_code == 200
    assert SubscriptionPriceOverride.objects.get().amount == D(8)
    assert SubscriptionEvent.objects.filter(subscription=subscription, type="price_override_set").count() == 2


def test_custom_tiers_through_the_api(api_client, superuser, subscription):
    api_client.force_authenticate(superuser)
    calls = _charge(subscription, "API calls")
    tiers = [{"up_to": "1000", "unit_amount": "0.4", "flat_amount": "5"}, {"up_to": None, "unit_amount": "0.25"}]

    response = api_client.put(_url(subscription, calls.pk), {"tiers": tiers}, format="json")

    assert response.status_code == 200, response.data
    assert response.json()["tiers"] == [
        {"up_to": "1000", "unit_amount": "0.4", "flat_amount": "5", "percentage": "0"},
        {"up_to": None, "unit_amount": "0.25", "flat_amount": "0", "percentage": "0"},
    ]


def test_a_charge_not_on_the_subscriptions_version_is_a_400_and_nothing_changes(api_client, superuser, subscription):
    api_client.force_authenticate(superuser)
    other = plan_create(
        product=ProductFactory(name="Other"),
        code="other",
        name="Other",
        charges=[ChargeInput(name="Fee", price_model="flat", prices=[PriceInput(currency="USD", amount=D(5))])],
    )
    foreign = other.versions.get().charges.get()

    response = api_client.put(_url(subscription, foreign.pk), {"amount": "1"}, format="json")

    assert response.status_code == 400
    assert response.json()["fields"] == {"charge": ["Choose a charge of the subscription's plan version."]}
    assert not SubscriptionPriceOverride.objects.exists()
    assert not SubscriptionEvent.objects.filter(type="price_override_set").exists()


def test_field_level_400s(api_client, superuser, subscription):
    api_client.force_authenticate(superuser)
    calls, seats = _charge(subscription, "API calls"), _charge(subscription, "Seats")

    response = api_client.put(
        _url(subscription, calls.pk), {"tiers": [{"up_to": "10", "unit_amount": "1"}]}, format="json"
    )
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["tiers.0.up_to"]

    response = api_client.put(_url(subscription, seats.pk), {"amount": "-1"}, format="json")
    assert response.status_code == 400
    assert "amount" in response.json()["fields"]

    response = api_client.put(_url(subscription, seats.pk), {"amount": "1", "currency": "EUR"}, format="json")
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["currency"]

    response = api_client.put(_url(subscription, seats.pk), {"amount": "1", "percentage": "2"}, format="json")
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["percentage"]
    assert not SubscriptionPriceOverride.objects.exists()


def test_delete_returns_to_the_plan_price(api_client, superuser, subscription):
    api_client.force_authenticate(superuser)
    seats = _charge(subscription, "Seats")
    api_client.put(_url(subscription, seats.pk), {"amount": "7.5"}, format="json")

    response = api_client.delete(_url(subscription, seats.pk))

    assert response.status_code == 204
    assert not SubscriptionPriceOverride.objects.exists()
    assert api_client.get(_url(subscription, seats.pk)).status_code == 404
    assert api_client.delete(_url(subscription, seats.pk)).status_code == 404
    upcoming = subscription_upcoming_invoice(subscription_id=subscription.pk, now=utc(2026, 4, 20))
    assert upcoming.total == D("30.00")  # 3 × 10.00


def test_a_user_without_the_permission_cannot_set_a_custom_price(api_client, make_staff, subscription):
    api_client.force_authenticate(make_staff("subscriptions.view_subscription", "subscriptions.change_subscription"))

    response = api_client.put(_url(subscription, _charge(subscription, "Seats").pk), {"amount": "1"}, format="json")

    assert response.status_code == 403
    assert not SubscriptionPriceOverride.objects.exists()
