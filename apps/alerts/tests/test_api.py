"""`/api/v1/alerts`, `/api/v1/alert-crossings` and `/api/v1/customers/{id}/spend-status`."""

import pytest

from apps.alerts.models import Alert
from apps.alerts.services import alert_create, alerts_evaluate_customer
from apps.catalog.services import billable_metric_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(api_client, superuser):
    api_client.force_authenticate(superuser)
    return api_client


def test_create_an_alert(staff_client, world):
    response = staff_client.post(
        "/api/v1/alerts",
        {
            "customer": world.a.customer.pk,
            "subscription": world.a.subscription.pk,
            "kind": "usage",
            "metric": "api_calls",
            "thresholds": ["1000", "250.5", 500],
            "name": "API volume",
            "is_hard_limit": True,
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    alert = Alert.objects.get()
    assert {key: body[key] for key in body if key not in {"created_at", "updated_at"}} == {
        "id": alert.pk,
        "customer": world.a.customer.pk,
        "subscription": world.a.subscription.pk,
        "kind": "usage",
        "metric": "api_calls",
        "thresholds": ["250.5", "500", "1000"],
        "name": "API volume",
        "origin": "staff",
        "is_hard_limit": True,
        "is_active": True,
    }


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"thresholds": ["-1"]}, {"thresholds": ["Each threshold must be a number above zero (got -1)."]}),
        (
            {"metric": "storage_gb"},
            {"metric": ["The metric storage_gb is not on the plan of the customer's subscriptions."]},
        ),
        ({"kind": "budget"}, {"kind": ['"budget" is not a valid choice.']}),
        ({"customer": 999999}, {"customer": ['Invalid pk "999999" - object does not exist.']}),
        ({"kind": "spend", "metric": "api_calls"}, {"metric": ["Leave the metric empty for a spend alert."]}),
    ],
)
def test_bad_input_is_a_400_with_field_errors_and_nothing_saved(staff_client, world, body, fields):
    billable_metric_create(code="storage_gb", name="Storage", aggregation="max", field_name="gb")
    request = {"customer": world.a.customer.pk, "kind": "usage", "metric": "api_calls", "thresholds": ["5"]}

    response = staff_client.post("/api/v1/alerts", {**request, **body}, format="json")

    assert response.status_code == 400
    assert response.json()["fields"] == fields
    assert Alert.objects.count() == 0


def test_a_repeated_idempotency_key_creates_one_alert(staff_client, world):
    body = {"customer": world.a.customer.pk, "kind": "spend", "thresholds": ["100"]}

    first = staff_client.post("/api/v1/alerts", body, format="json", HTTP_IDEMPOTENCY_KEY="alert-1")
    second = staff_client.post("/api/v1/alerts", body, format="json", HTTP_IDEMPOTENCY_KEY="alert-1")

    assert (first.status_code, second.status_code) == (201, 201)
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert Alert.objects.count() == 1


def test_list_filters_and_pages(staff_client, world):
    a = alert_create(customer=world.a.customer, kind="spend", thresholds=["100"])
    b = alert_create(customer=world.b.customer, kind="usage", metric="api_calls", thresholds=["5"], origin="customer")
    c = alert_create(customer=world.b.customer, kind="spend", thresholds=["10"], is_active=False)

    def ids(query):
        response = staff_client.get(f"/api/v1/alerts{query}")
        assert response.status_code == 200, response.json()
        return [row["id"] for row in response.json()["results"]]

    assert ids("") == [a.pk, b.pk, c.pk]
    assert ids(f"?customer={world.b.customer.pk}") == [b.pk, c.pk]
    assert ids("?kind=usage&metric=api_calls") == [b.pk]
    assert ids("?origin=customer") == [b.pk]
    assert ids("?is_active=false") == [c.pk]
    page = staff_client.get("/api/v1/alerts?page_size=2&page=2").json()
    assert (page["count"], [row["id"] for row in page["results"]]) == (3, [c.pk])
    assert staff_client.get("/api/v1/alerts?kind=budget").status_code == 400


def test_change_and_delete(staff_client, world):
    alert = alert_create(customer=world.a.customer, kind="spend", thresholds=["100"])

    changed = staff_client.patch(f"/api/v1/alerts/{alert.pk}", {"thresholds": ["50", "75"]}, format="json")
    refused = staff_client.patch(f"/api/v1/alerts/{alert.pk}", {"kind": "usage", "thresholds": ["1"]}, format="json")
    negative = staff_client.patch(f"/api/v1/alerts/{alert.pk}", {"thresholds": ["-50"]}, format="json")

    assert (changed.status_code, changed.json()["thresholds"]) == (200, ["50", "75"])
    assert (refused.status_code, refused.json()["fields"]) == (400, {"kind": ["This field cannot be changed."]})
    assert negative.status_code == 400
    alert.refresh_from_db()
    assert (alert.kind, alert.thresholds) == ("spend", ["50", "75"])
    assert staff_client.delete(f"/api/v1/alerts/{alert.pk}").status_code == 204
    assert Alert.objects.count() == 0


def test_spend_status_and_crossings(staff_client, world):
    alert = alert_create(customer=world.a.customer, kind="spend", thresholds=["49"], is_hard_limit=True)
    before = staff_client.get(f"/api/v1/customers/{world.a.customer.pk}/spend-status").json()
    [crossing] = alerts_evaluate_customer(customer_id=world.a.customer.pk)

    after = staff_client.get(f"/api/v1/customers/{world.a.customer.pk}/spend-status").json()
    crossings = staff_client.get(f"/api/v1/alert-crossings?alert={alert.pk}").json()["results"]

    assert (before["usage_blocked"], before["limits_reached"]) == (False, [])
    assert after["usage_blocked"] is True
    assert after["as_of"] == "2026-03-16T00:00:00Z"
    assert [(row["id"], row["threshold"], row["value"], row["currency"], row["is_limit"]) for row in crossings] == [
        (crossing.pk, "49.000000", "49.060000000000", "USD", True)
    ]
    assert after["limits_reached"] == crossings
    assert staff_client.get("/api/v1/customers/999999/spend-status").status_code == 404
