"""The catalog API for peak and off-peak prices: peak hours on a usage charge and a peak price, created
and shown; bad input is a 400 on its field and writes nothing (docs/pricing.md, "Peak and off-peak
prices")."""

import pytest
from django.urls import reverse

from apps.catalog.models import BillableMetric, Charge, PlanVersion, Price
from apps.catalog.tests.factories import PlanFactory

pytestmark = pytest.mark.django_db

VERSIONS_URL = reverse("api:plan-version-list")
FEE = {"name": "Fee", "price_model": "flat", "prices": [{"currency": "USD", "amount": "3.00"}]}
DEFAULT = {"currency": "USD", "amount": "0.05"}
PEAK = {"currency": "USD", "amount": "0.10", "time_window": "peak"}


@pytest.fixture(autouse=True)
def metrics():
    BillableMetric.objects.create(code="transfer_gb", name="Transfer", aggregation="sum", field_name="gb")
    BillableMetric.objects.create(code="users", name="Users", aggregation="unique_count", field_name="user")
    BillableMetric.objects.create(code="regional_gb", name="Regional", aggregation="sum", field_name="gb",
                                  group_by="region")  # fmt: skip


def _transfer(*prices, **changes):
    return {
        "name": "Transfer", "kind": "usage", "metric_code": "transfer_gb", "price_model": "per_unit",
        "peak_start_hour": 8, "peak_end_hour": 22, "prices": list(prices or [DEFAULT, PEAK]), **changes,
    }  # fmt: skip


def test_peak_hours_and_a_peak_price_are_created_and_read_back(api_client, superuser):
    api_client.force_authenticate(superuser)

    response = api_client.post(VERSIONS_URL, {"plan": PlanFactory(prices=[]).pk, "charges": [_transfer()]})

    assert response.status_code == 201, response.data
    (charge,) = response.json()["charges"]
    assert (charge["peak_start_hour"], charge["peak_end_hour"]) == (8, 22)
    assert [(price["time_window"], price["amount"]) for price in charge["prices"]] == [("", "0.05"), ("peak", "0.10")]


@pytest.mark.parametrize(
    ("charge", "field", "message"),
    [
        ({**FEE, "peak_start_hour": 8, "peak_end_hour": 22}, "charges.0.peak_start_hour",
         "Only usage charges have peak hours; leave them empty on a recurring charge."),
        (_transfer(peak_end_hour=None), "charges.0.peak_end_hour",
         "Give both the hour peak hours start and the hour they end (0–23)."),
        (_transfer(peak_end_hour=24), "charges.0.peak_end_hour",
         "Ensure this value is less than or equal to 23."),
        (_transfer(peak_end_hour=8), "charges.0.peak_end_hour",
         "Peak hours end at another hour than they start (a whole day has no off-peak)."),
        (_transfer(metric_code="users"), "charges.0.peak_start_hour",
         "The metric 'users' aggregates by number of distinct values of a property, which cannot be split by the "
         "hour of the day; peak hours need a count, sum or max metric."),
        (_transfer(metric_code="regional_gb"), "charges.0.peak_start_hour",
         "The metric 'regional_gb' is grouped by 'region'; peak hours need an ungrouped metric."),
        (_transfer(DEFAULT, PEAK, PEAK), "charges.0.prices.2.time_window",
         "The charge already has a peak price in USD."),
        (_transfer(PEAK), "charges.0.prices.0.currency",
         "A peak price in USD needs the charge's default price in USD (for the off-peak hours)."),
        (_transfer(peak_start_hour=None, peak_end_hour=None), "charges.0.prices.1.time_window",
         "The charge has no peak hours: set its peak start and end hours first, or leave this empty."),
        (_transfer(DEFAULT, {**PEAK, "time_window": "night"}), "charges.0.prices.1.time_window",
         '"night" is not a valid choice.'),
        (_transfer(pooled_allowance="1"), "charges.0.peak_start_hour",
         "A pooled charge has no peak hours: give it one price for every hour."),
    ],
)  # fmt: skip
def test_bad_peak_hours_are_a_400_on_their_field_and_write_nothing(api_client, superuser, charge, field, message):
    api_client.force_authenticate(superuser)

    response = api_client.post(VERSIONS_URL, {"plan": PlanFactory(prices=[]).pk, "charges": [charge]})

    assert response.status_code == 400, response.data
    assert message in response.json()["fields"][field], response.json()
    assert (PlanVersion.objects.count(), Charge.objects.count(), Price.objects.count()) == (0, 0, 0)
