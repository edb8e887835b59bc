"""The catalog API for the completed price models: packages rounded down, graduated percentages and
plan minimum commitments (created, shown, quoted; bad input is a 400 on its field and writes nothing)."""

from decimal import Decimal

import pytest
from django.urls import reverse

from apps.catalog.models import BillableMetric, MinimumCommitment, Plan, PlanVersion, Price
from apps.catalog.tests.factories import PlanFactory, ProductFactory

pytestmark = pytest.mark.django_db

VERSIONS_URL = reverse("api:plan-version-list")
PLANS_URL = reverse("api:plan-list")


@pytest.fixture(autouse=True)
def payment_volume_metric():
    return BillableMetric.objects.create(code="payments", name="Payments", aggregation="sum", field_name="amount")


FEE = {"name": "Platform fee", "price_model": "flat", "prices": [{"currency": "USD", "amount": "49.00"}]}
HOURS = {
    "name": "Rental hours",
    "price_model": "package",
    "prices": [{"currency": "USD", "amount": "10", "package_size": 60, "package_rounding": "down"}],
}
PAYMENT_FEES = {
    "name": "Payment fees",
    "kind": "usage",
    "metric_code": "payments",
    "price_model": "graduated_percentage",
    "prices": [
        {
            "currency": "USD",
            "tiers": [
                {"up_to": "1000", "percentage": "1", "flat_amount": "200"},
                {"up_to": "10000", "percentage": "2", "flat_amount": "300"},
                {"up_to": None, "percentage": "3", "flat_amount": "400"},
            ],
        }
    ],
}


def test_create_a_plan_with_the_new_models_and_a_minimum_commitment(api_client, superuser):
    api_client.force_authenticate(superuser)

    response = api_client.post(
        PLANS_URL,
        {
            "product": ProductFactory().pk, "code": "fintech", "name": "Fintech",
            "charges": [FEE, HOURS, PAYMENT_FEES],
            "minimum_commitments": [{"amount": "1000.00", "currency": "USD"}],
        },
    )  # fmt: skip

    assert response.status_code == 201, response.data
    version = response.json()["current_version"]
    assert version["minimum_commitments"] == [{"amount": "1000.00", "currency": "USD"}]
    hours, fees = version["charges"][1]["prices"][0], version["charges"][2]
    assert (hours["package_size"], hours["package_rounding"]) == (60, "down")
    assert fees["price_model"] == "graduated_percentage"
    assert fees["prices"][0]["tiers"] == [
        {"up_to": "1000", "unit_amount": "0.00", "flat_amount": "200.00", "percentage": "1"},
        {"up_to": "10000", "unit_amount": "0.00", "flat_amount": "300.00", "percentage": "2"},
        {"up_to": None, "unit_amount": "0.00", "flat_amount": "400.00", "percentage": "3"},
    ]
    assert version["charges"][0]["prices"][0]["package_rounding"] == "up"  # the default


def test_quote_a_graduated_percentage_price_on_an_amount(api_client, superuser):
    api_client.force_authenticate(superuser)
    version = api_client.post(VERSIONS_URL, {"plan": PlanFactory(prices=[]).pk, "charges": [PAYMENT_FEES]}).json()
    price_id = version["charges"][0]["prices"][0]["id"]

    response = api_client.post(reverse("api:price-quote", args=[price_id]), {"quantity": "5050.00"})

    assert response.status_code == 200, response.data
    body = response.json()
    assert (body["amount"], body["total"]) == ("591.00", "591.00")  # Lago's 205 + 306 + 80
    assert [line["description"] for line in body["lines"]] == [
        "First 1,000.00 USD: 1 % of 1,000.00 USD + 200.00 USD flat fee",
        "Above 1,000.00 USD up to 5,050.00 USD: 2 % of 4,050.00 USD + 300.00 USD flat fee",
    ]


def _with_tiers(*tiers: dict) -> dict:
    return {**PAYMENT_FEES, "prices": [{"currency": "USD", "tiers": list(tiers)}]}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        # a percentage outside 0–100 (refused by the input's own bounds)
        (
            {"charges": [_with_tiers({"up_to": "1000", "percentage": "150"}, {"up_to": None, "percentage": "1"})]},
            "charges.0.prices.0.tiers.0.percentage",
        ),
        (
            {"charges": [_with_tiers({"up_to": "1000", "percentage": "-1"}, {"up_to": None, "percentage": "1"})]},
            "charges.0.prices.0.tiers.0.percentage",
        ),
        # tiers that overlap: the second ends below the first
        (
            {"charges": [_with_tiers({"up_to": "1000"}, {"up_to": "500"}, {"up_to": None})]},
            "charges.0.prices.0.tiers.1.up_to",
        ),
        # a unit price on a graduated percentage tier
        ({"charges": [_with_tiers({"up_to": None, "unit_amount": "0.5"})]}, "charges.0.prices.0.tiers.0.unit_amount"),
        # a graduated percentage on a recurring charge
        ({"charges": [{**PAYMENT_FEES, "kind": "recurring", "metric_code": ""}]}, "charges.0.price_model"),
        # rounding that is neither up nor down; rounding on a model without packages
        (
            {"charges": [{**HOURS, "prices": [{**HOURS["prices"][0], "package_rounding": "nearest"}]}]},
            "charges.0.prices.0.package_rounding",
        ),
        (
            {"charges": [{**FEE, "prices": [{"currency": "USD", "amount": "1", "package_rounding": "down"}]}]},
            "charges.0.prices.0.package_rounding",
        ),
        # a minimum in a currency the plan does not price in; a second one in the same currency; zero
        (
            {"charges": [FEE], "minimum_commitments": [{"amount": "100", "currency": "EUR"}]},
            "minimum_commitments.0.currency",
        ),
        (
            {"charges": [FEE], "minimum_commitments": [{"amount": "1", "currency": "USD"}] * 2},
            "minimum_commitments.1.currency",
        ),
        (
            {"charges": [FEE], "minimum_commitments": [{"amount": "0", "currency": "USD"}]},
            "minimum_commitments.0.amount",
        ),
    ],
)  # fmt: skip
def test_bad_new_prices_and_commitments_are_400_on_their_field_and_write_nothing(api_client, superuser, body, field):
    plan = PlanFactory(prices=[])
    api_client.force_authenticate(superuser)

    response = api_client.post(VERSIONS_URL, {"plan": plan.pk, **body})

    assert response.status_code == 400, response.data
    assert response.json()["code"] == "invalid"
    assert field in response.json()["fields"], response.json()
    assert (PlanVersion.objects.count(), Price.objects.count(), MinimumCommitment.objects.count()) == (0, 0, 0)


def test_updating_a_version_replaces_its_commitments_or_keeps_them(api_client, superuser):
    api_client.force_authenticate(superuser)
    plan = PlanFactory(prices=[])
    created = api_client.post(
        VERSIONS_URL, {"plan": plan.pk, "charges": [FEE], "minimum_commitments": [{"amount": "100", "currency": "USD"}]}
    ).json()
    url = reverse("api:plan-version-detail", args=[created["id"]])

    kept = api_client.put(url, {"charges": [FEE, HOURS]})
    assert kept.status_code == 200, kept.data
    assert kept.json()["minimum_commitments"] == [{"amount": "100.00", "currency": "USD"}]

    replaced = api_client.put(url, {"charges": [FEE], "minimum_commitments": [{"amount": "250.5", "currency": "USD"}]})
    assert replaced.json()["minimum_commitments"] == [{"amount": "250.50", "currency": "USD"}]

    refused = api_client.put(url, {"charges": [FEE], "minimum_commitments": [{"amount": "9", "currency": "EUR"}]})
    assert refused.status_code == 400
    assert list(refused.json()["fields"]) == ["minimum_commitments.0.currency"]
    assert [(row.currency, row.amount) for row in MinimumCommitment.objects.all()] == [("USD", Decimal("250.5"))]
    assert not Plan.objects.exclude(pk=plan.pk).exists()


# --- prices per dimension -----------------------------------------------------------------------------


@pytest.fixture
def grouped_metric():
    return BillableMetric.objects.create(code="transfer", name="Transfer", group_by="region,tier")


def _transfer(*prices: dict) -> dict:
    return {"name": "Transfer", "kind": "usage", "metric_code": "transfer", "price_model": "per_unit",
            "prices": list(prices)}  # fmt: skip


DEFAULT_TRANSFER = {"currency": "USD", "amount": "0.09"}


def test_create_dimension_prices_and_read_them_back(api_client, superuser, grouped_metric):
    api_client.force_authenticate(superuser)
    eu_gold = {"currency": "USD", "amount": "0.05", "dimension_values": {"tier": "gold", "region": "eu"}}

    response = api_client.post(
        VERSIONS_URL, {"plan": PlanFactory(prices=[]).pk, "charges": [FEE, _transfer(DEFAULT_TRANSFER, eu_gold)]}
    )

    assert response.status_code == 201, response.data
    prices = response.json()["charges"][1]["prices"]
    assert [(price["dimension_values"], price["amount"]) for price in prices] == [
        ({}, "0.09"),
        ({"region": "eu", "tier": "gold"}, "0.05"),  # the order of the properties never matters
    ]


@pytest.mark.parametrize(
    ("charge", "field", "message"),
    [
        (  # a dimension price for a property the metric does not group by
            _transfer(DEFAULT_TRANSFER, {"currency": "USD", "amount": "1", "dimension_values": {"zone": "a"}}),
            "charges.0.prices.1.dimension_values",
            "'zone' is not a property the metric 'transfer' groups by (region, tier): a dimension price names a "
            "value for each of those.",
        ),
        (  # a value for one of the two properties only
            _transfer(DEFAULT_TRANSFER, {"currency": "USD", "amount": "1", "dimension_values": {"region": "eu"}}),
            "charges.0.prices.1.dimension_values",
            "Give a value for 'tier' too: the metric groups by region, tier.",
        ),
        (  # the same group twice
            _transfer(
                DEFAULT_TRANSFER,
                {"currency": "USD", "amount": "1", "dimension_values": {"region": "eu", "tier": "gold"}},
                {"currency": "USD", "amount": "2", "dimension_values": {"tier": "gold", "region": "eu"}},
            ),
            "charges.0.prices.2.dimension_values",
            "The charge already has a price in USD for tier gold, region eu.",
        ),
        (  # no default price in the currency of a dimension price
            _transfer({"currency": "USD", "amount": "1", "dimension_values": {"region": "eu", "tier": "gold"}}),
            "charges.0.prices.0.currency",
            "A price for region eu, tier gold in USD needs the charge's default price in USD (for every other group).",
        ),
        (  # dimension prices on a recurring charge
            {**FEE, "prices": [FEE["prices"][0], {"currency": "USD", "amount": "1", "dimension_values": {"a": "b"}}]},
            "charges.0.prices.1.dimension_values",
            "Only usage charges have prices per dimension; leave the dimension values empty.",
        ),
    ],
)  # fmt: skip
def test_bad_dimension_prices_are_400_on_their_field_and_write_nothing(
    api_client, superuser, grouped_metric, charge, field, message
):
    api_client.force_authenticate(superuser)

    response = api_client.post(VERSIONS_URL, {"plan": PlanFactory(prices=[]).pk, "charges": [charge]})

    assert response.status_code == 400, response.data
    assert message in response.json()["fields"][field], response.json()
    assert (PlanVersion.objects.count(), Price.objects.count()) == (0, 0)


def test_a_dimension_price_on_a_metric_not_grouped_is_refused(api_client, superuser):
    api_client.force_authenticate(superuser)
    charge = {
        **PAYMENT_FEES,
        "prices": [PAYMENT_FEES["prices"][0], {**PAYMENT_FEES["prices"][0], "dimension_values": {"region": "eu"}}],
    }

    response = api_client.post(VERSIONS_URL, {"plan": PlanFactory(prices=[]).pk, "charges": [charge]})

    assert response.status_code == 400
    assert response.json()["fields"]["charges.0.prices.1.dimension_values"] == [
        "The metric 'payments' is not grouped by any property, so its usage has no dimensions to price apart; "
        "group it by one or two properties (e.g. region,tier) first."
    ]
    assert not PlanVersion.objects.exists()


@pytest.mark.parametrize(
    ("group_by", "status"), [("region,tier", 201), ("region", 201), ("region,region", 400), ("a,b,c", 400)]
)
def test_a_metric_groups_by_one_or_two_different_properties(api_client, superuser, group_by, status):
    api_client.force_authenticate(superuser)

    response = api_client.post(
        reverse("api:billable-metric-list"),
        {"code": "calls", "name": "Calls", "aggregation": "count", "group_by": group_by},
    )

    assert response.status_code == status, response.data
    if status == 400:
        assert list(response.json()["fields"]) == ["group_by"]
        assert not BillableMetric.objects.filter(code="calls").exists()
