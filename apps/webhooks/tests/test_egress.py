"""Webhooks go to public addresses over https only, checked when an endpoint is saved and again at
every send against the address actually connected to; no redirect is followed; an attempt keeps a
bounded excerpt of the answer and a class of error (apps/webhooks/egress.py)."""

import importlib
import ipaddress
import socket
from types import SimpleNamespace

import pytest
from django.apps import apps as django_apps
from django.db import connection
from django.urls import reverse

from apps.accounts.services import customer_create
from apps.core.errors import ValidationFailed
from apps.webhooks.constants import DeliveryStatus
from apps.webhooks.egress import URL_ADDRESS_MESSAGE, URL_SCHEME_MESSAGE, address_allowed
from apps.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from apps.webhooks.services import (
    webhook_delivery_attempt,
    webhook_delivery_redeliver,
    webhook_endpoint_create,
    webhook_endpoint_update,
    webhook_events_collect,
)

pytestmark = pytest.mark.django_db

ENDPOINTS = "/api/v1/webhook-endpoints"

# What the outside probe sent, and their relatives: loopback, unspecified, private, link-local (the
# cloud metadata address), shared, multicast, IPv6 unique-local and site-local, IPv4 inside IPv6
# (mapped, 6to4, NAT64), and a host name that resolves to loopback.
NOT_PUBLIC = [
    "https://127.0.0.1:8000/hooks",
    "https://[::1]/",
    "https://0.0.0.0:5432/",
    "https://10.0.0.1/",
    "https://169.254.169.254/latest/meta-data/",
    "https://localhost/hooks",
    "https://172.16.5.4/",
    "https://192.168.1.1/",
    "https://100.64.0.1/",
    "https://224.0.0.1/",
    "https://[::]/",
    "https://[fd00::1]/",
    "https://[fe80::1]/",
    "https://[fec0::1]/",
    "https://[ff02::1]/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:a9fe:a9fe]/",
    "https://[2002:7f00:1::]/",
    "https://[64:ff9b::a9fe:a9fe]/",
]


def _deliveries(endpoint: WebhookEndpoint) -> WebhookDelivery:
    customer_create(name="Liffey Labs", email="ap@liffey.example", country="IE", currency="EUR")
    webhook_events_collect()
    return WebhookDelivery.objects.get(endpoint=endpoint)


@pytest.fixture
def resolver(monkeypatch):
    """A fake DNS for chosen names (the stdlib resolver for everything else): name → list of answers,
    one per lookup (the last one repeats). `lookups` counts each name's lookups."""
    answers: dict[str, list[list[str]]] = {}
    lookups: dict[str, int] = {}
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return real_getaddrinfo(host, port, *args, **kwargs)
        lookups[host] = lookups.get(host, 0) + 1
        script = answers[host]
        addresses = script.pop(0) if len(script) > 1 else script[0]
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))
            if ":" in address
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
            for address in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    resolver.answers, resolver.lookups = answers, lookups
    return resolver


# --- At save ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", NOT_PUBLIC)
def test_an_endpoint_to_an_address_that_is_not_public_is_refused(url):
    with pytest.raises(ValidationFailed) as refused:
        webhook_endpoint_create(url=url)

    assert refused.value.fields == {"url": [URL_ADDRESS_MESSAGE]}
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/", "http://[::1]/", "http://0.0.0.0:5432/", "http://169.254.169.254/latest/"]
)
def test_the_probes_http_urls_are_refused_for_their_address_even_where_http_is_allowed(settings, url):
    settings.WEBHOOK_ALLOW_HTTP = True

    with pytest.raises(ValidationFailed) as refused:
        webhook_endpoint_create(url=url)

    assert refused.value.fields == {"url": [URL_ADDRESS_MESSAGE]}


def test_a_host_name_any_of_whose_addresses_is_not_public_is_refused(resolver):
    resolver.answers["mixed.test"] = [["93.184.216.34", "10.0.0.7"]]
    resolver.answers["public.test"] = [["93.184.216.34", "2606:2800:220:1::1"]]

    with pytest.raises(ValidationFailed) as refused:
        webhook_endpoint_create(url="https://mixed.test/hooks")
    endpoint, _ = webhook_endpoint_create(url="https://public.test/hooks")

    assert refused.value.fields == {"url": [URL_ADDRESS_MESSAGE]}
    assert list(WebhookEndpoint.objects.values_list("url", flat=True)) == [endpoint.url]


def test_http_is_refused_unless_the_development_setting_allows_it(settings):
    assert settings.WEBHOOK_ALLOW_HTTP is False  # the default, as in production

    with pytest.raises(ValidationFailed) as refused:
        webhook_endpoint_create(url="http://hooks.example.com/billing")
    settings.WEBHOOK_ALLOW_HTTP = True
    endpoint, _ = webhook_endpoint_create(url="http://hooks.example.com/billing")

    assert refused.value.fields == {"url": [URL_SCHEME_MESSAGE]}
    assert endpoint.url == "http://hooks.example.com/billing"


def test_the_private_network_allowlist_lets_only_its_networks_through(settings):
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = ["10.20.0.0/16"]

    endpoint, _ = webhook_endpoint_create(url="https://10.20.3.4/hooks")
    with pytest.raises(ValidationFailed):
        webhook_endpoint_create(url="https://10.21.0.1/hooks")

    assert list(WebhookEndpoint.objects.values_list("url", flat=True)) == [endpoint.url]


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1::1", True),
        ("::ffff:93.184.216.34", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("0.0.0.0", False),  # noqa: S104 - the address under test
        ("::", False),
        ("169.254.169.254", False),
        ("::ffff:169.254.169.254", False),
        ("::ffff:127.0.0.1", False),
        ("2002:a9fe:a9fe::1", False),  # 6to4 around 169.254.169.254
        ("64:ff9b::7f00:1", False),  # NAT64 around 127.0.0.1
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", False),  # Teredo
        ("100.64.0.1", False),
        ("198.18.0.1", False),
        ("192.0.2.1", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("fec0::1", False),
        ("fe80::1%1", False),
    ],
)
def test_address_rules(address, allowed):
    assert address_allowed(ipaddress.ip_address(address)) is allowed


def test_the_unspecified_address_and_multicast_are_never_let_through(settings):
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = ["0.0.0.0/0", "::/0"]

    assert address_allowed(ipaddress.ip_address("10.0.0.1")) is True
    assert address_allowed(ipaddress.ip_address("0.0.0.0")) is False  # noqa: S104
    assert address_allowed(ipaddress.ip_address("::")) is False
    assert address_allowed(ipaddress.ip_address("224.0.0.1")) is False


def test_the_api_refuses_a_non_public_url_with_a_field_error_and_changes_nothing(api_client, superuser):
    endpoint, _ = webhook_endpoint_create(url="https://hooks.example.com/a")
    api_client.force_authenticate(superuser)

    created = api_client.post(ENDPOINTS, {"url": "https://169.254.169.254/latest/meta-data/"})
    changed = api_client.patch(f"{ENDPOINTS}/{endpoint.pk}", {"url": "https://[::1]/"})

    for response in (created, changed):
        assert response.status_code == 400
        assert response.json() == {
            "code": "invalid",
            "message": "The webhook endpoint is not valid.",
            "fields": {"url": [URL_ADDRESS_MESSAGE]},
        }
    assert list(WebhookEndpoint.objects.values_list("url", flat=True)) == ["https://hooks.example.com/a"]


def test_the_api_refuses_http_with_a_field_error(api_client, superuser):
    api_client.force_authenticate(superuser)

    response = api_client.post(ENDPOINTS, {"url": "http://hooks.example.com/billing"})

    assert response.status_code == 400
    assert response.json()["fields"] == {"url": [URL_SCHEME_MESSAGE]}
    assert not WebhookEndpoint.objects.exists()


def test_the_admin_refuses_a_non_public_url_with_a_form_error(client, superuser):
    endpoint, _ = webhook_endpoint_create(url="https://hooks.example.com/a")
    client.force_login(superuser)

    added = client.post(reverse("admin:webhooks_webhookendpoint_add"), {"url": "https://10.0.0.1/", "is_active": "on"})
    changed = client.post(
        reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk]),
        {"url": "https://localhost:5432/", "description": "", "is_active": "on"},
    )

    for response in (added, changed):
        assert response.status_code == 200
        assert response.context["adminform"].form.errors == {"url": [URL_ADDRESS_MESSAGE]}
    assert list(WebhookEndpoint.objects.values_list("url", flat=True)) == ["https://hooks.example.com/a"]


# --- At every send ---------------------------------------------------------------------------------


def test_a_name_resolving_to_loopback_is_refused_at_send_without_connecting(
    outbox_started, receiver, settings, resolver
):
    resolver.answers["localhost"] = [["127.0.0.1"]]
    endpoint, _ = webhook_endpoint_create(url=receiver.url.replace("127.0.0.1", "localhost"))
    delivery = _deliveries(endpoint)
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = []  # the allowlist that let it be saved is gone

    attempt = webhook_delivery_attempt(delivery_id=delivery.pk)

    assert (attempt.response_status, attempt.response_body, attempt.error, attempt.succeeded) == (
        None,
        "",
        "Address not allowed.",
        False,
    )
    assert receiver.requests == []
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count) == (DeliveryStatus.RETRYING, 1)


def test_a_redeliver_to_a_stored_internal_url_is_refused_without_connecting(outbox_started, receiver, settings):
    endpoint, _ = webhook_endpoint_create(url=receiver.url)
    delivery = _deliveries(endpoint)
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = []

    attempt = webhook_delivery_redeliver(delivery_id=delivery.pk)

    assert (attempt.response_status, attempt.error) == (None, "Address not allowed.")
    assert receiver.requests == []


def test_http_is_refused_at_send_once_the_development_setting_is_off(outbox_started, receiver, settings):
    endpoint, _ = webhook_endpoint_create(url=receiver.url)
    delivery = _deliveries(endpoint)
    settings.WEBHOOK_ALLOW_HTTP = False

    attempt = webhook_delivery_attempt(delivery_id=delivery.pk)

    assert (attempt.response_status, attempt.error) == (None, "Only https:// URLs are allowed.")
    assert receiver.requests == []


def test_the_host_is_resolved_once_and_the_checked_address_is_the_one_connected_to(outbox_started, receiver, resolver):
    """DNS rebinding: the first answer is checked (allowed: the receiver), later ones would point at
    127.0.0.2 (not allowed). The request goes to the checked address, naming the host."""
    port = int(receiver.url.split(":")[2].split("/")[0])
    resolver.answers["rebind.test"] = [["127.0.0.1"], ["127.0.0.2"]]
    endpoint, receiver.secret = webhook_endpoint_create(url=f"http://rebind.test:{port}/hooks")
    resolver.answers["rebind.test"] = [["127.0.0.1"], ["127.0.0.2"]]
    resolver.lookups.clear()
    delivery = _deliveries(endpoint)

    attempt = webhook_delivery_attempt(delivery_id=delivery.pk)

    assert (attempt.response_status, attempt.succeeded) == (200, True)
    assert resolver.lookups == {"rebind.test": 1}
    [request] = receiver.requests
    assert (request["method"], request["path"], request["headers"]["Host"]) == ("POST", "/hooks", f"rebind.test:{port}")
    assert request["verified"] is True


def test_a_host_that_now_resolves_to_a_private_address_is_refused_at_send(outbox_started, receiver, resolver):
    port = int(receiver.url.split(":")[2].split("/")[0])
    resolver.answers["moved.test"] = [["127.0.0.1"]]
    endpoint, _ = webhook_endpoint_create(url=f"http://moved.test:{port}/hooks")
    delivery = _deliveries(endpoint)
    resolver.answers["moved.test"] = [["127.0.0.1", "10.0.0.1"]]

    attempt = webhook_delivery_attempt(delivery_id=delivery.pk)

    assert (attempt.response_status, attempt.error) == (None, "Address not allowed.")
    assert receiver.requests == []


def test_a_redirect_is_recorded_as_a_failed_attempt_and_not_followed(outbox_started, receiver, other_receiver):
    receiver.script = [302, 307]
    receiver.location = other_receiver.url
    endpoint, receiver.secret = webhook_endpoint_create(url=receiver.url)
    delivery = _deliveries(endpoint)

    attempt = webhook_delivery_attempt(delivery_id=delivery.pk)
    again = webhook_delivery_redeliver(delivery_id=delivery.pk)

    assert (attempt.response_status, attempt.succeeded, attempt.error) == (302, False, "Redirect not followed.")
    assert (again.response_status, again.succeeded, again.error) == (307, False, "Redirect not followed.")
    assert [request["method"] for request in receiver.requests] == ["POST", "POST"]
    assert other_receiver.requests == []
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_response_status) == (DeliveryStatus.RETRYING, 307)


def test_only_a_short_excerpt_of_the_answer_is_kept_and_shown(outbox_started, receiver, api_client, superuser):
    receiver.script = [500]
    receiver.answer_body = b"\x00ak=AKIA\xff" + b"s" * 100_000
    endpoint, receiver.secret = webhook_endpoint_create(url=receiver.url)
    delivery = _deliveries(endpoint)

    attempt = webhook_delivery_attempt(delivery_id=delivery.pk)
    api_client.force_authenticate(superuser)
    shown = api_client.get(f"/api/v1/webhook-deliveries/{delivery.pk}").json()["attempts"][0]

    expected = "\ufffdak=AKIA\ufffd" + "s" * 247
    assert len(expected) == 256
    assert attempt.response_body == expected
    assert WebhookAttempt.objects.get().response_body == expected  # stored (no NUL reaches PostgreSQL)
    assert (shown["response_status"], shown["response_body"]) == (500, expected)


def test_connection_errors_are_recorded_as_a_class_not_the_sockets_text(outbox_started, allow_local_receivers):
    endpoint, _ = webhook_endpoint_create(url="http://127.0.0.1:9/closed")
    delivery = _deliveries(endpoint)

    refused = webhook_delivery_attempt(delivery_id=delivery.pk)
    webhook_endpoint_update(endpoint_id=endpoint.pk, url="https://nowhere.invalid/hooks")
    not_found = webhook_delivery_redeliver(delivery_id=delivery.pk)

    assert (refused.response_status, refused.error) == (None, "Connection refused.")
    assert (not_found.response_status, not_found.error) == (None, "Host not found.")


def test_tls_goes_to_the_checked_address_with_the_hosts_name_and_certificate(
    outbox_started, tls_receiver, tls_certificate, resolver, monkeypatch
):
    monkeypatch.setenv("SSL_CERT_FILE", tls_certificate[0])  # trust the receiver's own certificate
    resolver.answers["hooks.test"] = [["127.0.0.1"]]
    endpoint, tls_receiver.secret = webhook_endpoint_create(url=tls_receiver.url)
    delivery = _deliveries(endpoint)

    attempt = webhook_delivery_attempt(delivery_id=delivery.pk)

    assert (attempt.response_status, attempt.succeeded, attempt.error) == (200, True, "")
    assert tls_receiver.tls_server_names == ["hooks.test"]
    port = tls_receiver.url.split(":")[2].split("/")[0]
    assert tls_receiver.requests[0]["headers"]["Host"] == f"hooks.test:{port}"


def test_a_certificate_that_is_not_the_hosts_or_not_trusted_is_a_tls_error(
    outbox_started, tls_receiver, tls_certificate, resolver, monkeypatch
):
    port = tls_receiver.url.split(":")[2].split("/")[0]
    resolver.answers["hooks.test"] = [["127.0.0.1"]]
    resolver.answers["other.test"] = [["127.0.0.1"]]
    endpoint, _ = webhook_endpoint_create(url=f"https://other.test:{port}/hooks")
    delivery = _deliveries(endpoint)

    monkeypatch.setenv("SSL_CERT_FILE", tls_certificate[0])
    wrong_name = webhook_delivery_attempt(delivery_id=delivery.pk)
    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent")
    webhook_endpoint_update(endpoint_id=endpoint.pk, url=tls_receiver.url)
    untrusted = webhook_delivery_redeliver(delivery_id=delivery.pk)

    assert (wrong_name.response_status, wrong_name.error) == (None, "TLS error.")
    assert (untrusted.response_status, untrusted.error) == (None, "TLS error.")
    assert tls_receiver.requests == []


def test_attempts_logged_before_keep_only_an_excerpt_and_a_class_of_error(outbox_started, receiver):
    endpoint, _ = webhook_endpoint_create(url=receiver.url)
    delivery = _deliveries(endpoint)
    webhook_delivery_attempt(delivery_id=delivery.pk)
    attempt = WebhookAttempt.objects.get()
    old_rows = [
        ("x" * 5000, ""),
        ("", "[Errno 111] Connection refused"),
        ("", "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
        ("", "[Errno -2] Name or service not known"),
        ("", "No response within 10.0 s."),
    ]
    WebhookAttempt.objects.bulk_create(
        [
            WebhookAttempt(
                delivery=delivery, number=number, attempted_at=attempt.attempted_at, url=attempt.url,
                response_body=body, error=error, duration_ms=1,
            )
            for number, (body, error) in enumerate(old_rows, start=2)
        ]
    )  # fmt: skip
    migration = importlib.import_module("apps.webhooks.migrations.0002_attempt_records_bounded")

    migration.bound_attempt_records(django_apps, SimpleNamespace(connection=connection))

    assert list(WebhookAttempt.objects.filter(number__gte=2).values_list("response_body", "error")) == [
        ("x" * 256, ""),
        ("", "Connection refused."),
        ("", "TLS error."),
        ("", "Connection failed."),
        ("", "No response within 10.0 s."),
    ]
