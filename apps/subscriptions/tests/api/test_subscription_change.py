from decimal import Decimal

import pytest
from django.urls import reverse
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import subscription_start
from apps.catalog.tests.factories import PlanFactory
from apps.core import clock
from apps.invoices.models import InvoiceItem
from apps.subscriptions.constants import SubscriptionEventType
from apps.subscriptions.periods import utc

pytestmark = pytest.mark.django_db


@pytest.fixture
def upgrade():
    basic = PlanFactory(name="Basic", product__name="Hosting", prices=[Money("30.00", "USD")])
    pro = PlanFactory(name="Pro", product=basic.product, prices=[Money("60.00", "USD")])
    subscription = subscription_start(
        customer=CustomerFactory(currency="USD"), plan=basic, started_at=utc(2026, 4, 1), now=utc(2026, 4, 1)
    )
    return subscription, pro


def test_preview_then_change_with_the_same_lines(api_client, superuser, upgrade):
    subscription, pro = upgrade
    api_client.force_authenticate(superuser)
    payload = {"plan": pro.pk}

    with clock.frozen_at(utc(2026, 4, 10)):
        preview = api_client.post(reverse("api:subscription-preview-change", args=[subscription.pk]), payload)
        changed = api_client.post(reverse("api:subscription-change", args=[subscription.pk]), payload)

    assert preview.status_code == 200, preview.data
    assert [(line["description"], line["amount"]["amount"]) for line in preview.json()["lines"]] == [
        ("Unused time on Hosting — Basic ×1", "-21.00"),
        ("Remaining time on Hosting — Pro ×1", "42.00"),
    ]
    assert preview.json()["total"] == {"amount": "21.00", "currency": "USD"}
    assert changed.status_code == 200, changed.data
    body = changed.json()
    assert body["change"]["lines"] == preview.json()["lines"]
    assert (body["subscription"]["plan"], body["invoice"], body["scheduled_change"]) == (pro.pk, None, None)


def test_change_is_idempotent_with_the_same_key(api_client, superuser, upgrade):
    subscription, _ = upgrade
    api_client.force_authenticate(superuser)
    url = reverse("api:subscription-change", args=[subscription.pk])

    with clock.frozen_at(utc(2026, 4, 10)):
        first = api_client.post(url, {"quantity": 3}, headers={"Idempotency-Key": "seats-3"})
        second = api_client.post(url, {"quantity": 3}, headers={"Idempotency-Key": "seats-3"})

    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert subscription.events.filter(type=SubscriptionEventType.CHANGED).count() == 1
    assert InvoiceItem.objects.count() == 2


def test_upcoming_invoice(api_client, superuser, upgrade):
    subscription, _ = upgrade
    api_client.force_authenticate(superuser)

    with clock.frozen_at(utc(2026, 4, 16)):
        api_client.post(reverse("api:subscription-change", args=[subscription.pk]), {"quantity": 2})
        response = api_client.get(reverse("api:subscription-upcoming-invoice", args=[subscription.pk]))

    assert response.status_code == 200, response.data
    body = response.json()
    assert (body["billing_at"], body["period_start_at"], body["period_end_at"]) == (
        "2026-05-01T00:00:00Z", "2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z",
    )  # fmt: skip
    assert [(line["kind"], line["amount"]["amount"]) for line in body["lines"]] == [
        ("proration", "-15.00"),
        ("proration", "30.00"),
        ("recurring", "60.00"),
    ]
    assert body["total"] == {"amount": "75.00", "currency": "USD"}


def test_schedule_then_withdraw_a_change(api_client, superuser, upgrade):
    subscription, pro = upgrade
    api_client.force_authenticate(superuser)

    with clock.frozen_at(utc(2026, 4, 10)):
        scheduled = api_client.post(
            reverse("api:subscription-change", args=[subscription.pk]), {"plan": pro.pk, "timing": "period_end"}
        )
        withdrawn = api_client.post(reverse("api:subscription-scheduled-change-cancel", args=[subscription.pk]))
        again = api_client.post(reverse("api:subscription-scheduled-change-cancel", args=[subscription.pk]))

    assert scheduled.status_code == 200, scheduled.data
    assert scheduled.json()["scheduled_change"] is not None
    assert scheduled.json()["change"]["effective_at"] == "2026-05-01T00:00:00Z"
    assert withdrawn.status_code == 200
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_transition"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"quantity": 0}, "quantity"),
        ({"quantity": "many"}, "quantity"),
        ({"plan": 999999}, "plan"),
        ({"quantity": 2, "proration": "maybe"}, "proration"),
        ({"quantity": 2, "timing": "yesterday"}, "timing"),
        ({}, "plan"),
    ],
)
def test_bad_changes_are_refused_field_by_field(api_client, superuser, upgrade, payload, field):
    subscription, _ = upgrade
    api_client.force_authenticate(superuser)

    response = api_client.post(reverse("api:subscription-change", args=[subscription.pk]), payload)

    assert response.status_code == 400, response.data
    assert field in response.json()["fields"]
    subscription.refresh_from_db()
    assert (subscription.quantity, subscription.plan.name) == (1, "Basic")


@pytest.mark.parametrize(
    ("name", "method", "perms", "expected"),
    [
        ("api:subscription-change", "post", [], 403),
        ("api:subscription-change", "post", ["subscriptions.view_subscription"], 403),
        (
            "api:subscription-change",
            "post",
            ["subscriptions.view_subscription", "subscriptions.change_subscription"],
            200,
        ),
        ("api:subscription-preview-change", "post", ["subscriptions.view_subscription"], 200),
        ("api:subscription-upcoming-invoice", "get", ["subscriptions.view_subscription"], 403),
        ("api:subscription-upcoming-invoice", "get", ["subscriptions.view_subscription", "invoices.view_invoice"], 200),
    ],
)
def test_permission_matrix(api_client, make_staff, upgrade, name, method, perms, expected):
    subscription, _ = upgrade
    api_client.force_authenticate(make_staff(*perms))
    url = reverse(name, args=[subscription.pk])

    with clock.frozen_at(utc(2026, 4, 10)):
        response = api_client.get(url) if method == "get" else api_client.post(url, {"quantity": 2})

    assert response.status_code == expected, response.data


def test_anonymous_is_refused(api_client, upgrade):
    subscription, _ = upgrade
    response = api_client.post(reverse("api:subscription-change", args=[subscription.pk]), {"quantity": 2})
    assert response.status_code == 401
    assert Decimal(subscription.quantity) == 1


def test_pause_then_resume(api_client, superuser, upgrade):
    subscription, _ = upgrade
    api_client.force_authenticate(superuser)

    with clock.frozen_at(utc(2026, 4, 11)):
        paused = api_client.post(reverse("api:subscription-pause", args=[subscription.pk]), {"reason": "Holiday"})
        paused_again = api_client.post(reverse("api:subscription-pause", args=[subscription.pk]))
    with clock.frozen_at(utc(2026, 5, 20)):
        resumed = api_client.post(reverse("api:subscription-resume", args=[subscription.pk]))

    assert paused.status_code == 200, paused.data
    assert paused.json()["subscription"]["status"] == "paused"
    assert paused.json()["change"]["total"] == {"amount": "-20.00", "currency": "USD"}
    assert paused_again.status_code == 409
    assert resumed.status_code == 200, resumed.data
    assert resumed.json()["subscription"]["status"] == "active"
    assert resumed.json()["invoice"] is not None
