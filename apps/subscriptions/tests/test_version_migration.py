from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from djmoney.money import Money

from apps.catalog.models import PlanVersion
from apps.catalog.services import plan_version_copy
from apps.catalog.tests.factories import PlanFactory, add_charge
from apps.subscriptions.constants import SubscriptionEventType
from apps.subscriptions.services import subscription_cancel
from apps.subscriptions.tests.factories import make_subscription

pytestmark = pytest.mark.django_db


def _plan_with_two_versions():
    plan = PlanFactory(prices=[Money("10.00", "USD")])
    subscribers = [make_subscription(plan=plan) for _ in range(2)]
    version_2 = PlanVersion.objects.create(plan=plan, number=2)
    add_charge(version_2, name="Fee", price_model="flat", amount=Decimal("12"))
    return plan, subscribers, version_2


def test_admin_action_asks_when_then_moves_subscribers_to_the_latest_version(client, superuser):
    plan, (active, canceled), version_2 = _plan_with_two_versions()
    subscription_cancel(subscription_id=canceled.pk, at_period_end=False)
    already_there = make_subscription(plan=plan)
    client.force_login(superuser)
    url = reverse("admin:subscriptions_subscription_changelist")
    selected = [active.pk, canceled.pk, already_there.pk]

    confirm = client.post(url, {"action": "migrate_to_latest_version", ACTION_CHECKBOX_NAME: selected})
    assert confirm.status_code == 200
    assert "Move to the plan&#x27;s latest version" in confirm.content.decode()
    active.refresh_from_db()
    assert active.pending_plan_version is None  # nothing happens before confirmation

    done = client.post(
        url,
        {"action": "migrate_to_latest_version", ACTION_CHECKBOX_NAME: selected, "post": "yes", "timing": "next_period"},
        follow=True,
    )

    messages = [str(m) for m in done.context["messages"]]
    assert "1 subscription(s) moved to their plan's latest version from their next period." in messages
    assert any(m.startswith(f"Subscription #{canceled.pk}:") and "canceled" in m for m in messages)
    active.refresh_from_db()
    assert (active.plan_version.number, active.pending_plan_version) == (1, version_2)
    canceled.refresh_from_db()
    assert canceled.pending_plan_version is None
    already_there.refresh_from_db()
    assert (already_there.plan_version, already_there.pending_plan_version) == (version_2, None)


def test_admin_action_needs_change_permission(client, make_staff):
    _, subscribers, _ = _plan_with_two_versions()
    client.force_login(make_staff("subscriptions.view_subscription"))

    response = client.post(
        reverse("admin:subscriptions_subscription_changelist"),
        {"action": "migrate_to_latest_version", ACTION_CHECKBOX_NAME: [subscribers[0].pk], "post": "yes",
         "timing": "now"},
    )  # fmt: skip

    subscribers[0].refresh_from_db()
    assert subscribers[0].plan_version.number == 1
    assert response.status_code in (200, 302, 403)


def test_api_migrates_now_idempotently(api_client, superuser):
    _, (subscription, _), version_2 = _plan_with_two_versions()
    api_client.force_authenticate(superuser)
    url = reverse("api:subscription-migrate-version", args=[subscription.pk])
    payload = {"version": version_2.pk, "timing": "now"}

    first = api_client.post(url, payload, headers={"Idempotency-Key": "move-1"})
    second = api_client.post(url, payload, headers={"Idempotency-Key": "move-1"})

    assert first.status_code == 200, first.data
    assert (first.json()["plan_version"], first.json()["plan_version_number"]) == (version_2.pk, 2)
    assert second.json() == first.json()
    assert subscription.events.filter(type=SubscriptionEventType.VERSION_MIGRATED).count() == 1


def test_api_refuses_a_version_of_another_plan(api_client, superuser):
    subscription = make_subscription()
    other = plan_version_copy(version=PlanFactory().current_version)
    api_client.force_authenticate(superuser)

    response = api_client.post(
        reverse("api:subscription-migrate-version", args=[subscription.pk]), {"version": other.pk, "timing": "now"}
    )

    assert response.status_code == 400
    assert "version" in response.json()["fields"]
    subscription.refresh_from_db()
    assert subscription.plan_version.number == 1


@pytest.mark.parametrize(
    ("perm", "expected"),
    [(None, 401), ("subscriptions.view_subscription", 403), ("subscriptions.change_subscription", 200)],
)
def test_api_migrate_permission_matrix(api_client, make_staff, perm, expected):
    _, (subscription, _), version_2 = _plan_with_two_versions()
    if perm is not None:
        api_client.force_authenticate(make_staff(perm, "subscriptions.view_subscription"))

    response = api_client.post(
        reverse("api:subscription-migrate-version", args=[subscription.pk]), {"version": version_2.pk}
    )

    assert response.status_code == expected
