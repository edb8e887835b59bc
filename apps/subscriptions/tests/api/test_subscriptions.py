import pytest
from django.urls import reverse
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.catalog.tests.factories import PlanFactory
from apps.core import clock
from apps.invoices.models import Invoice
from apps.subscriptions.models import Subscription
from apps.subscriptions.periods import utc
from apps.subscriptions.tests.factories import make_subscription

pytestmark = pytest.mark.django_db

LIST_URL = reverse("api:subscription-list")
NOW = utc(2026, 3, 10, 12)


def test_create_subscription_invoices_the_first_period_at_once(api_client, superuser):
    customer = CustomerFactory(currency="USD")
    plan = PlanFactory()
    api_client.force_authenticate(superuser)

    with clock.frozen_at(NOW):
        response = api_client.post(LIST_URL, {"customer": customer.pk, "plan": plan.pk, "quantity": 3})

    assert response.status_code == 201, response.data
    subscription = Subscription.objects.get()
    invoice = Invoice.objects.get()
    body = response.json()
    assert body == {
        "id": subscription.pk,
        "customer": customer.pk,
        "plan": plan.pk,
        "plan_version": plan.current_version.pk,
        "plan_version_number": 1,
        "pending_plan_version": None,
        "quantity": 3,
        "currency": "USD",
        "status": "active",
        "billing_anchor_at": "2026-03-10T12:00:00Z",
        "started_at": "2026-03-10T12:00:00Z",
        "trial_end_at": None,
        "paused_at": None,
        "current_period_start_at": "2026-03-10T12:00:00Z",
        "current_period_end_at": "2026-04-10T12:00:00Z",
        "next_billing_at": "2026-04-10T12:00:00Z",
        "cancel_at_period_end": False,
        "canceled_at": None,
        "ended_at": None,
        "cancellation_reason": "",
        "price_overrides": [],
        "progressive_billing": {
            "custom": False,
            "currency": "USD",
            "thresholds": [],
            "every": None,
            "scope": "period",
            "enabled": False,
        },
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
        "invoices": [body["invoices"][0]],
    }
    assert body["invoices"][0]["id"] == invoice.pk
    assert body["invoices"][0]["number"] == "INV-2026-000001"
    assert body["invoices"][0]["status"] == "open"
    assert body["invoices"][0]["total"] == {"amount": "147.00", "currency": "USD"}
    assert invoice.total == Money("147.00", "USD")


def test_create_subscription_started_in_the_past_catches_up(api_client, superuser):
    customer = CustomerFactory(currency="EUR")
    plan = PlanFactory()
    api_client.force_authenticate(superuser)

    with clock.frozen_at(NOW):
        response = api_client.post(
            LIST_URL, {"customer": customer.pk, "plan": plan.pk, "started_at": "2026-01-10T12:00:00Z"}
        )

    assert response.status_code == 201, response.data
    assert [row["total"] for row in response.json()["invoices"]] == [{"amount": "45.00", "currency": "EUR"}] * 3
    assert response.json()["next_billing_at"] == "2026-04-10T12:00:00Z"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"customer": 999999}, "customer"),
        ({"plan": 999999}, "plan"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": "many"}, "quantity"),
        ({"started_at": "yesterday"}, "started_at"),
        ({"currency_customer": True}, "plan"),  # customer billed in GBP; the plan has no GBP price
        ({"archived_plan": True}, "plan"),
    ],
)
def test_create_subscription_with_bad_input_is_refused_and_writes_nothing(api_client, superuser, changes, field):
    customer = CustomerFactory(currency="USD")
    plan = PlanFactory()
    payload = {"customer": customer.pk, "plan": plan.pk, "quantity": 1}
    if changes.pop("currency_customer", False):
        payload["customer"] = CustomerFactory(currency="GBP").pk
    if changes.pop("archived_plan", False):
        payload["plan"] = PlanFactory(is_archived=True).pk
    payload.update(changes)
    api_client.force_authenticate(superuser)

    with clock.frozen_at(NOW):
        response = api_client.post(LIST_URL, payload)

    assert response.status_code == 400, response.data
    body = response.json()
    assert body["code"] == "invalid"
    assert field in body["fields"], body
    assert (Subscription.objects.count(), Invoice.objects.count()) == (0, 0)


def test_currency_mismatch_message_names_the_available_currencies(api_client, superuser):
    customer = CustomerFactory(currency="GBP")
    plan = PlanFactory()
    api_client.force_authenticate(superuser)

    response = api_client.post(LIST_URL, {"customer": customer.pk, "plan": plan.pk})

    assert response.json()["fields"] == {"plan": ["This plan has no price in GBP (it is priced in: EUR, USD)."]}


def test_list_subscriptions_filters(api_client, superuser):
    customer = CustomerFactory()
    plan = PlanFactory()
    mine = make_subscription(customer=customer, plan=plan, started_at=utc(2026, 1, 1))
    other = make_subscription(started_at=utc(2026, 2, 1))
    Subscription.objects.filter(pk=other.pk).update(status="canceled")
    api_client.force_authenticate(superuser)

    def ids(params):
        response = api_client.get(LIST_URL, params)
        assert response.status_code == 200, response.data
        return [row["id"] for row in response.json()["results"]]

    assert ids({}) == [other.pk, mine.pk]
    assert ids({"customer": customer.pk}) == [mine.pk]
    assert ids({"plan": plan.pk}) == [mine.pk]
    assert ids({"status": "canceled"}) == [other.pk]
    assert ids({"status": "active"}) == [mine.pk]
    assert api_client.get(reverse("api:subscription-detail", args=[mine.pk])).json()["quantity"] == 1


def test_list_subscriptions_runs_a_bounded_number_of_queries(api_client, superuser, django_assert_max_num_queries):
    plan = PlanFactory()
    for _ in range(20):
        make_subscription(plan=plan, started_at=utc(2026, 1, 1))
    api_client.force_authenticate(superuser)

    with django_assert_max_num_queries(4):
        response = api_client.get(LIST_URL)

    assert len(response.json()["results"]) == 20


@pytest.mark.parametrize(
    ("method", "perms", "expected"),
    [
        ("get", None, 401),
        ("get", [], 403),
        ("get", ["subscriptions.view_subscription"], 200),
        ("post", None, 401),
        ("post", ["subscriptions.view_subscription"], 403),
        ("post", ["subscriptions.add_subscription"], 201),
    ],
)
def test_subscription_permission_matrix(api_client, make_staff, method, perms, expected):
    customer = CustomerFactory()
    plan = PlanFactory()
    if perms is not None:
        api_client.force_authenticate(make_staff(*perms))

    if method == "get":
        response = api_client.get(LIST_URL)
    else:
        response = api_client.post(LIST_URL, {"customer": customer.pk, "plan": plan.pk})

    assert response.status_code == expected, response.data
