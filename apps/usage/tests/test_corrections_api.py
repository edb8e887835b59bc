"""Void and replace a usage event through the API: POST /api/v1/events/{transaction_id}/void and
/replace (an API key, like ingestion)."""

from decimal import Decimal

import pytest
from django.urls import reverse

from apps.accounts.credentials import api_key_create
from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import bill_due_subscriptions, subscription_start
from apps.catalog.models import PlanVersion
from apps.catalog.services import billable_metric_create
from apps.catalog.tests.factories import PlanFactory, add_charge
from apps.core import clock
from apps.subscriptions.periods import utc
from apps.usage.corrections import usage_event_void
from apps.usage.models import UsageEvent, UsageEventChange, UsageRollup
from apps.usage.services import usage_events_ingest

pytestmark = pytest.mark.django_db

NOW = utc(2026, 4, 10, 12)


@pytest.fixture
def auth():
    billable_metric_create(code="gb", name="Transfer", aggregation="sum", field_name="gb")
    customer = CustomerFactory(currency="USD", external_id="acme")
    plan = PlanFactory(prices=[])
    version = PlanVersion.objects.create(plan=plan, number=1)
    add_charge(version, name="Fee", price_model="flat", amount=1)
    add_charge(version, name="GB", kind="usage", metric_code="gb", price_model="per_unit", amount=1)
    subscription_start(customer=customer, plan=plan, now=utc(2026, 4, 1))
    usage_events_ingest(
        events=[
            {"transaction_id": "t-1", "external_customer_id": "acme", "metric_code": "gb",
             "timestamp": "2026-04-05T10:00:00Z", "properties": {"gb": 5}},
        ],
        now=NOW,
    )  # fmt: skip
    _, raw_key = api_key_create(name="pipeline")
    return {"Authorization": f"Bearer {raw_key}"}


def _void(api_client, auth, transaction_id, **body):
    url = reverse("api:event-void", kwargs={"transaction_id": transaction_id})
    return api_client.post(url, body, headers=auth, format="json")


def _replace(api_client, auth, transaction_id, body):
    url = reverse("api:event-replace", kwargs={"transaction_id": transaction_id})
    return api_client.post(url, body, headers=auth, format="json")


def test_void_an_event_in_an_open_period(api_client, auth):
    with clock.frozen_at(NOW):
        response = _void(api_client, auth, "t-1", reason="sensor glitch")

    assert response.status_code == 200
    body = response.json()
    assert (body["kind"], body["transaction_id"], body["billed_period_end_at"]) == ("void", "t-1", None)
    assert body["before"] == {"timestamp": "2026-04-05T10:00:00Z", "properties": {"gb": 5}, "value": "5"}
    assert not UsageEvent.objects.exists()
    assert not UsageRollup.objects.exists()
    change = UsageEventChange.objects.get()
    assert change.actor.startswith("API key pipeline (") and change.reason == "sensor glitch"


def test_unknown_and_already_voided_transaction_ids_are_refused(api_client, auth):
    with clock.frozen_at(NOW):
        unknown = _void(api_client, auth, "nope")
        unknown_replace = _replace(api_client, auth, "nope", {"timestamp": "2026-04-05T10:00:00Z"})
        assert _void(api_client, auth, "t-1").status_code == 200
        again = _void(api_client, auth, "t-1")

    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")
    assert unknown.json()["fields"] == {"transaction_id": ["No usage event has this transaction id."]}
    assert unknown_replace.status_code == 404
    assert (again.status_code, again.json()["code"]) == (409, "conflict")
    assert UsageEventChange.objects.count() == 1


def test_replace_checks_the_new_event_like_ingestion_and_changes_nothing_when_refused(api_client, auth):
    with clock.frozen_at(NOW):
        bad_time = _replace(api_client, auth, "t-1", {"timestamp": "yesterday", "properties": {"gb": 7}})
        bad_value = _replace(api_client, auth, "t-1", {"timestamp": "2026-04-05T10:00:00Z", "properties": {"gb": "x"}})
        not_an_object = api_client.post(
            reverse("api:event-replace", kwargs={"transaction_id": "t-1"}), [1], headers=auth, format="json"
        )
        good = _replace(api_client, auth, "t-1", {"timestamp": "2026-04-06T10:00:00Z", "properties": {"gb": 7}})

    assert (bad_time.status_code, bad_time.json()["code"]) == (400, "invalid_timestamp")
    assert (bad_value.status_code, bad_value.json()["code"]) == (400, "invalid_value")
    assert not_an_object.status_code == 400
    assert good.status_code == 200
    assert good.json()["after"] == {"timestamp": "2026-04-06T10:00:00Z", "properties": {"gb": 7}, "value": "7"}
    assert list(UsageRollup.objects.values_list("hour", "value_sum")) == [(utc(2026, 4, 6, 10), Decimal(7))]
    assert UsageEventChange.objects.count() == 1


def test_a_correction_past_the_lateness_window_is_refused(api_client, auth):
    bill_due_subscriptions(now=utc(2026, 5, 1, 0, 30))  # April is invoiced; its window closes on 4 May

    with clock.frozen_at(utc(2026, 5, 4, 1)):
        response = _void(api_client, auth, "t-1")

    assert (response.status_code, response.json()["code"]) == (400, "late_beyond_window")
    assert "accepts late events for 3 days after a period ends" in response.json()["message"]
    assert UsageEvent.objects.count() == 1
    assert not UsageEventChange.objects.exists()


def test_corrections_need_an_api_key(api_client, auth):
    response = api_client.post(reverse("api:event-void", kwargs={"transaction_id": "t-1"}), {}, format="json")

    assert response.status_code in (401, 403)
    assert UsageEvent.objects.count() == 1


def test_staff_read_the_audit_trail_in_the_admin(client, superuser, auth):
    with clock.frozen_at(NOW):
        usage_event_void(transaction_id="t-1", now=NOW, actor="staff", reason="sensor glitch")
    client.force_login(superuser)

    listed = client.get(reverse("admin:usage_usageeventchange_changelist"))
    shown = client.get(reverse("admin:usage_usageeventchange_change", args=[UsageEventChange.objects.get().pk]))

    assert listed.status_code == 200 and b"t-1" in listed.content
    assert shown.status_code == 200 and b"sensor glitch" in shown.content
