import pytest
from django.urls import reverse

from apps.catalog.models import BillableMetric
from apps.catalog.services import billable_metric_create
from apps.core.errors import ValidationFailed

pytestmark = pytest.mark.django_db

METRICS_URL = reverse("api:billable-metric-list")


def test_create_a_metric_with_filters_and_groups():
    metric = billable_metric_create(
        code="storage_gb", name="Storage", aggregation="max", field_name="gb",
        filters={"tier": ["hot", "warm"]}, group_by="region",
    )  # fmt: skip

    metric.refresh_from_db()
    assert (metric.code, metric.aggregation, metric.field_name, metric.group_by) == (
        "storage_gb",
        "max",
        "gb",
        "region",
    )
    assert metric.filters == {"tier": ["hot", "warm"]}
    assert metric.is_archived is False


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"code": "Not Valid"}, "code", "Use lower-case letters, digits, '.', '_' and '-' only."),
        ({"code": "taken"}, "code", "A billable metric with this code already exists."),
        ({"aggregation": "sum"}, "field_name", "Name the event property to sum."),
        ({"field_name": "n"}, "field_name", "Count counts events: leave the field name empty."),
        ({"aggregation": "median", "field_name": "n"}, "aggregation", "Value 'median' is not a valid choice."),
        ({"field_name": "has space", "aggregation": "sum"}, "field_name",
         "Use letters, digits, '.', '_' and '-' only (no spaces)."),
        ({"filters": ["eu"]}, "filters", 'Give filters as {"property": ["allowed", "values"]}.'),
        ({"filters": {"region": []}}, "filters", 'Filter "region": give a non-empty list of allowed values.'),
        ({"filters": {"region": ["eu", 1]}}, "filters", 'Filter "region": allowed values are non-empty strings.'),
        ({"filters": {"region": ["eu", "eu"]}}, "filters", 'Filter "region": a value is listed twice.'),
        ({"group_by": "a b"}, "group_by",
         "Name one event property, or two separated by a comma (e.g. region,tier); letters, digits, '.', '_' and "
         "'-' only."),
        ({"group_by": "region,tier,zone"}, "group_by",
         "Name one event property, or two separated by a comma (e.g. region,tier); letters, digits, '.', '_' and "
         "'-' only."),
        ({"group_by": "region,region"}, "group_by", "Name two different properties to group by."),
        ({"name": ""}, "name", "This field cannot be blank."),
    ],
)  # fmt: skip
def test_bad_metrics_are_refused_on_the_field_concerned(changes, field, message):
    billable_metric_create(code="taken", name="Taken")
    values = {"code": "api_calls", "name": "API calls", **changes}

    with pytest.raises(ValidationFailed) as raised:
        billable_metric_create(**values)

    assert message in raised.value.fields[field]
    assert BillableMetric.objects.count() == 1


def test_staff_create_and_list_metrics_through_the_api(api_client, make_staff):
    api_client.force_authenticate(make_staff("catalog.add_billablemetric", "catalog.view_billablemetric"))

    response = api_client.post(
        METRICS_URL,
        {"code": "api_calls", "name": "API calls", "aggregation": "count", "filters": {"region": ["eu"]}},
        format="json",
    )
    listed = api_client.get(METRICS_URL)

    assert response.status_code == 201, response.data
    body = response.json()
    assert body == {
        "id": BillableMetric.objects.get().pk,
        "code": "api_calls",
        "name": "API calls",
        "description": "",
        "aggregation": "count",
        "field_name": "",
        "filters": {"region": ["eu"]},
        "group_by": "",
        "lateness_window_days": 3,
        "time_unit": "",
        "percentile": None,
        "interval_minutes": None,
        "is_archived": False,
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    assert [metric["code"] for metric in listed.json()["results"]] == ["api_calls"]
    detail = api_client.get(reverse("api:billable-metric-detail", args=[body["id"]]))
    assert detail.json() == body


def test_the_api_refuses_bad_metrics_with_field_errors(api_client, superuser):
    api_client.force_authenticate(superuser)

    response = api_client.post(METRICS_URL, {"code": "gb", "name": "GB", "aggregation": "sum"}, format="json")

    assert response.status_code == 400
    assert response.json()["fields"] == {"field_name": ["Name the event property to sum."]}
    assert not BillableMetric.objects.exists()


@pytest.mark.parametrize(
    ("perms", "list_status", "create_status"),
    [
        (None, 403, 403),
        ((), 403, 403),
        (("catalog.view_billablemetric",), 200, 403),
        (("catalog.view_billablemetric", "catalog.add_billablemetric"), 200, 201),
    ],
)
def test_metric_api_permissions(api_client, make_staff, perms, list_status, create_status):
    if perms is not None:
        api_client.force_authenticate(make_staff(*perms))

    listed = api_client.get(METRICS_URL)
    created = api_client.post(METRICS_URL, {"code": "c", "name": "C", "aggregation": "count"}, format="json")

    assert (listed.status_code, created.status_code) in {(list_status, create_status), (401, 401)}
    assert BillableMetric.objects.count() == (1 if create_status == 201 else 0)


def test_admin_creates_metrics_through_the_service(client, superuser):
    client.force_login(superuser)
    add_url = reverse("admin:catalog_billablemetric_add")

    refused = client.post(add_url, {"code": "gb", "name": "GB", "aggregation": "sum", "filters": "{}"})
    created = client.post(
        add_url, {"code": "gb", "name": "GB", "aggregation": "sum", "field_name": "gb", "filters": '{"tier": ["hot"]}'}
    )
    listed = client.get(reverse("admin:catalog_billablemetric_changelist") + "?q=gb")

    assert refused.status_code == 200
    assert "Name the event property to sum." in refused.content.decode()
    assert created.status_code == 302
    assert BillableMetric.objects.get().filters == {"tier": ["hot"]}
    assert listed.status_code == 200 and b"gb" in listed.content
    change = client.get(reverse("admin:catalog_billablemetric_change", args=[BillableMetric.objects.get().pk]))
    assert change.status_code == 200
