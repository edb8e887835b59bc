from datetime import timedelta

import pytest
from django.urls import reverse

from apps.accounts.credentials import api_key_create, api_key_revoke
from apps.accounts.models import ApiKey
from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import subscription_start
from apps.catalog.models import PlanVersion
from apps.catalog.services import billable_metric_create
from apps.catalog.tests.factories import PlanFactory, add_charge
from apps.core import clock
from apps.subscriptions.periods import utc
from apps.usage.models import UsageEvent

pytestmark = pytest.mark.django_db

NOW = utc(2026, 4, 10, 12)


@pytest.fixture
def setup():
    billable_metric_create(code="api_calls", name="API calls")
    billable_metric_create(code="storage_gb", name="Storage", aggregation="max", field_name="gb")
    customer = CustomerFactory(currency="USD", external_id="acme")
    plan = PlanFactory(prices=[])
    version = PlanVersion.objects.create(plan=plan, number=1)
    add_charge(version, name="Fee", price_model="flat", amount=1)
    add_charge(version, name="Calls", kind="usage", metric_code="api_calls", price_model="per_unit", amount=1)
    subscription_start(customer=customer, plan=plan, now=utc(2026, 4, 1))
    _, raw_key = api_key_create(name="pipeline")
    return customer, raw_key


def _event(transaction_id, **overrides):
    event = {
        "transaction_id": transaction_id, "external_customer_id": "acme", "metric_code": "api_calls",
        "timestamp": (NOW - timedelta(hours=1)).isoformat(), "properties": {},
    }  # fmt: skip
    return {**event, **overrides}


def test_one_event_then_its_replay(api_client, setup):
    _, raw_key = setup
    auth = {"Authorization": f"Bearer {raw_key}"}

    with clock.frozen_at(NOW):
        first = api_client.post(reverse("api:event-create"), _event("t-1"), headers=auth)
        replay = api_client.post(reverse("api:event-create"), _event("t-1"), headers=auth)

    assert (first.status_code, first.json()) == (202, {"transaction_id": "t-1", "duplicate": False})
    assert (replay.status_code, replay.json()["duplicate"]) == (202, True)
    assert UsageEvent.objects.count() == 1


def test_a_refused_single_event_says_why(api_client, setup):
    _, raw_key = setup

    with clock.frozen_at(NOW):
        response = api_client.post(
            reverse("api:event-create"), _event("t-2", external_customer_id="nobody"),
            headers={"Authorization": f"Bearer {raw_key}"},
        )  # fmt: skip

    assert response.status_code == 400
    assert response.json()["code"] == "unknown_customer"
    assert "nobody" in response.json()["message"]
    assert not UsageEvent.objects.exists()


def test_a_batch_stores_the_good_events_and_explains_each_bad_one(api_client, setup):
    _, raw_key = setup
    events = [
        _event("ok-1"),
        _event("bad-customer", external_customer_id="nobody"),
        _event("bad-metric", metric_code="nope"),
        _event("too-old", timestamp=(NOW - timedelta(days=400)).isoformat()),
        _event("not-a-number", metric_code="storage_gb", properties={"gb": "lots"}),
        _event("ok-2"),
        _event("ok-1"),  # replayed within the batch
    ]

    with clock.frozen_at(NOW):
        response = api_client.post(
            reverse("api:event-batch"), {"events": events}, headers={"Authorization": f"Bearer {raw_key}"}
        )

    assert response.status_code == 200, response.data
    body = response.json()
    assert (body["accepted"], body["duplicates"]) == (2, 1)
    assert [(r["index"], r["transaction_id"], r["code"]) for r in body["rejected"]] == [
        (1, "bad-customer", "unknown_customer"),
        (2, "bad-metric", "unknown_metric"),
        (3, "too-old", body["rejected"][2]["code"]),
        (4, "not-a-number", body["rejected"][3]["code"]),
    ]
    assert all(r["reason"] for r in body["rejected"])
    assert set(UsageEvent.objects.values_list("transaction_id", flat=True)) == {"ok-1", "ok-2"}


@pytest.mark.parametrize("payload", [{"events": []}, {"events": "x"}, {}, {"events": [{}] * 1001}])
def test_malformed_batches_are_refused(api_client, setup, payload):
    _, raw_key = setup
    response = api_client.post(reverse("api:event-batch"), payload, headers={"Authorization": f"Bearer {raw_key}"})
    assert response.status_code == 400
    assert "events" in response.json()["fields"]
    assert not UsageEvent.objects.exists()


def test_ingestion_needs_a_valid_api_key(api_client, setup, superuser):
    _, raw_key = setup
    url = reverse("api:event-batch")

    assert api_client.post(url, {"events": [_event("a")]}).status_code == 401
    assert (
        api_client.post(url, {"events": [_event("a")]}, headers={"Authorization": "Bearer bp_x_y"}).status_code == 401
    )
    api_client.force_authenticate(superuser)  # staff are not an ingestion client
    assert api_client.post(url, {"events": [_event("a")]}).status_code == 403
    api_client.force_authenticate(None)
    api_key_revoke(api_key_id=ApiKey.objects.get().pk)
    assert (
        api_client.post(url, {"events": [_event("a")]}, headers={"Authorization": f"Bearer {raw_key}"}).status_code
        == 401
    )
    assert not UsageEvent.objects.exists()


def test_customer_usage_so_far(api_client, setup, superuser):
    customer, raw_key = setup
    with clock.frozen_at(NOW):
        api_client.post(
            reverse("api:event-batch"), {"events": [_event(f"e-{n}") for n in range(7)]},
            headers={"Authorization": f"Bearer {raw_key}"},
        )  # fmt: skip
        api_client.force_authenticate(superuser)
        response = api_client.get(reverse("api:customer-usage", args=[customer.pk]))

    assert response.status_code == 200, response.data
    body = response.json()
    assert (body["period_start_at"], body["period_end_at"]) == ("2026-04-01T00:00:00Z", "2026-05-01T00:00:00Z")
    assert body["metrics"] == [
        {"metric_code": "api_calls", "metric_name": "API calls", "aggregation": "count", "total": "7",
         "groups": {"": "7"}},
    ]  # fmt: skip


def test_the_customer_admin_page_charts_usage_per_day(client, setup, superuser):
    customer, raw_key = setup
    with clock.frozen_at(NOW):
        client.post(
            reverse("api:event-batch"), {"events": [_event(f"e-{n}") for n in range(7)]},
            headers={"Authorization": f"Bearer {raw_key}"}, content_type="application/json",
        )  # fmt: skip
        client.force_login(superuser)
        page = client.get(reverse("admin:accounts_customer_change", args=[customer.pk]))

    body = page.content.decode()
    assert page.status_code == 200
    assert 'id="customer-usage"' in body
    assert "<title>2026-04-10: 7</title>" in body
    assert "<title>2026-04-09: 0</title>" in body
