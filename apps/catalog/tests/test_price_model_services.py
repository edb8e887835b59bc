"""Catalog services for the completed price models: packages rounded down, graduated percentages and
plan minimum commitments are stored, copied and refused field by field (nothing written)."""

from decimal import Decimal

import pytest
from djmoney.money import Money

from apps.catalog.models import BillableMetric, Charge, MinimumCommitment, Plan, PlanVersion, PriceTier
from apps.catalog.pricing import PackageRounding, PriceModel
from apps.catalog.services import (
    ChargeInput,
    PriceInput,
    TierInput,
    plan_create,
    plan_version_copy,
    plan_version_replace_charges,
    price_quote,
)
from apps.catalog.tests.factories import ProductFactory
from apps.core.errors import ValidationFailed

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture(autouse=True)
def payment_volume_metric():
    return BillableMetric.objects.create(code="payments", name="Payments", aggregation="sum", field_name="amount")


def _graduated_percentage(*tiers: TierInput, currency: str = "USD", kind: str = "usage") -> ChargeInput:
    return ChargeInput(
        name="Payment fees",
        kind=kind,
        metric_code="payments" if kind == "usage" else "",
        price_model="graduated_percentage",
        prices=[PriceInput(currency=currency, tiers=list(tiers))],
    )


LAGO_TIERS = (
    TierInput(up_to=D(1000), flat_amount=D(200), percentage=D(1)),
    TierInput(up_to=D(10000), flat_amount=D(300), percentage=D(2)),
    TierInput(up_to=None, flat_amount=D(400), percentage=D(3)),
)
ROUNDED_DOWN = ChargeInput(
    name="Hours",
    price_model="package",
    prices=[PriceInput(currency="USD", amount=D(10), package_size=60, package_rounding="down")],
)
FEE = ChargeInput(name="Fee", price_model="flat", prices=[PriceInput(currency="USD", amount=D("49.00"))])


def _create(*charges: ChargeInput, minimum_commitments=()) -> Plan:
    return plan_create(
        product=ProductFactory(), code="fintech", name="Fintech", charges=list(charges),
        minimum_commitments=list(minimum_commitments),
    )  # fmt: skip


def _nothing_written() -> None:
    assert (Plan.objects.count(), Charge.objects.count(), MinimumCommitment.objects.count()) == (0, 0, 0)


def test_the_new_models_are_stored_quoted_and_copied_with_a_minimum_commitment():
    plan = _create(FEE, ROUNDED_DOWN, _graduated_percentage(*LAGO_TIERS), minimum_commitments=[Money("500", "USD")])

    version = plan.current_version
    hours = version.charges.get(name="Hours").prices.get()
    fees = version.charges.get(name="Payment fees").prices.get()
    assert (hours.package_rounding, hours.to_spec().package_rounding) == ("down", PackageRounding.DOWN)
    assert fees.to_spec().model == PriceModel.GRADUATED_PERCENTAGE
    assert [(t.up_to, t.percentage, t.flat_amount) for t in fees.tiers.order_by("position")] == [
        (D(1000), D(1), D(200)),
        (D(10000), D(2), D(300)),
        (None, D(3), D(400)),
    ]
    assert price_quote(price=hours, quantity=D(150)).amount == D("20.00")  # 2 whole hours
    assert price_quote(price=fees, quantity=D(5050)).amount == D("591.00")  # Lago's total
    assert [(row.currency, row.amount) for row in version.minimum_commitments.all()] == [("USD", D(500))]

    copy = plan_version_copy(version=version)

    assert [(row.currency, row.amount) for row in copy.minimum_commitments.all()] == [("USD", D(500))]
    assert copy.charges.get(name="Hours").prices.get().package_rounding == "down"
    assert list(
        PriceTier.objects.filter(price__charge__plan_version=copy).order_by("position").values_list("percentage")
    ) == [(D(1),), (D(2),), (D(3),)]


@pytest.mark.parametrize(
    ("charges", "commitments", "errors"),
    [
        (
            [_graduated_percentage(TierInput(up_to=D(1000), percentage=D(150)), TierInput(up_to=None))],
            [],
            {"charges.0.prices.0.tiers.0.percentage": ["Tier 1: the percentage must be between 0 and 100."]},
        ),
        (
            [_graduated_percentage(TierInput(up_to=D(1000)), TierInput(up_to=D(500)), TierInput(up_to=None))],
            [],
            {"charges.0.prices.0.tiers.1.up_to": ["Tier 2 must end above tier 1, which ends at 1,000.00 USD."]},
        ),
        (
            [_graduated_percentage(*LAGO_TIERS, kind="recurring")],
            [],
            {
                "charges.0.price_model": [
                    "A graduated percentage price takes a share of usage amounts: use it on a usage charge."
                ]
            },
        ),
        (
            [ChargeInput(name="Seats", prices=[PriceInput(currency="USD", amount=D(5), package_rounding="down")])],
            [],
            {"charges.0.prices.0.package_rounding": ["A per-unit price does not use rounding down; only package "
                                                     "prices do."]},
        ),
        (
            [
                ChargeInput(
                    name="Hours", price_model="package", prices=[PriceInput(currency="USD", package_rounding="x")]
                )
            ],
            [],
            {"charges.0.prices.0.package_rounding": ["A package price rounds up or down."]},
        ),
        (
            [FEE],
            [Money("100", "EUR")],
            {
                "minimum_commitments.0.currency": [
                    "The plan is not priced in EUR (its charges are priced in USD): a minimum commitment must be in "
                    "a currency its subscribers are billed in."
                ]
            },
        ),
        (
            [FEE],
            [Money("100", "USD"), Money("200", "USD")],
            {"minimum_commitments.1.currency": ["The version already has a minimum commitment in USD."]},
        ),
        (
            [FEE],
            [Money("0", "USD")],
            {"minimum_commitments.0.amount": ["A minimum commitment is more than 0; leave it out for none."]},
        ),
        (
            [FEE],
            [Money("10.005", "USD")],
            {"minimum_commitments.0.amount": ["A minimum commitment in USD has at most the currency's decimals."]},
        ),
    ],
)  # fmt: skip
def test_bad_new_prices_and_commitments_are_refused_on_their_field_and_nothing_is_written(charges, commitments, errors):
    with pytest.raises(ValidationFailed) as excinfo:
        _create(*charges, minimum_commitments=commitments)

    assert excinfo.value.fields == errors
    _nothing_written()


def test_replacing_charges_keeps_the_commitments_unless_given_and_refuses_one_the_new_charges_do_not_price():
    plan = _create(FEE, minimum_commitments=[Money("100", "USD")])
    version = plan.current_version
    euro_fee = ChargeInput(name="Fee", price_model="flat", prices=[PriceInput(currency="EUR", amount=D(45))])

    with pytest.raises(ValidationFailed) as excinfo:
        plan_version_replace_charges(version=version, charges=[euro_fee])

    assert list(excinfo.value.fields) == ["minimum_commitments.0.currency"]
    assert [charge.prices.get().currency for charge in version.charges.all()] == ["USD"]  # unchanged

    plan_version_replace_charges(version=version, charges=[euro_fee], minimum_commitments=[Money("90", "EUR")])

    version = PlanVersion.objects.get(pk=version.pk)
    assert [(row.currency, row.amount) for row in version.minimum_commitments.all()] == [("EUR", D(90))]
