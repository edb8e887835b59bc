"""Progressive billing through the REST API: thresholds on plan versions (`PUT
/api/v1/plan-versions/{id}/progressive-billing`) and subscriptions (`GET|PUT|DELETE
/api/v1/subscriptions/{id}/progressive-billing`), interim invoices recognisable by their
`billing_reason` (and the `billing_reason` filter)."""

from decimal import Decimal

import pytest
from django.urls import reverse
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import subscription_start
from apps.billing.services.progressive import subscription_progressive_evaluate
from apps.catalog.models import ProgressiveBilling
from apps.catalog.services import ChargeInput, PriceInput, billable_metric_create, plan_create
from apps.catalog.tests.factories import ProductFactory
from apps.subscriptions.models import SubscriptionEvent, SubscriptionProgressiveBilling
from apps.subscriptions.periods import utc
from apps.usage.services import usage_events_ingest

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def plan():
    billable_metric_create(code="api_calls", name="API calls", aggregation="sum", field_name="calls")
    return plan_create(
        product=ProductFactory(name="Cloud"),
        code="metered",
        name="Metered",
        charges=[
            ChargeInput(
                name="API calls",
                kind="usage",
                metric_code="api_calls",
                price_model="per_unit",
                prices=[PriceInput(currency="USD", amount=D("1.00"))],
            )
        ],
    )


def _version_url(version):
    return reverse("api:plan-version-progressive-billing", args=[version.pk])


def _subscription_url(subscription):
    return reverse("api:subscription-progressive-billing", args=[subscription.pk])


def test_put_sets_a_plan_versions_thresholds_and_the_version_shows_them(api_client, superuser, plan):
    api_client.force_authenticate(superuser)
    version = plan.versions.get()

    response = api_client.put(
        _version_url(version), {"currency": "usd", "thresholds": ["1200", 500], "every": "500.00"}, format="json"
    )

    assert response.status_code == 200, response.data
    assert response.json()["progressive_billing"] == [
        {"currency": "USD", "thresholds": ["500", "1200"], "every": "500", "scope": "period"}
    ]
    detail = api_client.get(reverse("api:plan-version-detail", args=[version.pk])).json()
    assert detail["progressive_billing"] == response.json()["progressive_billing"]
    # Neither thresholds nor every: none.
    assert api_client.put(_version_url(version), {"currency": "USD"}, format="json").json()["progressive_billing"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"currency": "USD", "thresholds": ["-1"]}, "thresholds"),
        ({"currency": "USD", "thresholds": ["abc"]}, "thresholds"),
        ({"currency": "USD", "thresholds": ["1.001"]}, "thresholds"),  # USD has 2 decimals
        ({"currency": "USD", "every": "0"}, "every"),
        ({"currency": "EUR", "thresholds": ["500"]}, "currency"),  # the version prices in USD only
        ({"thresholds": ["500"]}, "currency"),
        ({"currency": "USD", "thresholds": "500"}, "thresholds"),
        ({"currency": "USD", "thresholds": ["500"], "scope": "forever"}, "scope"),
    ],
)
def test_bad_thresholds_are_a_400_naming_the_field_and_change_nothing(api_client, superuser, plan, body, field):
    api_client.force_authenticate(superuser)
    version = plan.versions.get()

    response = api_client.put(_version_url(version), body, format="json")

    assert response.status_code == 400
    assert field in response.json()["fields"], response.json()
    assert not ProgressiveBilling.objects.exists()


def test_thresholds_can_measure_the_usage_since_the_subscription_started(api_client, superuser, plan):
    api_client.force_authenticate(superuser)
    version = plan.versions.get()

    response = api_client.put(
        _version_url(version), {"currency": "USD", "thresholds": ["500"], "scope": "lifetime"}, format="json"
    )

    assert response.status_code == 200, response.data
    assert response.json()["progressive_billing"] == [
        {"currency": "USD", "thresholds": ["500"], "every": None, "scope": "lifetime"}
    ]
    subscription = subscription_start(customer=CustomerFactory(currency="USD"), plan=plan, now=utc(2026, 4, 1))
    assert api_client.get(_subscription_url(subscription)).json()["scope"] == "lifetime"
    own = api_client.put(_subscription_url(subscription), {"every": "100", "scope": "period"}, format="json")
    assert own.status_code == 200 and own.json()["scope"] == "period"
    bad = api_client.put(_subscription_url(subscription), {"every": "100", "scope": "ever"}, format="json")
    assert bad.status_code == 400 and list(bad.json()["fields"]) == ["scope"]
    assert SubscriptionProgressiveBilling.objects.get().scope == "period"


def test_a_version_with_subscribers_keeps_its_thresholds_409(api_client, superuser, plan):
    api_client.force_authenticate(superuser)
    version = plan.versions.get()
    subscription_start(customer=CustomerFactory(currency="USD"), plan=plan, now=utc(2026, 4, 1))

    response = api_client.put(_version_url(version), {"currency": "USD", "every": "500"}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "not_editable"


def test_a_subscription_gets_thresholds_of_its_own_and_loses_them_again(api_client, superuser, plan):
    api_client.force_authenticate(superuser)
    subscription = subscription_start(customer=CustomerFactory(currency="USD"), plan=plan, now=utc(2026, 4, 1))
    assert api_client.get(_subscription_url(subscription)).json() == {
        "custom": False, "currency": "USD", "thresholds": [], "every": None, "scope": "period", "enabled": False,
    }  # fmt: skip

    response = api_client.put(_subscription_url(subscription), {"thresholds": ["250.5"], "every": "100"}, format="json")

    assert response.status_code == 200, response.data
    assert response.json() == {
        "custom": True, "currency": "USD", "thresholds": ["250.5"], "every": "100", "scope": "period",
        "enabled": True,
    }  # fmt: skip
    detail = api_client.get(reverse("api:subscription-detail", args=[subscription.pk])).json()
    assert detail["progressive_billing"]["custom"] is True
    assert SubscriptionEvent.objects.filter(subscription=subscription, type="progressive_set").exists()

    bad = api_client.put(_subscription_url(subscription), {"thresholds": ["0"]}, format="json")
    assert bad.status_code == 400 and "thresholds" in bad.json()["fields"]
    assert SubscriptionProgressiveBilling.objects.get().amounts == ["250.5"]  # unchanged

    assert api_client.delete(_subscription_url(subscription)).status_code == 204
    assert api_client.get(_subscription_url(subscription)).json()["custom"] is False
    assert api_client.delete(_subscription_url(subscription)).status_code == 404


def test_interim_invoices_show_their_billing_reason_and_can_be_filtered(api_client, superuser, plan):
    api_client.force_authenticate(superuser)
    customer = CustomerFactory(currency="USD", external_id="acme")
    subscription = subscription_start(customer=customer, plan=plan, now=utc(2026, 4, 1))
    api_client.put(_subscription_url(subscription), {"every": "100"}, format="json")
    usage_events_ingest(
        events=[
            {"transaction_id": "t1", "external_customer_id": "acme", "metric_code": "api_calls",
             "timestamp": utc(2026, 4, 5).isoformat(), "properties": {"calls": "150"}},
        ],
        now=utc(2026, 4, 5, 1),
    )  # fmt: skip
    interim = subscription_progressive_evaluate(subscription_id=subscription.pk, now=utc(2026, 4, 5, 2))
    assert interim.total == Money("150.00", "USD")

    listed = api_client.get(reverse("api:invoice-list"), {"billing_reason": "subscription_threshold"}).json()

    assert [row["id"] for row in listed["results"]] == [interim.pk]
    assert listed["results"][0]["billing_reason"] == "subscription_threshold"
    detail = api_client.get(reverse("api:invoice-detail", args=[interim.pk])).json()
    assert detail["billing_reason"] == "subscription_threshold"
    assert api_client.get(reverse("api:invoice-list"), {"billing_reason": "nonsense"}).status_code == 400
