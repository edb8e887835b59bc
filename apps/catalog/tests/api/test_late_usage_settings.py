"""The catalog settings of late and trial usage: a metric's lateness window and a plan's trial usage rule."""

import pytest
from django.urls import reverse

from apps.catalog.models import BillableMetric, Plan
from apps.catalog.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("given", "status", "stored"), [(None, 201, 3), (0, 201, 0), (7, 201, 7), (32, 400, None)])
def test_a_metric_has_a_lateness_window_of_0_to_31_days(api_client, superuser, given, status, stored):
    api_client.force_authenticate(superuser)
    body = {"code": "gb", "name": "GB", "aggregation": "sum", "field_name": "gb"}
    if given is not None:
        body["lateness_window_days"] = given

    response = api_client.post(reverse("api:billable-metric-list"), body, format="json")

    assert response.status_code == status, response.data
    if stored is None:
        assert list(response.json()["fields"]) == ["lateness_window_days"]
        assert not BillableMetric.objects.exists()
    else:
        assert response.json()["lateness_window_days"] == stored
        assert BillableMetric.objects.get().lateness_window_days == stored


@pytest.mark.parametrize(("given", "status"), [("billed_after_trial", 201), ("free", 201), ("sometimes", 400)])
def test_a_plan_says_what_becomes_of_trial_usage(api_client, superuser, given, status):
    product = ProductFactory()
    api_client.force_authenticate(superuser)

    response = api_client.post(
        reverse("api:plan-list"),
        {"product": product.pk, "code": "iot", "name": "IoT", "trial_days": 14, "trial_usage": given,
         "prices": [{"amount": "5.00", "currency": "USD"}]},
        format="json",
    )  # fmt: skip

    assert response.status_code == status, response.data
    if status == 201:
        assert response.json()["trial_usage"] == given
        assert Plan.objects.get().trial_usage == given
    else:
        assert list(response.json()["fields"]) == ["trial_usage"]
        assert not Plan.objects.exists()


def test_staff_set_the_window_and_the_trial_rule_in_the_admin(client, superuser):
    client.force_login(superuser)
    add_url = reverse("admin:catalog_billablemetric_add")

    created = client.post(add_url, {"code": "gb", "name": "GB", "aggregation": "sum", "field_name": "gb",
                                    "filters": "{}", "lateness_window_days": "5"})  # fmt: skip
    metric = BillableMetric.objects.get()
    changed = client.post(
        reverse("admin:catalog_billablemetric_change", args=[metric.pk]),
        {"name": "GB", "description": "", "lateness_window_days": "0"},
    )
    too_long = client.post(
        reverse("admin:catalog_billablemetric_change", args=[metric.pk]),
        {"name": "GB", "description": "", "lateness_window_days": "40"},
    )

    assert (created.status_code, changed.status_code, too_long.status_code) == (302, 302, 200)
    assert "Ensure this value is less than or equal to 31." in too_long.content.decode()
    metric.refresh_from_db()
    assert metric.lateness_window_days == 0
    plan_page = client.get(reverse("admin:catalog_plan_add"))
    assert b'name="trial_usage"' in plan_page.content
