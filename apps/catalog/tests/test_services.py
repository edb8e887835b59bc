from decimal import Decimal

import pytest
from djmoney.money import Money

from apps.catalog.models import Plan, PlanPrice
from apps.catalog.services import plan_create, product_create
from apps.catalog.tests.factories import ProductFactory
from apps.core.errors import ValidationFailed

pytestmark = pytest.mark.django_db


def test_plan_with_prices_in_several_currencies():
    plan = plan_create(
        product=ProductFactory(),
        code="pro-monthly",
        name="Pro",
        prices=[Money("99.00", "USD"), Money("0.00012", "EUR")],
    )
    assert sorted((str(p.amount.currency), p.amount.amount) for p in plan.prices.all()) == [
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
    assert (Plan.objects.count(), PlanPrice.objects.count()) == (0, 0)


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
