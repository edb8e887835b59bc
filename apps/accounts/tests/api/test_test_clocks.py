import pytest
from django.urls import reverse
from djmoney.money import Money

from apps.accounts.models import Customer, SimulatedClock
from apps.catalog.tests.factories import PlanFactory
from apps.invoices.models import Invoice

pytestmark = pytest.mark.django_db

CLOCKS_URL = reverse("api:test-clock-list")


def test_create_a_clock_attach_a_customer_subscribe_and_advance(api_client, superuser):
    api_client.force_authenticate(superuser)
    plan = PlanFactory(prices=[Money("10.00", "USD")])

    clock = api_client.post(CLOCKS_URL, {"name": "Demo", "frozen_at": "2026-01-31T12:00:00Z"})
    assert clock.status_code == 201, clock.data
    clock_id = clock.json()["id"]
    customer = api_client.post(
        reverse("api:customer-list"),
        {"name": "Test Co", "email": "t@example.com", "country": "US", "currency": "USD", "test_clock": clock_id},
    )
    assert customer.status_code == 201, customer.data
    assert customer.json()["test_clock"] == clock_id
    subscription = api_client.post(
        reverse("api:subscription-list"), {"customer": customer.json()["id"], "plan": plan.pk}
    )
    assert subscription.status_code == 201, subscription.data
    assert subscription.json()["started_at"] == "2026-01-31T12:00:00Z"  # the clock's time, not the real one

    advanced = api_client.post(
        reverse("api:test-clock-advance", args=[clock_id]), {"frozen_at": "2026-04-01T00:00:00Z"}
    )

    assert advanced.status_code == 200, advanced.data
    assert (advanced.json()["frozen_at"], advanced.json()["customer_count"]) == ("2026-04-01T00:00:00Z", 1)
    periods = Invoice.objects.order_by("period_start_at").values_list("period_start_at__date", flat=True)
    assert [str(day) for day in periods] == ["2026-01-31", "2026-02-28", "2026-03-31"]


def test_a_clock_cannot_go_back(api_client, superuser):
    api_client.force_authenticate(superuser)
    clock = SimulatedClock.objects.create(name="C", frozen_at="2026-01-01T00:00:00Z")

    response = api_client.post(
        reverse("api:test-clock-advance", args=[clock.pk]), {"frozen_at": "2025-01-01T00:00:00Z"}
    )

    assert response.status_code == 400
    assert response.json()["fields"] == {"frozen_at": ["Choose a time after 2026-01-01 00:00 UTC."]}


@pytest.mark.parametrize(
    ("perms", "expected"),
    [
        ([], 403),
        (["accounts.view_simulatedclock"], 403),
        (["accounts.view_simulatedclock", "accounts.change_simulatedclock"], 200),
    ],
)
def test_advance_permission_matrix(api_client, make_staff, perms, expected):
    clock = SimulatedClock.objects.create(name="C", frozen_at="2026-01-01T00:00:00Z")
    api_client.force_authenticate(make_staff(*perms))

    response = api_client.post(
        reverse("api:test-clock-advance", args=[clock.pk]), {"frozen_at": "2026-02-01T00:00:00Z"}
    )

    assert response.status_code == expected
    assert Customer.objects.count() == 0
