"""Idempotency-Key behaviour, exercised through real endpoints."""

import pytest
from django.urls import reverse

from apps.accounts.models import Customer
from apps.accounts.tests.factories import UserFactory
from apps.core import clock
from apps.core.models import IdempotencyRecord
from apps.invoices.models import BillingRun, Invoice, InvoiceEvent
from apps.invoices.tests.factories import make_draft_invoice
from apps.subscriptions.periods import utc
from apps.subscriptions.tests.factories import make_subscription

pytestmark = pytest.mark.django_db

CUSTOMERS_URL = reverse("api:customer-list")
CUSTOMER = {"name": "Globex", "email": "ap@globex.example", "country": "US", "currency": "USD"}


def test_replay_returns_the_same_response_and_creates_one_object(api_client, superuser):
    api_client.force_authenticate(superuser)

    first = api_client.post(CUSTOMERS_URL, CUSTOMER, HTTP_IDEMPOTENCY_KEY="key-1")
    second = api_client.post(CUSTOMERS_URL, CUSTOMER, HTTP_IDEMPOTENCY_KEY="key-1")

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert Customer.objects.count() == 1
    record = IdempotencyRecord.objects.get()
    assert (record.user, record.key, record.response_status) == (superuser, "key-1", 201)


def test_same_key_with_a_different_body_is_409(api_client, superuser):
    api_client.force_authenticate(superuser)
    api_client.post(CUSTOMERS_URL, CUSTOMER, HTTP_IDEMPOTENCY_KEY="key-1")

    response = api_client.post(CUSTOMERS_URL, {**CUSTOMER, "name": "Other"}, HTTP_IDEMPOTENCY_KEY="key-1")

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"
    assert Customer.objects.count() == 1


def test_same_key_on_another_endpoint_is_409(api_client, superuser):
    api_client.force_authenticate(superuser)
    api_client.post(CUSTOMERS_URL, CUSTOMER, HTTP_IDEMPOTENCY_KEY="key-1")

    response = api_client.post(reverse("api:product-list"), {"code": "p", "name": "P"}, HTTP_IDEMPOTENCY_KEY="key-1")

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"


def test_keys_are_per_user(api_client, superuser):
    other = UserFactory(is_staff=True, is_superuser=True)
    api_client.force_authenticate(superuser)
    api_client.post(CUSTOMERS_URL, CUSTOMER, HTTP_IDEMPOTENCY_KEY="shared")
    api_client.force_authenticate(other)

    response = api_client.post(CUSTOMERS_URL, {**CUSTOMER, "name": "Other"}, HTTP_IDEMPOTENCY_KEY="shared")

    assert response.status_code == 201
    assert Customer.objects.count() == 2


def test_a_failed_request_is_not_stored_and_can_be_corrected_under_the_same_key(api_client, superuser):
    api_client.force_authenticate(superuser)

    failed = api_client.post(CUSTOMERS_URL, {**CUSTOMER, "currency": "XXX"}, HTTP_IDEMPOTENCY_KEY="key-1")
    fixed = api_client.post(CUSTOMERS_URL, CUSTOMER, HTTP_IDEMPOTENCY_KEY="key-1")

    assert failed.status_code == 400
    assert fixed.status_code == 201
    assert Customer.objects.count() == 1
    assert IdempotencyRecord.objects.get().response_status == 201


def test_without_a_key_every_request_does_the_work(api_client, superuser):
    api_client.force_authenticate(superuser)

    api_client.post(CUSTOMERS_URL, {**CUSTOMER, "name": "One"})
    api_client.post(CUSTOMERS_URL, {**CUSTOMER, "name": "Two"})

    assert Customer.objects.count() == 2
    assert IdempotencyRecord.objects.count() == 0


@pytest.mark.parametrize("key", ["", " ", "x" * 256])
def test_bad_keys_are_refused(api_client, superuser, key):
    api_client.force_authenticate(superuser)

    response = api_client.post(CUSTOMERS_URL, CUSTOMER, HTTP_IDEMPOTENCY_KEY=key)

    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["Idempotency-Key"]
    assert Customer.objects.count() == 0


def test_replayed_action_does_not_transition_twice(api_client, superuser):
    draft = make_draft_invoice()
    url = reverse("api:invoice-finalize", args=[draft.pk])
    api_client.force_authenticate(superuser)

    first = api_client.post(url, HTTP_IDEMPOTENCY_KEY="fin-1")
    replay = api_client.post(url, HTTP_IDEMPOTENCY_KEY="fin-1")
    without_key = api_client.post(url)

    assert (first.status_code, replay.status_code, without_key.status_code) == (200, 200, 409)
    assert replay.json() == first.json()
    assert InvoiceEvent.objects.filter(invoice=draft, type="finalized").count() == 1


def test_replayed_subscription_creation_creates_one_subscription_and_one_invoice(api_client, superuser):
    subscription = make_subscription(started_at=utc(2026, 1, 1))
    payload = {"customer": subscription.customer_id, "plan": subscription.plan_id}
    api_client.force_authenticate(superuser)

    with clock.frozen_at(utc(2026, 1, 10)):
        first = api_client.post(reverse("api:subscription-list"), payload, HTTP_IDEMPOTENCY_KEY="sub-1")
        replay = api_client.post(reverse("api:subscription-list"), payload, HTTP_IDEMPOTENCY_KEY="sub-1")

    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()
    assert Invoice.objects.filter(subscription_id=first.json()["id"]).count() == 1


def test_replayed_billing_run_starts_one_run(api_client, superuser):
    api_client.force_authenticate(superuser)
    url = reverse("api:billing-run-list")

    first = api_client.post(url, HTTP_IDEMPOTENCY_KEY="run-1")
    replay = api_client.post(url, HTTP_IDEMPOTENCY_KEY="run-1")

    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()
    assert BillingRun.objects.count() == 1


def test_a_pending_reservation_is_reported_as_in_progress(api_client, superuser):
    # What a concurrent request sees while a billing run holding the same key is still working.
    url = reverse("api:billing-run-list")
    api_client.force_authenticate(superuser)
    api_client.post(url, HTTP_IDEMPOTENCY_KEY="run-1")
    IdempotencyRecord.objects.filter(key="run-1").update(response_status=None, response_body=None)

    response = api_client.post(url, HTTP_IDEMPOTENCY_KEY="run-1")

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_request_in_progress"
    assert BillingRun.objects.count() == 1
