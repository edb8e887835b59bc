"""The catalog API for pooled allowances: created and shown on a usage charge; bad input is a 400 on
its field and writes nothing (docs/pricing.md, "Pooled allowances")."""

import pytest
from django.urls import reverse

from apps.catalog.models import BillableMetric, Charge, PlanVersion
from apps.catalog.tests.factories import PlanFactory

pytestmark = pytest.mark.django_db

VERSIONS_URL = reverse("api:plan-version-list")
FEE = {"name": "SIM fee", "price_model": "flat", "prices": [{"currency": "USD", "amount": "3.00"}]}


@pytest.fixture(autouse=True)
def metrics():
    BillableMetric.objects.create(code="data_gb", name="Data", aggregation="sum", field_name="gb")
    BillableMetric.objects.create(code="peak_gb", name="Peak", aggregation="max", field_name="gb")
    BillableMetric.objects.create(code="regional_gb", name="Regional", aggregation="sum", field_name="gb",
                                  group_by="region")  # fmt: skip


def _data(**changes):
    return {
        "name": "Data", "kind": "usage", "metric_code": "data_gb", "price_model": "per_unit",
        "pooled_allowance": "1", "prices": [{"currency": "USD", "amount": "2.00"}], **changes,
    }  # fmt: skip


def test_a_pooled_charge_is_created_and_read_back(api_client, superuser):
    api_client.force_authenticate(superuser)

    response = api_client.post(VERSIONS_URL, {"plan": PlanFactory(prices=[]).pk, "charges": [FEE, _data()]})

    assert response.status_code == 201, response.data
    assert [charge["pooled_allowance"] for charge in response.json()["charges"]] == [None, "1"]
    assert Charge.objects.get(name="Data").pooled_allowance == 1


@pytest.mark.parametrize(
    ("charge", "field", "message"),
    [
        ({**FEE, "pooled_allowance": "1"}, "charges.0.pooled_allowance",
         "Only usage charges have a pooled allowance; leave it empty on a recurring charge."),
        (_data(pooled_allowance="0"), "charges.0.pooled_allowance",
         "Ensure this value is greater than or equal to 0.000001."),
        (_data(pooled_allowance="0.0000001"), "charges.0.pooled_allowance",
         "Ensure that there are no more than 6 decimal places."),
        (_data(metric_code="peak_gb"), "charges.0.pooled_allowance",
         "The metric 'peak_gb' aggregates by highest value of a property; a pool is consumed event by event, so "
         "it needs a count or sum metric."),
        (_data(metric_code="regional_gb"), "charges.0.pooled_allowance",
         "The metric 'regional_gb' is grouped by 'region'; a pooled charge needs an ungrouped metric."),
        (_data(prices=[{"currency": "USD", "amount": "2.00", "included_units": "5"}]),
         "charges.0.prices.0.included_units",
         "A pooled charge's allowance replaces included units: leave them at 0."),
    ],
)  # fmt: skip
def test_a_bad_pooled_allowance_is_a_400_on_its_field_and_writes_nothing(api_client, superuser, charge, field, message):
    api_client.force_authenticate(superuser)

    response = api_client.post(VERSIONS_URL, {"plan": PlanFactory(prices=[]).pk, "charges": [charge]})

    assert response.status_code == 400, response.data
    assert message in response.json()["fields"][field], response.json()
    assert not PlanVersion.objects.exists()
    assert not Charge.objects.exists()


def test_a_pool_code_is_created_and_read_back_and_plans_of_one_interval_share_it(api_client, superuser):
    api_client.force_authenticate(superuser)
    small, large = PlanFactory(prices=[], name="SIM 1 GB"), PlanFactory(prices=[], name="SIM 5 GB")

    first = api_client.post(VERSIONS_URL, {"plan": small.pk, "charges": [FEE, _data(pool_code="fleet-data")]})
    second = api_client.post(
        VERSIONS_URL, {"plan": large.pk, "charges": [FEE, _data(pool_code="fleet-data", pooled_allowance="5")]}
    )

    assert (first.status_code, second.status_code) == (201, 201), (first.data, second.data)
    assert [charge["pool_code"] for charge in second.json()["charges"]] == ["", "fleet-data"]
    assert sorted(Charge.objects.filter(pool_code="fleet-data").values_list("pooled_allowance", flat=True)) == [1, 5]


@pytest.mark.parametrize(
    ("charges", "field", "message"),
    [
        ([{**FEE, "pool_code": "fleet-data"}], "charges.0.pool_code",
         "Only a charge with a pooled allowance names a pool: give the charge the allowance each subscription adds "
         "to the pool, or leave the pool code empty."),
        ([_data(pooled_allowance=None, pool_code="fleet-data")], "charges.0.pool_code",
         "Only a charge with a pooled allowance names a pool: give the charge the allowance each subscription adds "
         "to the pool, or leave the pool code empty."),
        ([_data(pool_code="Fleet Data")], "charges.0.pool_code",
         "A pool code uses lower-case letters, digits, '.', '_' and '-' only."),
        ([_data(pool_code="fleet-data"), _data(name="More data", pool_code="fleet-data")], "charges.1.pool_code",
         "The charge 'Data' of this version already names the pool 'fleet-data': a plan adds to a pool with one "
         "charge."),
        ([_data(metric_code="calls", pool_code="fleet-data")], "charges.0.pool_code",
         "The pool 'fleet-data' adds up the metric 'data_gb' (plan SIM 1 GB); this charge bills 'calls'. A pool is "
         "one metric's: use another pool code, or the metric 'data_gb'."),
    ],
)  # fmt: skip
def test_a_bad_pool_code_is_a_400_on_its_field_and_writes_nothing(api_client, superuser, charges, field, message):
    BillableMetric.objects.create(code="calls", name="Calls", aggregation="count")
    api_client.force_authenticate(superuser)
    existing = PlanFactory(prices=[], name="SIM 1 GB")
    assert (
        api_client.post(VERSIONS_URL, {"plan": existing.pk, "charges": [_data(pool_code="fleet-data")]}).status_code
        == 201
    )
    plan = PlanFactory(prices=[])

    response = api_client.post(VERSIONS_URL, {"plan": plan.pk, "charges": charges})

    assert response.status_code == 400, response.data
    assert message in response.json()["fields"][field], response.json()
    assert not PlanVersion.objects.filter(plan=plan).exists()
    assert Charge.objects.count() == 1


def test_plans_billed_on_other_intervals_cannot_share_a_pool(api_client, superuser):
    api_client.force_authenticate(superuser)
    monthly = PlanFactory(prices=[], name="SIM monthly")
    yearly = PlanFactory(prices=[], name="SIM yearly", interval="year")
    assert (
        api_client.post(VERSIONS_URL, {"plan": monthly.pk, "charges": [_data(pool_code="fleet-data")]}).status_code
        == 201
    )

    response = api_client.post(
        VERSIONS_URL, {"plan": yearly.pk, "charges": [_data(pool_code="fleet-data", pooled_allowance="12")]}
    )
    other_pool = api_client.post(
        VERSIONS_URL, {"plan": yearly.pk, "charges": [_data(pool_code="fleet-data-yearly", pooled_allowance="12")]}
    )

    assert response.status_code == 400, response.data
    assert response.json()["fields"]["charges.0.pool_code"] == [
        "The pool 'fleet-data' is shared by the plan SIM monthly, billed monthly; this plan is billed yearly. A pool "
        "is settled once per billing period, so the plans of one pool bill on the same interval: use a pool per "
        "interval."
    ]
    assert other_pool.status_code == 201, other_pool.data
    assert list(PlanVersion.objects.filter(plan=yearly).values_list("charges__pool_code", flat=True)) == [
        "fleet-data-yearly"
    ]
