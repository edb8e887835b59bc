"""Request limits: rates per user, per API key and per client address (429 + Retry-After), body size
(413), and an unreachable database (503 + Retry-After)."""

import json

import pytest
from django.core.cache import cache
from django.db import OperationalError
from django.urls import reverse

from apps.accounts.credentials import api_key_create
from apps.accounts.models import Customer
from apps.core.api.exception_handler import api_exception_handler
from apps.core.api.serializers import MAX_LIST_ITEMS
from apps.core.rate_limits import parse_rate
from apps.core.tests.rate_windows import inside_one_window
from apps.invoices.models import CreditNote
from apps.invoices.tests.factories import make_manual_invoice
from apps.usage.models import UsageEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()  # the rate counters live in the cache
    with inside_one_window():
        yield
    cache.clear()


def _event(transaction_id: str) -> dict:
    return {"transaction_id": transaction_id, "external_customer_id": "nobody", "metric_code": "x", "timestamp": 0}


@pytest.mark.parametrize(
    ("rate", "parsed"),
    [
        ("600/minute", (600, 60)),
        ("5/second", (5, 1)),
        ("100/hour", (100, 3600)),
        ("1/day", (1, 86400)),
        ("", None),
        ("3/15minute", (3, 900)),
        ("20/2h", (20, 7200)),
    ],
)
def test_rates_are_read_as_count_per_period(rate, parsed):
    assert parse_rate(rate) == parsed


def test_a_bad_rate_is_refused():
    with pytest.raises(ValueError, match="Bad throttle rate 'ten/minute'"):
        parse_rate("ten/minute")
    with pytest.raises(ValueError, match="Bad throttle rate '3/0minute'"):
        parse_rate("3/0minute")


def test_a_user_over_the_limit_gets_429_with_retry_after(api_client, make_staff, settings):
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "user": "2/minute"}
    user = make_staff("accounts.view_customer")
    api_client.force_authenticate(user)

    statuses = [api_client.get("/api/v1/customers").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    response = api_client.get("/api/v1/customers")
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert response.json()["fields"] == {}
    assert 1 <= int(response["Retry-After"]) <= 60


def test_users_are_counted_separately(api_client, make_staff, settings):
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "user": "1/minute"}
    first, second = make_staff("accounts.view_customer"), make_staff("accounts.view_customer")

    api_client.force_authenticate(first)
    assert [api_client.get("/api/v1/customers").status_code for _ in range(2)] == [200, 429]
    api_client.force_authenticate(second)
    assert api_client.get("/api/v1/customers").status_code == 200


def test_a_throttled_write_changes_nothing(api_client, make_staff, settings):
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "user": "1/minute"}
    api_client.force_authenticate(make_staff("accounts.view_customer", "accounts.add_customer"))
    api_client.get("/api/v1/customers")

    response = api_client.post("/api/v1/customers", {"name": "Late Ltd", "email": "a@late.example", "currency": "USD"})

    assert response.status_code == 429
    assert not Customer.objects.exists()


def test_ingestion_is_limited_per_api_key(api_client, settings):
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "api_key": "2/minute"}
    _, first_key = api_key_create(name="first")
    _, second_key = api_key_create(name="second")
    url = reverse("api:event-batch")

    def send(key: str, n: int):
        return api_client.post(url, {"events": [_event(f"{key[:8]}-{n}")]}, headers={"Authorization": f"Bearer {key}"})

    first = [send(first_key, n).status_code for n in range(3)]
    second = send(second_key, 0)

    assert first == [200, 200, 429]
    assert second.status_code == 200
    throttled = send(first_key, 9)
    assert throttled.json()["code"] == "throttled"
    assert int(throttled["Retry-After"]) >= 1


def test_anonymous_requests_are_limited_per_address(client, settings):
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "anon": "2/minute"}

    statuses = [client.get(reverse("api-schema"), REMOTE_ADDR="10.0.0.1").status_code for _ in range(3)]
    other = client.get(reverse("api-schema"), REMOTE_ADDR="10.0.0.2")

    assert statuses == [200, 200, 429]
    assert other.status_code == 200


def test_an_empty_rate_means_no_limit(api_client, make_staff, settings):
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "user": ""}
    api_client.force_authenticate(make_staff("accounts.view_customer"))

    assert {api_client.get("/api/v1/customers").status_code for _ in range(5)} == {200}


def test_an_unreachable_rate_limit_cache_lets_requests_through(api_client, make_staff, settings):
    settings.CACHES = {
        **settings.CACHES,
        "unreachable": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"},
    }
    settings.API_THROTTLE_CACHE = "unreachable"
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "user": "1/minute"}
    api_client.force_authenticate(make_staff("accounts.view_customer"))

    assert [api_client.get("/api/v1/customers").status_code for _ in range(3)] == [200, 200, 200]


def test_a_body_over_the_limit_gets_413_before_it_is_read(api_client, settings):
    settings.API_MAX_REQUEST_BYTES = 1000
    _, key = api_key_create(name="big")
    body = json.dumps({"events": [_event(f"t-{n}") for n in range(20)]})
    assert len(body) > 1000

    response = api_client.post(
        reverse("api:event-batch"), body, content_type="application/json", headers={"Authorization": f"Bearer {key}"}
    )

    assert response.status_code == 413
    assert response.json() == {
        "code": "request_too_large",
        "message": f"The request body is {len(body):,} bytes; the limit is 1,000 bytes.",
        "fields": {},
    }
    assert not UsageEvent.objects.exists()


def test_a_body_under_the_limit_goes_through(api_client, settings):
    settings.API_MAX_REQUEST_BYTES = 1000
    _, key = api_key_create(name="small")

    response = api_client.post(
        reverse("api:event-batch"), {"events": [_event("t-1")]}, headers={"Authorization": f"Bearer {key}"}
    )

    assert response.status_code == 200
    assert response.json()["rejected"][0]["code"] == "unknown_customer"


def test_a_batch_over_the_limit_is_refused_whole(api_client, settings):
    settings.USAGE_EVENTS_MAX_BATCH = 3
    _, key = api_key_create(name="batch")

    response = api_client.post(
        reverse("api:event-batch"),
        {"events": [_event(f"t-{n}") for n in range(4)]},
        headers={"Authorization": f"Bearer {key}"},
    )

    assert response.status_code == 400
    assert response.json()["fields"] == {"events": ["Send at most 3 events per batch."]}
    assert response.json()["message"] == "A batch holds at most 3 events; this one has 4."


def test_a_lost_database_connection_is_503_with_retry_after():
    response = api_exception_handler(OperationalError("server closed the connection unexpectedly"), {})

    assert response.status_code == 503
    assert response.data == {
        "code": "service_unavailable",
        "message": "The service is briefly unavailable; retry the request.",
        "fields": {},
    }
    assert response["Retry-After"] == "5"


def test_a_credit_note_with_more_lines_than_the_limit_is_refused_and_writes_nothing(api_client, superuser):
    invoice = make_manual_invoice(lines=[("Seats", "4", "200.00")])
    line = invoice.lines.get()
    api_client.force_authenticate(superuser)
    lines = [{"invoice_line": line.pk, "amount": {"amount": "0.01", "currency": "USD"}}] * (MAX_LIST_ITEMS + 1)

    response = api_client.post(
        reverse("api:invoice-credit-notes", args=[invoice.pk]), {"reason": "other", "lines": lines}
    )

    assert response.status_code == 400
    assert response.json()["fields"] == {"lines": [f"Ensure this field has no more than {MAX_LIST_ITEMS} elements."]}
    assert not CreditNote.objects.exists()
