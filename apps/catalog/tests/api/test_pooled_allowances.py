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
