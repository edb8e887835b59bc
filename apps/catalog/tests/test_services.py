from decimal import Decimal

import pytest
from djmoney.money import Money

from apps.catalog.models import BillableMetric, Plan, PlanVersion, Price
from apps.catalog.services import (
    ChargeInput,
    PriceInput,
    TierInput,
    plan_create,
    plan_version_copy,
    plan_version_create,
    plan_version_replace_charges,
    product_create,
)
from apps.catalog.tests.factories import PlanFactory, ProductFactory
from apps.core.errors import NotEditable, ValidationFailed
from apps.subscriptions.tests.factories import make_subscription

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def api_calls_metric():
    return BillableMetric.objects.create(code="api_calls", name="API calls")


def test_plan_with_prices_in_several_currencies():
    plan = plan_create(
        product=ProductFactory(),
        code="pro-monthly",
        name="Pro",
        prices=[Money("99.00", "USD"), Money("0.00012", "EUR")],
    )
    version = plan.current_version
    assert version.number == 1
    charge = version.charges.get()
    assert (charge.kind, charge.price_model, charge.name) == ("recurring", "per_unit", "Subscription fee")
    assert sorted((price.currency, price.amount) for price in charge.prices.all()) == [
        ("EUR", Decimal("0.00012")),
        ("USD", Decimal("99.00")),
    ]


@pytest.mark.parametrize(
    ("prices", "field", "message"),
    [
        ([Money("-1", "USD")], "prices.0", "Prices cannot be negative."),
        (
            [Money("10", "USD"), Money("1", "BRL")],
            "prices.1",
            "'BRL' is not one of the currencies this seller bills in.",
        ),
        ([Money("10", "USD"), Money("11", "USD")], "prices.1", "The plan already has a price in USD."),
        ([], "prices", "Give at least one price."),
    ],
)
def test_bad_prices_are_refused_and_nothing_is_written(prices, field, message):
    with pytest.raises(ValidationFailed) as excinfo:
        plan_create(product=ProductFactory(), code="p", name="P", prices=prices)
    assert excinfo.value.fields == {field: [message]}
    assert (Plan.objects.count(), Price.objects.count()) == (0, 0)


def test_bad_plan_fields_are_reported_per_field():
    with pytest.raises(ValidationFailed) as excinfo:
        plan_create(
            product=ProductFactory(), code="Not A Code", name="P", interval="fortnight", prices=[Money("1", "USD")]
        )
    assert set(excinfo.value.fields) == {"code", "interval"}
    assert Plan.objects.count() == 0


def test_duplicate_product_code_is_refused():
    product_create(code="hosting", name="Hosting")
    with pytest.raises(ValidationFailed) as excinfo:
        product_create(code="hosting", name="Hosting again")
    assert excinfo.value.fields == {"code": ["A product with this code already exists."]}


API_CALLS = ChargeInput(
    name="API calls",
    kind="usage",
    metric_code="api_calls",
    price_model="graduated",
    prices=[
        PriceInput(
            currency="USD",
            tiers=[
                TierInput(up_to=Decimal(1000)),
                TierInput(up_to=Decimal(10000), unit_amount=Decimal("0.002")),
                TierInput(up_to=None, unit_amount=Decimal("0.001")),
            ],
        )
    ],
)
PLATFORM_FEE = ChargeInput(
    name="Platform fee", price_model="flat", prices=[PriceInput(currency="USD", amount=Decimal(99))]
)


def test_a_hybrid_plan_with_a_fee_and_graduated_usage():
    plan = plan_create(product=ProductFactory(), code="api", name="API", charges=[PLATFORM_FEE, API_CALLS])

    charges = list(plan.current_version.charges.order_by("position"))
    assert [(c.position, c.name, c.kind, c.price_model, c.metric_code) for c in charges] == [
        (1, "Platform fee", "recurring", "flat", ""),
        (2, "API calls", "usage", "graduated", "api_calls"),
    ]
    tiers = charges[1].prices.get().tiers.order_by("position")
    assert [(t.up_to, t.unit_amount) for t in tiers] == [
        (Decimal(1000), Decimal(0)),
        (Decimal(10000), Decimal("0.002")),
        (None, Decimal("0.001")),
    ]


@pytest.mark.parametrize(
    ("charge", "key", "message"),
    [
        (
            ChargeInput(
                name="Calls", price_model="graduated",
                prices=[PriceInput(currency="USD", tiers=[TierInput(Decimal(10)), TierInput(Decimal(5)), TierInput(None)])],  # noqa: E501
            ),
            "charges.0.prices.0.tiers.1.up_to",
            "Tier 2 must end above tier 1, which ends at 10 units.",
        ),
        (
            ChargeInput(
                name="Calls", price_model="volume", prices=[PriceInput(currency="USD", tiers=[TierInput(Decimal(10))])]
            ),
            "charges.0.prices.0.tiers.0.up_to",
            "The last tier must be open-ended (no upper bound), so that every quantity has a price; add a tier above 10.",  # noqa: E501
        ),
        (
            ChargeInput(name="Fee", prices=[PriceInput(currency="USD", amount=Decimal(-1))]),
            "charges.0.prices.0.amount",
            "The amount cannot be negative.",
        ),
        (
            ChargeInput(name="Fee", prices=[PriceInput(currency="XYZ", amount=Decimal(1))]),
            "charges.0.prices.0.currency",
            "'XYZ' is not one of the currencies this seller bills in.",
        ),
        (
            ChargeInput(name="Calls", kind="usage", prices=[PriceInput(currency="USD", amount=Decimal(1))]),
            "charges.0.metric_code",
            "A usage charge needs the code of the metric it bills.",
        ),
    ],
)  # fmt: skip
def test_bad_charges_are_refused_field_by_field_and_nothing_is_written(charge, key, message):
    with pytest.raises(ValidationFailed) as excinfo:
        plan_create(product=ProductFactory(), code="p", name="P", charges=[charge])
    assert excinfo.value.fields == {key: [message]}
    assert (Plan.objects.count(), PlanVersion.objects.count(), Price.objects.count()) == (0, 0, 0)


def test_every_charge_of_a_version_needs_the_same_currencies():
    two_currencies = ChargeInput(
        name="Fee",
        prices=[PriceInput(currency="USD", amount=Decimal(1)), PriceInput(currency="EUR", amount=Decimal(1))],
    )
    with pytest.raises(ValidationFailed) as excinfo:
        plan_create(product=ProductFactory(), code="p", name="P", charges=[two_currencies, PLATFORM_FEE])
    assert list(excinfo.value.fields) == ["charges.1.prices"]
    assert "no price in EUR" in excinfo.value.fields["charges.1.prices"][0]


def test_new_versions_are_numbered_and_new_subscribers_get_the_latest():
    plan = PlanFactory(prices=[Money("10", "USD")])
    old_subscriber = make_subscription(plan=plan)

    version_2 = plan_version_create(plan=plan, charges=[PLATFORM_FEE], notes="Flat fee instead of seats.")
    plan.refresh_from_db()

    assert version_2.number == 2
    assert plan.current_version == version_2
    assert make_subscription(plan=plan).plan_version == version_2
    old_subscriber.refresh_from_db()
    assert old_subscriber.plan_version.number == 1  # grandfathered


def test_a_version_with_subscribers_cannot_be_edited_and_nothing_changes():
    subscription = make_subscription()
    version = subscription.plan_version
    before = list(Price.objects.filter(charge__plan_version=version).values_list("currency", "amount"))

    with pytest.raises(NotEditable, match="has subscribers"):
        plan_version_replace_charges(version=version, charges=[PLATFORM_FEE])

    assert list(Price.objects.filter(charge__plan_version=version).values_list("currency", "amount")) == before


def test_a_version_without_subscribers_can_be_rewritten():
    plan = PlanFactory(prices=[Money("10", "USD")])
    version = plan.current_version

    plan_version_replace_charges(version=version, charges=[PLATFORM_FEE, API_CALLS], notes="Hybrid.")

    assert [charge.name for charge in version.charges.all()] == ["Platform fee", "API calls"]


def test_copying_a_version_keeps_its_charges_prices_and_tiers():
    plan = plan_create(product=ProductFactory(), code="api", name="API", charges=[PLATFORM_FEE, API_CALLS])
    version_1 = plan.current_version

    version_2 = plan_version_copy(version=version_1)

    def shape(version):
        return [
            (charge.name, charge.price_model, [
                (price.currency, price.amount, [(t.up_to, t.unit_amount, t.flat_amount) for t in price.tiers.all()])
                for price in charge.prices.all()
            ])
            for charge in version.charges.all()
        ]  # fmt: skip

    assert version_2.number == 2
    assert shape(version_2) == shape(version_1)


def test_a_usage_charge_needs_an_existing_metric():
    unknown = ChargeInput(
        name="Calls", kind="usage", metric_code="no_such_metric", prices=[PriceInput(currency="USD", amount=Decimal(1))]
    )
    with pytest.raises(ValidationFailed) as excinfo:
        plan_create(product=ProductFactory(), code="p", name="P", charges=[unknown])
    assert excinfo.value.fields == {
        "charges.0.metric_code": ["No billable metric has the code 'no_such_metric'; create the metric first."]
    }
    assert not Plan.objects.exists()
