"""The settings of weighted-sum and percentile metrics: required by their aggregation, refused on the
others, with field errors in the API and the admin and nothing saved."""

from decimal import Decimal

import pytest
from django.urls import reverse

from apps.catalog.models import BillableMetric

pytestmark = pytest.mark.django_db

METRICS_URL = reverse("api:billable-metric-list")
WEIGHTED = {"code": "storage", "name": "Storage", "aggregation": "weighted_sum", "field_name": "gb"}
PERCENTILE = {"code": "egress", "name": "Egress", "aggregation": "percentile", "field_name": "mbps"}


def test_the_api_creates_a_weighted_sum_and_a_percentile_metric(api_client, superuser):
    api_client.force_authenticate(superuser)

    weighted = api_client.post(METRICS_URL, {**WEIGHTED, "time_unit": "month"}, format="json")
    percentile = api_client.post(
        METRICS_URL, {**PERCENTILE, "percentile": "95", "interval_minutes": 5, "group_by": "region"}, format="json"
    )

    assert (weighted.status_code, percentile.status_code) == (201, 201), (weighted.data, percentile.data)
    assert {k: weighted.json()[k] for k in ("aggregation", "time_unit", "percentile", "interval_minutes")} == {
        "aggregation": "weighted_sum", "time_unit": "month", "percentile": None, "interval_minutes": None,
    }  # fmt: skip
    assert {k: percentile.json()[k] for k in ("aggregation", "time_unit", "percentile", "interval_minutes")} == {
        "aggregation": "percentile", "time_unit": "", "percentile": "95", "interval_minutes": 5,
    }  # fmt: skip
    stored = BillableMetric.objects.get(code="egress")
    assert (stored.percentile, stored.interval_minutes) == (Decimal(95), 5)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({**PERCENTILE, "percentile": "0", "interval_minutes": 5},
         {"percentile": ["A percentile is above 0 and at most 100."]}),
        ({**PERCENTILE, "percentile": "100.01", "interval_minutes": 5},
         {"percentile": ["A percentile is above 0 and at most 100."]}),
        ({**PERCENTILE, "percentile": "-5", "interval_minutes": 5},
         {"percentile": ["A percentile is above 0 and at most 100."]}),
        ({**PERCENTILE, "interval_minutes": 5},
         {"percentile": ["Give the percentile to bill, above 0 and at most 100 (e.g. 95)."]}),
        ({**PERCENTILE, "percentile": "95"}, {"interval_minutes": ["Give the sample interval in minutes (e.g. 5)."]}),
        ({**PERCENTILE, "percentile": "95", "interval_minutes": 7},
         {"interval_minutes": ["The interval must divide an hour: one of 1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60 "
                               "minutes."]}),
        ({**PERCENTILE, "field_name": "", "percentile": "95", "interval_minutes": 5},
         {"field_name": ["Name the event property to sum per interval (a number, e.g. mbps)."]}),
        ({**WEIGHTED, "field_name": "", "time_unit": "hour"},
         {"field_name": ["Name the event property to weigh by time (a number, e.g. gb)."]}),
        ({**WEIGHTED}, {"time_unit": ["A weighted sum needs a time unit: hour, day or month."]}),
        ({**WEIGHTED, "time_unit": "week"}, {"time_unit": ['"week" is not a valid choice.']}),
        ({**WEIGHTED, "time_unit": "hour", "percentile": "95"},
         {"percentile": ["Only a percentile metric has a percentile: leave it empty."]}),
        ({"code": "gb", "name": "GB", "aggregation": "sum", "field_name": "gb", "time_unit": "hour",
          "interval_minutes": 5},
         {"time_unit": ["Only a weighted sum has a time unit: leave it empty."],
          "interval_minutes": ["Only a percentile metric has a sample interval: leave it empty."]}),
    ],
)  # fmt: skip
def test_the_api_refuses_bad_meter_settings_with_field_errors(api_client, superuser, body, fields):
    api_client.force_authenticate(superuser)

    response = api_client.post(METRICS_URL, body, format="json")

    assert response.status_code == 400
    assert response.json()["fields"] == fields
    assert not BillableMetric.objects.exists()


def _admin_form(**values) -> dict:
    return {"filters": "{}", "lateness_window_days": "3", "time_unit": "", "percentile": "", "interval_minutes": "",
            **values}  # fmt: skip


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({**PERCENTILE, "percentile": "150", "interval_minutes": "5"}, "A percentile is above 0 and at most 100."),
        ({**PERCENTILE, "percentile": "95"}, "Give the sample interval in minutes (e.g. 5)."),
        ({**PERCENTILE, "percentile": "95", "interval_minutes": "7"}, "The interval must divide an hour"),
        ({**WEIGHTED}, "A weighted sum needs a time unit: hour, day or month."),
        ({**WEIGHTED, "field_name": "", "time_unit": "day"}, "Name the event property to weigh by time"),
    ],
)
def test_the_admin_shows_bad_meter_settings_on_the_form_and_saves_nothing(client, superuser, values, message):
    client.force_login(superuser)

    response = client.post(reverse("admin:catalog_billablemetric_add"), _admin_form(**values))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not BillableMetric.objects.exists()


def test_the_admin_creates_a_percentile_metric(client, superuser):
    client.force_login(superuser)

    response = client.post(
        reverse("admin:catalog_billablemetric_add"), _admin_form(**PERCENTILE, percentile="95", interval_minutes="5")
    )

    assert response.status_code == 302
    metric = BillableMetric.objects.get()
    assert (metric.aggregation, metric.percentile, metric.interval_minutes, metric.time_unit) == (
        "percentile", Decimal(95), 5, "",
    )  # fmt: skip
