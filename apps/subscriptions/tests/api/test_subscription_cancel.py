import pytest
from django.urls import reverse

from apps.core import clock
from apps.subscriptions.constants import SubscriptionStatus
from apps.subscriptions.models import Subscription
from apps.subscriptions.periods import utc
from apps.subscriptions.tests.factories import make_subscription

pytestmark = pytest.mark.django_db

NOW = utc(2026, 3, 10, 12)


def cancel_url(subscription):
    return reverse("api:subscription-cancel", args=[subscription.pk])


def undo_url(subscription):
    return reverse("api:subscription-cancel-undo", args=[subscription.pk])


def test_cancel_at_period_end_then_undo(api_client, superuser):
    subscription = make_subscription(started_at=utc(2026, 3, 1))
    api_client.force_authenticate(superuser)

    with clock.frozen_at(NOW):
        response = api_client.post(cancel_url(subscription), {"reason": "Moving to a competitor"})
    assert response.status_code == 200, response.data
    body = response.json()
    assert (body["status"], body["cancel_at_period_end"], body["canceled_at"]) == (
        "active",
        True,
        "2026-03-10T12:00:00Z",
    )
    assert body["cancellation_reason"] == "Moving to a competitor"

    response = api_client.post(undo_url(subscription))
    assert response.status_code == 200
    assert (response.json()["cancel_at_period_end"], response.json()["canceled_at"]) == (False, None)


def test_cancel_now(api_client, superuser):
    subscription = make_subscription(started_at=utc(2026, 3, 1))
    api_client.force_authenticate(superuser)
    with clock.frozen_at(NOW):
        response = api_client.post(cancel_url(subscription), {"at_period_end": False})
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["ended_at"]) == ("canceled", "2026-03-10T12:00:00Z")


def test_invalid_cancellations_are_409_and_change_nothing(api_client, superuser):
    subscription = make_subscription(started_at=utc(2026, 3, 1))
    api_client.force_authenticate(superuser)
    response = api_client.post(undo_url(subscription))
    assert (response.status_code, response.json()["code"]) == (409, "invalid_transition")

    api_client.post(cancel_url(subscription), {"at_period_end": False})
    before = Subscription.objects.values().get(pk=subscription.pk)
    for url in (cancel_url(subscription), undo_url(subscription)):
        response = api_client.post(url, {})
        assert (response.status_code, response.json()["code"]) == (409, "invalid_transition")
    assert Subscription.objects.values().get(pk=subscription.pk) == before


def test_bad_input_is_a_field_error(api_client, superuser):
    subscription = make_subscription(started_at=utc(2026, 3, 1))
    api_client.force_authenticate(superuser)
    response = api_client.post(cancel_url(subscription), {"at_period_end": "maybe"}, format="json")
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["at_period_end"]
    assert Subscription.objects.get(pk=subscription.pk).status == SubscriptionStatus.ACTIVE


def test_the_same_idempotency_key_cancels_once(api_client, superuser):
    subscription = make_subscription(started_at=utc(2026, 3, 1))
    api_client.force_authenticate(superuser)
    first = api_client.post(cancel_url(subscription), {"at_period_end": False}, HTTP_IDEMPOTENCY_KEY="cancel-42")
    replay = api_client.post(cancel_url(subscription), {"at_period_end": False}, HTTP_IDEMPOTENCY_KEY="cancel-42")
    assert (first.status_code, replay.status_code) == (200, 200)
    assert replay.json() == first.json()
    assert subscription.events.filter(type="canceled").count() == 1


@pytest.mark.parametrize(
    ("perms", "expected"),
    [
        (None, 401),
        (["subscriptions.view_subscription"], 403),
        (["subscriptions.view_subscription", "subscriptions.change_subscription"], 200),
    ],
)
def test_cancel_permission_matrix(api_client, make_staff, perms, expected):
    subscription = make_subscription(started_at=utc(2026, 3, 1))
    if perms is not None:
        api_client.force_authenticate(make_staff(*perms))
    assert api_client.post(cancel_url(subscription), {}).status_code == expected
