import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from apps.accounts.services import customer_create
from apps.webhooks.constants import DeliveryStatus
from apps.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from apps.webhooks.services import webhook_delivery_attempt, webhook_endpoint_create, webhook_events_collect

pytestmark = pytest.mark.django_db

ENDPOINTS = "/api/v1/webhook-endpoints"
DELIVERIES = "/api/v1/webhook-deliveries"


def messages_of(response) -> list[tuple[str, str]]:
    return [(message.level_tag, message.message) for message in get_messages(response.wsgi_request)]


def _delivery(receiver) -> WebhookDelivery:
    endpoint, receiver.secret = webhook_endpoint_create(url=receiver.url)
    customer_create(name="Liffey Labs", email="ap@liffey.example", country="IE", currency="EUR")
    webhook_events_collect()
    return WebhookDelivery.objects.get(endpoint=endpoint)


def test_api_creates_an_endpoint_and_shows_its_secret_once(api_client, superuser):
    api_client.force_authenticate(superuser)

    created = api_client.post(
        ENDPOINTS, {"url": "https://hooks.example.com/billing", "event_types": ["invoice.paid", "customer.created"]}
    )

    assert created.status_code == 201
    endpoint = WebhookEndpoint.objects.get()
    assert created.json()["secret"] == endpoint.secret
    assert endpoint.secret.startswith("whsec_") and len(endpoint.secret) == 54
    assert endpoint.event_types == ["customer.created", "invoice.paid"]
    shown = api_client.get(f"{ENDPOINTS}/{endpoint.pk}").json()
    assert "secret" not in shown
    assert shown["event_types"] == ["customer.created", "invoice.paid"]
    listed = api_client.get(ENDPOINTS).json()
    assert all("secret" not in row for row in listed["results"])


def test_api_refuses_a_bad_endpoint_with_field_errors_and_makes_nothing(api_client, superuser):
    api_client.force_authenticate(superuser)

    response = api_client.post(ENDPOINTS, {"url": "ftp://example.com", "event_types": ["invoice.eaten"]})

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert set(body["fields"]) == {"url", "event_types"}
    assert body["fields"]["event_types"] == ["Unknown event type: invoice.eaten."]
    assert not WebhookEndpoint.objects.exists()


def test_api_changes_turns_off_and_rolls_the_secret(api_client, superuser):
    endpoint, secret = webhook_endpoint_create(url="https://hooks.example.com/a")
    api_client.force_authenticate(superuser)

    changed = api_client.patch(f"{ENDPOINTS}/{endpoint.pk}", {"is_active": False, "description": "Old CRM"})
    bad = api_client.patch(f"{ENDPOINTS}/{endpoint.pk}", {"event_types": ["nope"]})
    rolled = api_client.post(f"{ENDPOINTS}/{endpoint.pk}/roll-secret")

    assert changed.status_code == 200
    assert (changed.json()["is_active"], changed.json()["description"]) == (False, "Old CRM")
    assert bad.status_code == 400
    endpoint.refresh_from_db()
    assert endpoint.event_types == []
    assert rolled.status_code == 200
    assert rolled.json()["secret"] == endpoint.secret != secret


def test_api_lists_event_types(api_client, superuser):
    api_client.force_authenticate(superuser)

    types = [row["type"] for row in api_client.get(f"{ENDPOINTS}/event-types").json()]

    assert {"customer.created", "subscription.canceled", "invoice.finalized", "credit_note.created"} <= set(types)
    assert types == sorted(types)


def test_api_delivery_log_and_redeliver(api_client, superuser, outbox_started, receiver):
    receiver.script = [500, 200]
    delivery = _delivery(receiver)
    webhook_delivery_attempt(delivery_id=delivery.pk)
    api_client.force_authenticate(superuser)

    redelivered = api_client.post(f"{DELIVERIES}/{delivery.pk}/redeliver")
    log = api_client.get(f"{DELIVERIES}/{delivery.pk}").json()

    assert redelivered.status_code == 200
    assert (redelivered.json()["number"], redelivered.json()["manual"], redelivered.json()["response_status"]) == (
        2,
        True,
        200,
    )
    assert log["status"] == DeliveryStatus.SUCCEEDED
    assert log["event_type"] == "customer.created"
    assert [(a["number"], a["manual"], a["response_status"], a["response_body"]) for a in log["attempts"]] == [
        (1, False, 500, "answered 500"),
        (2, True, 200, "answered 200"),
    ]


def test_admin_creates_an_endpoint_and_shows_its_secret_once(client, superuser):
    client.force_login(superuser)

    response = client.post(
        reverse("admin:webhooks_webhookendpoint_add"),
        {
            "url": "https://hooks.example.com/x",
            "description": "ERP",
            "event_types": ["invoice.paid"],
            "is_active": "on",
        },
    )

    assert response.status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.event_types, endpoint.created_by) == (["invoice.paid"], superuser)
    secret_message, added = messages_of(response)
    assert secret_message == (
        "warning",
        f"Webhook endpoint created. Its signing secret is shown only this once, copy it now: {endpoint.secret}",
    )
    assert added[0] == "success"
    change_url = reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk])
    assert endpoint.secret.encode() in client.get(change_url).content  # the page after the redirect
    assert endpoint.secret.encode() not in client.get(change_url).content  # and never again


def test_admin_refuses_a_bad_url_and_makes_nothing(client, superuser):
    client.force_login(superuser)

    response = client.post(reverse("admin:webhooks_webhookendpoint_add"), {"url": "not a url", "is_active": "on"})

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"url": ["Enter a valid URL."]}
    assert not WebhookEndpoint.objects.exists()


def test_admin_redeliver_action_reports_each_outcome(client, superuser, outbox_started, receiver):
    receiver.script = [200, 502]
    delivery = _delivery(receiver)
    client.force_login(superuser)
    url = reverse("admin:webhooks_webhookdelivery_changelist")

    ok = client.post(url, {"action": "redeliver", "_selected_action": [delivery.pk]})
    failed = client.post(url, {"action": "redeliver", "_selected_action": [delivery.pk]})

    assert messages_of(ok) == [("success", f"{delivery}: delivered (HTTP 200).")]
    assert messages_of(failed)[-1] == ("error", f"{delivery}: not delivered (HTTP 502).")  # the first not shown yet
    assert list(WebhookAttempt.objects.values_list("manual", "response_status")) == [(True, 200), (True, 502)]
    page = client.get(reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk]))
    assert page.status_code == 200
    assert b"answered 502" in page.content


def test_the_delivery_log_lists_in_a_fixed_number_of_queries(
    api_client, superuser, outbox_started, receiver, django_assert_num_queries
):
    endpoint, receiver.secret = webhook_endpoint_create(url=receiver.url)
    for number in range(3):
        customer_create(name=f"Customer {number}", email=f"c{number}@example.com", country="IE", currency="EUR")
    webhook_events_collect()
    for delivery in WebhookDelivery.objects.all():
        webhook_delivery_attempt(delivery_id=delivery.pk)
    api_client.force_authenticate(superuser)

    with django_assert_num_queries(3):  # count, page with event and endpoint, attempts
        response = api_client.get(DELIVERIES)

    assert response.status_code == 200
    assert response.json()["count"] == 3
    assert [len(row["attempts"]) for row in response.json()["results"]] == [1, 1, 1]
    assert {row["endpoint"] for row in response.json()["results"]} == {endpoint.pk}
