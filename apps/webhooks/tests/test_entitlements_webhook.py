"""`customer.entitlements_changed`: one event per change of what a customer is entitled to, after
commit, with the new entitlements (docs/entitlements.md)."""

import pytest
from django.db import transaction
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import subscription_cancel, subscription_change, subscription_start
from apps.catalog.services import GrantInput, feature_create, plan_version_features_set
from apps.catalog.tests.factories import PlanFactory
from apps.webhooks.models import WebhookDelivery, WebhookEvent
from apps.webhooks.services import webhook_delivery_attempt, webhook_endpoint_create, webhook_events_collect

pytestmark = pytest.mark.django_db

TYPE = "customer.entitlements_changed"


@pytest.fixture
def plans():
    feature_create(code="seats", name="Seats", kind="limit")
    feature_create(code="sso", name="Single sign-on", kind="boolean")
    pro = PlanFactory(code="pro", prices=[Money("10.00", "USD")])
    plan_version_features_set(version=pro.current_version, grants=[GrantInput("seats", 10), GrantInput("sso", True)])
    starter = PlanFactory(code="starter", prices=[Money("5.00", "USD")])
    plan_version_features_set(version=starter.current_version, grants=[GrantInput("seats", 3)])
    return pro, starter


def _events():
    webhook_events_collect()
    return list(WebhookEvent.objects.filter(type=TYPE).order_by("id"))


def test_each_change_is_one_event_with_the_new_entitlements(
    outbox_started, receiver, plans, django_capture_on_commit_callbacks
):
    pro, starter = plans
    endpoint, secret = webhook_endpoint_create(url=receiver.url, event_types=[TYPE])
    receiver.secret = secret
    customer = CustomerFactory(currency="USD")

    with django_capture_on_commit_callbacks(execute=True):
        subscription = subscription_start(customer=customer, plan=pro)
    [created] = _events()
    assert (created.object_type, created.object_id) == ("customer", customer.pk)
    assert created.data["details"] == {"previous": {}}
    assert [(f["code"], f["value"]) for f in created.data["object"]["features"]] == [("seats", 10), ("sso", True)]

    with django_capture_on_commit_callbacks(execute=True):
        subscription_change(subscription_id=subscription.pk, quantity=2)  # grants nothing new
    assert len(_events()) == 1

    with django_capture_on_commit_callbacks(execute=True):
        subscription_change(subscription_id=subscription.pk, plan=starter)
    with django_capture_on_commit_callbacks(execute=True):
        subscription_cancel(subscription_id=subscription.pk, when="now")
    created_, changed, canceled = _events()
    assert changed.data["object"] == {
        "object": "entitlements",
        "customer": customer.pk,
        "features": [
            {
                "code": "seats",
                "name": "Seats",
                "kind": "limit",
                "value": 3,
                "sources": [
                    {"subscription": subscription.pk, "plan": "starter", "plan_version": 1, "status": "active",
                     "value": 3}
                ],
            }
        ],
    }  # fmt: skip
    assert changed.data["details"] == {"previous": {"seats": 10, "sso": True}}
    assert canceled.data["object"]["features"] == []
    assert canceled.data["details"] == {"previous": {"seats": 3}}

    # Collected again: nothing new; each event makes one delivery, delivered signed.
    assert webhook_events_collect() == 0
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 3
    attempt = webhook_delivery_attempt(delivery_id=WebhookDelivery.objects.get(event=changed).pk)
    assert attempt.succeeded
    assert receiver.requests[-1]["verified"]
    assert receiver.requests[-1]["body"]["type"] == TYPE
    assert receiver.requests[-1]["body"]["data"]["object"]["features"][0]["value"] == 3


def test_a_change_rolled_back_sends_nothing(outbox_started, plans, django_capture_on_commit_callbacks):
    pro, _ = plans
    customer = CustomerFactory(currency="USD")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            subscription_start(customer=customer, plan=pro)
            raise RuntimeError("the request failed after the subscription was made")

    assert callbacks == []
    assert _events() == []
