import pytest
from django.urls import reverse

from apps.core import clock
from apps.invoices.models import BillingRun, Invoice
from apps.subscriptions.periods import utc
from apps.subscriptions.tests.factories import make_subscription

pytestmark = pytest.mark.django_db

LIST_URL = reverse("api:billing-run-list")


def test_start_a_billing_run(api_client, superuser):
    make_subscription(started_at=utc(2026, 1, 15, 9))
    make_subscription(started_at=utc(2026, 2, 15, 9))
    api_client.force_authenticate(superuser)

    with clock.frozen_at(utc(2026, 2, 1)):
        response = api_client.post(LIST_URL)

    assert response.status_code == 201, response.data
    run = BillingRun.objects.get()
    body = response.json()
    assert body == {
        "id": run.pk,
        "as_of": "2026-02-01T00:00:00Z",
        "trigger": "api",
        "triggered_by": superuser.pk,
        "status": "succeeded",
        "started_at": "2026-02-01T00:00:00Z",
        "finished_at": body["finished_at"],
        "duration_seconds": body["duration_seconds"],
        "due_count": 1,
        "invoiced_count": 1,
        "skipped_count": 0,
        "failed_count": 0,
        "finalized_count": 0,
        "ended_count": 0,
        "processed_count": 1,
        "chunk_count": 1,
        "chunks_done": 1,
        "progress_percent": 100,
        "statement_count": body["statement_count"],
        "errors": [],
    }
    assert Invoice.objects.count() == 1


def test_list_and_retrieve_billing_runs(api_client, superuser, django_assert_max_num_queries):
    with clock.frozen_at(utc(2026, 2, 1)):
        for _ in range(20):
            api_client.force_authenticate(superuser)
            api_client.post(LIST_URL)
    latest = BillingRun.objects.order_by("-id").first()

    with django_assert_max_num_queries(4):
        response = api_client.get(LIST_URL)

    assert response.status_code == 200
    assert response.json()["count"] == 20
    assert response.json()["results"][0]["id"] == latest.pk
    assert api_client.get(reverse("api:billing-run-detail", args=[latest.pk])).json()["trigger"] == "api"


@pytest.mark.parametrize(
    ("method", "perms", "expected"),
    [
        ("get", None, 401),
        ("get", [], 403),
        ("get", ["invoices.view_billingrun"], 200),
        ("post", None, 401),
        ("post", ["invoices.view_billingrun"], 403),
        ("post", ["invoices.add_invoice"], 403),
        ("post", ["invoices.add_billingrun"], 201),
    ],
)
def test_billing_run_permission_matrix(api_client, make_staff, method, perms, expected):
    if perms is not None:
        api_client.force_authenticate(make_staff(*perms))

    response = api_client.get(LIST_URL) if method == "get" else api_client.post(LIST_URL)

    assert response.status_code == expected
    if method == "post":
        assert BillingRun.objects.count() == (1 if expected == 201 else 0)
