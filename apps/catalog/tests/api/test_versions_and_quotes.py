from decimal import Decimal

import pytest
from django.urls import reverse

from apps.catalog.models import BillableMetric, PlanVersion, Price, PriceTier
from apps.catalog.tests.factories import PlanFactory, add_charge
from apps.subscriptions.tests.factories import make_subscription

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def api_calls_metric():
    return BillableMetric.objects.create(code="api_calls", name="API calls")


VERSIONS_URL = reverse("api:plan-version-list")

GRADUATED = {
    "name": "API calls",
    "kind": "usage",
    "metric_code": "api_calls",
    "price_model": "graduated",
    "prices": [
        {
            "currency": "USD",
            "tiers": [
                {"up_to": "1000", "unit_amount": "0"},
                {"up_to": "10000", "unit_amount": "0.002"},
                {"up_to": None, "unit_amount": "0.001", "flat_amount": "5"},
            ],
        }
    ],
}
FEE = {"name": "Platform fee", "price_model": "flat", "prices": [{"currency": "USD", "amount": "99.00"}]}


def test_create_a_version_with_tiers(api_client, superuser):
    plan = PlanFactory(prices=[])
    api_client.force_authenticate(superuser)

    response = api_client.post(VERSIONS_URL, {"plan": plan.pk, "notes": "Hybrid", "charges": [FEE, GRADUATED]})

    assert response.status_code == 201, response.data
    body = response.json()
    assert (body["number"], body["currencies"]) == (1, ["USD"])
    assert [charge["name"] for charge in body["charges"]] == ["Platform fee", "API calls"]
    assert body["charges"][1]["prices"][0]["tiers"] == [
        {"up_to": "1000", "unit_amount": "0.00", "flat_amount": "0.00", "percentage": "0"},
        {"up_to": "10000", "unit_amount": "0.002", "flat_amount": "0.00", "percentage": "0"},
        {"up_to": None, "unit_amount": "0.001", "flat_amount": "5.00", "percentage": "0"},
    ]


@pytest.mark.parametrize(
    ("charge", "field"),
    [
        (
            {**GRADUATED, "prices": [{"currency": "USD", "tiers": [{"up_to": "10"}, {"up_to": "5"}, {"up_to": None}]}]},
            "charges.0.prices.0.tiers.1.up_to",
        ),
        (
            {**GRADUATED, "prices": [{"currency": "USD", "tiers": [{"up_to": "10"}]}]},
            "charges.0.prices.0.tiers.0.up_to",
        ),
        ({**FEE, "prices": [{"currency": "USD", "amount": "-1"}]}, "charges.0.prices.0.amount"),
        ({**FEE, "prices": [{"currency": "XYZ", "amount": "1"}]}, "charges.0.prices.0.currency"),
        ({**FEE, "price_model": "cubic"}, "charges.0.price_model"),
        ({**GRADUATED, "metric_code": ""}, "charges.0.metric_code"),
    ],
)
def test_bad_versions_are_refused_field_by_field_and_write_nothing(api_client, superuser, charge, field):
    plan = PlanFactory(prices=[])
    api_client.force_authenticate(superuser)

    response = api_client.post(VERSIONS_URL, {"plan": plan.pk, "charges": [charge]})

    assert response.status_code == 400, response.data
    assert response.json()["code"] == "invalid"
    assert field in response.json()["fields"], response.json()
    assert not PlanVersion.objects.exists()


def test_a_version_with_subscribers_refuses_edits_with_409_and_a_copy_is_editable(api_client, superuser):
    subscription = make_subscription()
    version = subscription.plan_version
    api_client.force_authenticate(superuser)
    url = reverse("api:plan-version-detail", args=[version.pk])

    refused = api_client.put(url, {"charges": [FEE]})

    assert refused.status_code == 409
    assert refused.json()["code"] == "not_editable"
    assert [c.name for c in version.charges.all()] == ["Subscription fee"]

    copy = api_client.post(reverse("api:plan-version-copy", args=[version.pk]), headers={"Idempotency-Key": "copy-1"})
    again = api_client.post(reverse("api:plan-version-copy", args=[version.pk]), headers={"Idempotency-Key": "copy-1"})
    assert (copy.status_code, copy.json()["number"]) == (201, 2)
    assert again.json()["id"] == copy.json()["id"]
    assert PlanVersion.objects.filter(plan=version.plan).count() == 2

    edited = api_client.put(reverse("api:plan-version-detail", args=[copy.json()["id"]]), {"charges": [FEE]})
    assert edited.status_code == 200, edited.data
    assert [charge["name"] for charge in edited.json()["charges"]] == ["Platform fee"]


def _graduated_price() -> Price:
    version = PlanVersion.objects.create(plan=PlanFactory(prices=[]), number=1)
    return add_charge(
        version, name="Seats", price_model="graduated", tiers=[("5", "7", "0"), ("10", "6.5", "0"), (None, "6", "0")]
    )


def test_quote_a_price(api_client, superuser):
    price = _graduated_price()
    api_client.force_authenticate(superuser)

    response = api_client.post(reverse("api:price-quote", args=[price.pk]), {"quantity": "12"})

    assert response.status_code == 200, response.data
    assert response.json() == {
        "currency": "USD",
        "quantity": "12",
        "billable_quantity": "12",
        "exact_amount": "79.5",
        "amount": "79.50",
        "minimum_true_up": "0.00",
        "total": "79.50",
        "lines": [
            {"description": "Units 1–5: 5 × 7.00 USD", "quantity": "5", "unit_amount": "7", "flat_amount": "0",
             "amount": "35"},
            {"description": "Units 6–10: 5 × 6.50 USD", "quantity": "5", "unit_amount": "6.5", "flat_amount": "0",
             "amount": "32.5"},
            {"description": "Units 11–12: 2 × 6.00 USD", "quantity": "2", "unit_amount": "6",
             "flat_amount": "0", "amount": "12"},
        ],
    }  # fmt: skip


def test_quote_a_percentage_price_from_transactions(api_client, superuser):
    version = PlanVersion.objects.create(plan=PlanFactory(prices=[]), number=1)
    price = add_charge(
        version, name="Payments", kind="usage", metric_code="payments", price_model="percentage",
        percentage=Decimal("2.9"), fixed_fee=Decimal("0.30"),
    )  # fmt: skip
    api_client.force_authenticate(superuser)

    response = api_client.post(reverse("api:price-quote", args=[price.pk]), {"transactions": ["100.00", "20.00"]})

    assert response.status_code == 200, response.data
    assert (response.json()["quantity"], response.json()["amount"]) == ("2", "4.08")  # 2.90+0.30 + 0.58+0.30


@pytest.mark.parametrize(
    "payload", [{"quantity": "-1"}, {"quantity": "abc"}, {"quantity": "1e400"}, {"transactions": ["x"]}]
)
def test_bad_quotes_are_refused(api_client, superuser, payload):
    price = _graduated_price()
    api_client.force_authenticate(superuser)

    response = api_client.post(reverse("api:price-quote", args=[price.pk]), payload)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert set(response.json()["fields"]) <= {"quantity", "transactions", "transactions.0"}


@pytest.mark.parametrize(
    ("perm", "expected"),
    [(None, 401), ("", 403), ("catalog.view_plan", 403), ("catalog.view_price", 200)],
)
def test_quote_permission_matrix(api_client, make_staff, perm, expected):
    price = _graduated_price()
    if perm is not None:
        api_client.force_authenticate(make_staff(*([perm] if perm else [])))

    response = api_client.post(reverse("api:price-quote", args=[price.pk]), {"quantity": "1"})

    assert response.status_code == expected


@pytest.mark.parametrize(
    ("perm", "expected"),
    [(None, 401), ("", 403), ("catalog.view_planversion", 403), ("catalog.add_planversion", 201)],
)
def test_version_create_permission_matrix(api_client, make_staff, perm, expected):
    plan = PlanFactory(prices=[])
    if perm is not None:
        api_client.force_authenticate(make_staff(*([perm] if perm else [])))

    response = api_client.post(VERSIONS_URL, {"plan": plan.pk, "charges": [FEE]})

    assert response.status_code == expected
    assert PriceTier.objects.count() == 0
