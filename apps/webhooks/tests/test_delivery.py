import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.test import override_settings

from apps.accounts.services import customer_create, customer_update
from apps.core import clock
from apps.invoices.services import invoice_void
from apps.invoices.tests.factories import make_open_invoice
from apps.webhooks.constants import EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, DeliveryStatus
from apps.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent, WebhookSourceCursor
from apps.webhooks.services import (
    retry_delay_seconds,
    webhook_delivery_attempt,
    webhook_delivery_redeliver,
    webhook_endpoint_create,
    webhook_endpoint_update,
    webhook_events_collect,
)
from apps.webhooks.signing import signature_header, signature_verify

pytestmark = pytest.mark.django_db


def _customer(name: str = "Liffey Labs"):
    return customer_create(name=name, email="ap@liffey.example", country="IE", currency="EUR", external_id="liffey")


def _endpoint(receiver, **kwargs) -> WebhookEndpoint:
    endpoint, secret = webhook_endpoint_create(url=receiver.url, **kwargs)
    receiver.secret = secret
    return endpoint


def test_signature_is_hmac_sha256_of_timestamp_dot_body():
    header = signature_header(secret="whsec_test", timestamp=1_700_000_000, body=b'{"a":1}')
    expected = hmac.new(b"whsec_test", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert signature_verify(secret="whsec_test", header=header, body=b'{"a":1}', now=1_700_000_100)
    assert not signature_verify(secret="whsec_test", header=header, body=b'{"a":2}', now=1_700_000_100)
    assert not signature_verify(secret="whsec_other", header=header, body=b'{"a":1}', now=1_700_000_100)
    assert not signature_verify(secret="whsec_test", header=header, body=b'{"a":1}', now=1_700_000_301)
    assert not signature_verify(secret="whsec_test", header="v1=abc", body=b'{"a":1}', now=1_700_000_000)


def test_backoff_doubles_from_the_base_up_to_the_cap(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 60
    settings.WEBHOOK_RETRY_MAX_SECONDS = 600
    assert [retry_delay_seconds(n) for n in range(1, 7)] == [60, 120, 240, 480, 600, 600]


def test_a_domain_event_is_recorded_once_and_delivered_signed(
    outbox_started, receiver, django_capture_on_commit_callbacks
):
    endpoint = _endpoint(receiver, event_types=["customer.created"])
    customer = _customer()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert webhook_events_collect() == 1
    assert len(callbacks) == 1  # the delivery is queued after commit
    event = WebhookEvent.objects.get()
    assert (event.type, event.object_type, event.object_id) == ("customer.created", "customer", customer.pk)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.endpoint, delivery.status, delivery.attempt_count) == (endpoint, DeliveryStatus.PENDING, 0)

    attempt = webhook_delivery_attempt(delivery_id=delivery.pk)

    assert (attempt.number, attempt.response_status, attempt.succeeded, attempt.error) == (1, 200, True, "")
    assert attempt.response_body == "answered 200"
    [request] = receiver.requests
    assert request["verified"] is True
    assert request["headers"][EVENT_ID_HEADER] == f"evt_{event.pk}"
    assert request["headers"][EVENT_TYPE_HEADER] == "customer.created"
    assert request["body"]["id"] == f"evt_{event.pk}"
    assert request["body"]["type"] == "customer.created"
    assert request["body"]["data"]["object"]["external_id"] == "liffey"
    assert request["body"]["data"]["object"]["currency"] == "EUR"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count, delivery.last_response_status) == (
        DeliveryStatus.SUCCEEDED,
        1,
        200,
    )
    # The log keeps the request without the signature itself.
    assert attempt.request_headers[SIGNATURE_HEADER].endswith(",v1=…")
    assert json.loads(attempt.request_body) == request["body"]


def test_collecting_twice_or_from_scratch_records_each_domain_event_once(outbox_started, receiver):
    _endpoint(receiver)
    customer = _customer()
    customer_update(customer_id=customer.pk, name="Liffey Labs Ltd.")

    assert webhook_events_collect() == 2
    assert webhook_events_collect() == 0
    # The same domain rows processed again (the cursor moved back as after a crash): nothing new.
    WebhookSourceCursor.objects.update(scanned_id=0, settled_id=0, candidate_id=0)
    assert webhook_events_collect() == 0

    assert list(WebhookEvent.objects.order_by("id").values_list("type", flat=True)) == [
        "customer.created",
        "customer.updated",
    ]
    assert WebhookDelivery.objects.count() == 2
    assert WebhookEvent.objects.get(type="customer.updated").data["details"] == {"changed_fields": ["name"]}


def test_a_row_committed_late_below_the_read_ids_is_still_sent(outbox_started, receiver):
    """A transaction that commits after later rows were read (ids taken earlier) is picked up."""
    _endpoint(receiver)
    first = _customer("First")
    second = customer_create(name="Second", email="b@example.com", country="IE", currency="EUR")
    assert webhook_events_collect() == 2
    # Pretend the first customer's entry was still uncommitted at that collection.
    WebhookEvent.objects.filter(object_id=first.pk).delete()

    assert webhook_events_collect() == 1

    assert sorted(WebhookEvent.objects.values_list("object_id", flat=True)) == [first.pk, second.pk]


def test_events_settle_after_the_settle_period(outbox_started, receiver, settings):
    settings.WEBHOOK_OUTBOX_SETTLE_SECONDS = 60
    _customer()
    now = clock.now()
    webhook_events_collect(now=now)
    cursor = WebhookSourceCursor.objects.get(source="accounts.customer")
    read = cursor.scanned_id
    assert cursor.settled_id < read

    webhook_events_collect(now=now + timedelta(seconds=61))
    webhook_events_collect(now=now + timedelta(seconds=122))

    cursor.refresh_from_db()
    assert cursor.settled_id == read


def test_event_type_filters_and_inactive_endpoints(outbox_started, receiver):
    invoices_only = _endpoint(receiver, event_types=["invoice.voided"])
    everything, _ = webhook_endpoint_create(url=receiver.url)
    inactive, _ = webhook_endpoint_create(url=receiver.url, is_active=False)
    invoice = make_open_invoice()
    invoice_void(invoice_id=invoice.pk, reason="duplicate")

    webhook_events_collect()

    voided = WebhookEvent.objects.get(type="invoice.voided")
    assert voided.data["object"]["status"] == "void"
    assert voided.data["details"] == {"reason": "duplicate"}
    assert list(WebhookDelivery.objects.filter(endpoint=invoices_only).values_list("event", flat=True)) == [voided.pk]
    assert WebhookDelivery.objects.filter(endpoint=everything).count() == WebhookEvent.objects.count()
    assert set(WebhookEvent.objects.values_list("type", flat=True)) == {
        "customer.created",
        "subscription.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.voided",
    }
    assert not WebhookDelivery.objects.filter(endpoint=inactive).exists()


def test_failing_receiver_is_retried_with_backoff_until_it_recovers(
    outbox_started, receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 60
    receiver.script = [500, 500, 200]
    endpoint = _endpoint(receiver)
    _customer()
    webhook_events_collect()
    delivery = WebhookDelivery.objects.get()
    now = clock.now()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = webhook_delivery_attempt(delivery_id=delivery.pk, now=now)
    assert len(callbacks) == 1  # the retry is queued after commit
    delivery.refresh_from_db()
    assert (first.response_status, delivery.status, delivery.attempt_count) == (500, DeliveryStatus.RETRYING, 1)
    assert delivery.next_attempt_at == now + timedelta(seconds=60)
    # Not due yet: a duplicate task sends nothing.
    assert webhook_delivery_attempt(delivery_id=delivery.pk, now=now + timedelta(seconds=59)) is None

    second = webhook_delivery_attempt(delivery_id=delivery.pk, now=now + timedelta(seconds=60))
    delivery.refresh_from_db()
    assert (second.response_status, delivery.attempt_count) == (500, 2)
    assert delivery.next_attempt_at == now + timedelta(seconds=60 + 120)
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 2

    third = webhook_delivery_attempt(delivery_id=delivery.pk, now=now + timedelta(seconds=180))
    delivery.refresh_from_db()
    endpoint.refresh_from_db()
    assert (third.response_status, third.succeeded) == (200, True)
    assert (delivery.status, delivery.attempt_count, delivery.next_attempt_at) == (DeliveryStatus.SUCCEEDED, 3, None)
    assert endpoint.consecutive_failures == 0
    assert list(delivery.attempts.values_list("number", "response_status", "response_body")) == [
        (1, 500, "answered 500"),
        (2, 500, "answered 500"),
        (3, 200, "answered 200"),
    ]
    assert [request["verified"] for request in receiver.requests] == [True, True, True]
    # Delivered: a late duplicate task sends nothing more.
    assert webhook_delivery_attempt(delivery_id=delivery.pk, now=now + timedelta(hours=1)) is None
    assert len(receiver.requests) == 3


def test_a_receiver_that_does_not_answer_in_time_is_a_failed_attempt(outbox_started, receiver, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
    receiver.script = ["hang"]
    receiver.hang_seconds = 1.0
    _endpoint(receiver)
    _customer()
    webhook_events_collect()
    delivery = WebhookDelivery.objects.get()

    attempt = webhook_delivery_attempt(delivery_id=delivery.pk)

    assert (attempt.response_status, attempt.succeeded, attempt.error) == (None, False, "No response within 0.3 s.")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count, delivery.last_response_status) == (
        DeliveryStatus.RETRYING,
        1,
        None,
    )


def test_a_refused_connection_is_a_failed_attempt(outbox_started, receiver):
    endpoint = _endpoint(receiver)
    webhook_endpoint_update(endpoint_id=endpoint.pk, url="http://127.0.0.1:9/closed")
    _customer()
    webhook_events_collect()

    attempt = webhook_delivery_attempt(delivery_id=WebhookDelivery.objects.get().pk)

    assert attempt.response_status is None
    assert "refused" in attempt.error.lower()


@override_settings(WEBHOOK_MAX_ATTEMPTS=2)
def test_a_delivery_gives_up_after_the_last_attempt(outbox_started, receiver):
    receiver.script = [503, 503]
    _endpoint(receiver)
    _customer()
    webhook_events_collect()
    delivery = WebhookDelivery.objects.get()
    now = clock.now()

    webhook_delivery_attempt(delivery_id=delivery.pk, now=now)
    webhook_delivery_attempt(delivery_id=delivery.pk, now=now + timedelta(hours=1))

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count, delivery.next_attempt_at) == (DeliveryStatus.FAILED, 2, None)
    assert webhook_delivery_attempt(delivery_id=delivery.pk, now=now + timedelta(days=1)) is None
    assert len(receiver.requests) == 2


@override_settings(WEBHOOK_DISABLE_AFTER_FAILURES=3)
def test_an_endpoint_failing_too_often_in_a_row_is_turned_off_until_staff_turn_it_on(outbox_started, receiver):
    receiver.script = [500, 500, 500]
    endpoint = _endpoint(receiver)
    for number in range(3):
        customer_create(name=f"Customer {number}", email=f"c{number}@example.com", country="IE", currency="EUR")
    webhook_events_collect()
    now = clock.now()
    for delivery in WebhookDelivery.objects.order_by("id"):
        webhook_delivery_attempt(delivery_id=delivery.pk, now=now)

    endpoint.refresh_from_db()
    assert (endpoint.consecutive_failures, endpoint.disabled_at) == (3, now)
    # Turned off: due deliveries wait, new events make no delivery for it.
    assert (
        webhook_delivery_attempt(delivery_id=WebhookDelivery.objects.first().pk, now=now + timedelta(hours=1)) is None
    )
    customer_create(name="Later", email="later@example.com", country="IE", currency="EUR")
    webhook_events_collect()
    assert WebhookDelivery.objects.count() == 3

    webhook_endpoint_update(endpoint_id=endpoint.pk, is_active=True)
    endpoint.refresh_from_db()
    assert (endpoint.consecutive_failures, endpoint.disabled_at) == (0, None)
    attempt = webhook_delivery_attempt(delivery_id=WebhookDelivery.objects.first().pk, now=now + timedelta(hours=1))
    assert attempt.succeeded is True


def test_redeliver_sends_again_now_whatever_the_state(outbox_started, receiver):
    receiver.script = [200, 200, 500]
    _endpoint(receiver)
    _customer()
    webhook_events_collect()
    delivery = WebhookDelivery.objects.get()
    webhook_delivery_attempt(delivery_id=delivery.pk)

    again = webhook_delivery_redeliver(delivery_id=delivery.pk)
    failed = webhook_delivery_redeliver(delivery_id=delivery.pk)

    assert (again.number, again.manual, again.response_status) == (2, True, 200)
    assert (failed.number, failed.manual, failed.response_status) == (3, True, 500)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count, delivery.last_response_status) == (
        DeliveryStatus.SUCCEEDED,
        1,
        500,
    )
    assert WebhookAttempt.objects.count() == 3
    assert len({request["body"]["id"] for request in receiver.requests}) == 1  # the same event each time


def test_a_manual_payment_sends_payment_succeeded_and_invoice_paid(outbox_started, receiver):
    from apps.payments.services import payment_record_manual

    invoice = make_open_invoice()
    endpoint = _endpoint(receiver, event_types=["payment.succeeded", "invoice.paid"])
    webhook_events_collect()  # the invoice's own events: not wanted by this endpoint
    assert not WebhookDelivery.objects.filter(endpoint=endpoint).exists()

    payment = payment_record_manual(
        customer_id=invoice.customer_id, amount=invoice.total.amount, currency=invoice.currency,
        method="bank_transfer", reference="SEPA 42", received_at=clock.now(),
    )  # fmt: skip
    webhook_events_collect()

    deliveries = WebhookDelivery.objects.filter(endpoint=endpoint).select_related("event").order_by("id")
    assert [delivery.event.type for delivery in deliveries] == ["invoice.paid", "payment.succeeded"]
    succeeded = WebhookEvent.objects.get(type="payment.succeeded")
    assert succeeded.data["object"]["id"] == payment.pk
    assert succeeded.data["object"]["reference"] == "SEPA 42"
    assert succeeded.data["object"]["allocations"] == [{"invoice": invoice.pk, "amount": str(invoice.total.amount)}]
    assert succeeded.data["object"]["amount"] == {"amount": str(invoice.total.amount), "currency": invoice.currency}
    for delivery in deliveries:
        assert webhook_delivery_attempt(delivery_id=delivery.pk).succeeded
    assert sorted(request["body"]["type"] for request in receiver.requests) == ["invoice.paid", "payment.succeeded"]
