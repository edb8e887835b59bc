"""Every address under /api/ answers the API's JSON, also while DEBUG is on; a credential meant for
another part of the API is refused with a message that says where it works."""

import pytest
from django.test import override_settings
from django.urls import clear_url_caches

from apps.accounts.credentials import api_key_create

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/v1/customers/", "/api/v1/no-such-thing", "/api/v2/customers"])
@pytest.mark.parametrize("debug", [False, True])
def test_an_unknown_api_address_is_a_json_404(client, path, debug):
    with override_settings(DEBUG=debug):
        clear_url_caches()
        response = client.get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"


def test_an_api_key_on_the_staff_api_says_it_is_for_usage_events(client):
    _, raw_key = api_key_create(name="ingestion")

    response = client.get("/api/v1/customers", HTTP_AUTHORIZATION=f"Bearer {raw_key}")

    assert response.status_code == 401
    assert response.json()["message"].startswith("An API key (Bearer bp_…) is for sending usage events")


@pytest.mark.parametrize("path", ["/api/v1/portal/me", "/api/v1/portal/invoices", "/api/v1/portal/tokens"])
def test_an_api_key_on_the_customer_api_says_it_is_for_usage_events(client, path):
    # Was "Authentication credentials were not provided." (a valid credential, of the wrong kind).
    _, raw_key = api_key_create(name="ingestion")

    english = client.get(path, HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    chinese = client.get(path, HTTP_AUTHORIZATION=f"Bearer {raw_key}", HTTP_ACCEPT_LANGUAGE="zh-Hans")

    assert (english.status_code, chinese.status_code) == (401, 401)
    assert english.json() == {
        "code": "authentication_failed",
        "message": "An API key (Bearer bp_…) is for sending usage events (/api/v1/events…); this endpoint takes "
        "a customer user's token: Authorization: Bearer bpc_…",
        "fields": {},
    }
    assert chinese.json()["message"] == (
        "API 密钥（Bearer bp_…）用于发送用量事件（/api/v1/events…）；"
        "此接口需要客户用户的令牌：Authorization: Bearer bpc_…"
    )


def test_an_unknown_scheme_on_the_customer_api_is_named(client):
    response = client.get("/api/v1/portal/me", HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")

    assert response.status_code == 401
    assert response.json()["message"] == (
        "The 'Basic' scheme is not accepted: send Authorization: Bearer bpc_… (a customer user's token)."
    )


def test_no_credentials_on_the_customer_api_still_says_so(client):
    response = client.get("/api/v1/portal/me")

    assert response.status_code == 401
    assert response.json()["message"] == "Authentication credentials were not provided."


def test_a_customer_token_on_the_staff_api_says_where_it_works(client):
    response = client.get("/api/v1/invoices", HTTP_AUTHORIZATION="Bearer bpc_0123456789abcdef")

    assert response.status_code == 401
    assert "works only under /api/v1/portal/" in response.json()["message"]


def test_an_unknown_scheme_is_named(client):
    response = client.get("/api/v1/invoices", HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")

    assert response.status_code == 401
    assert response.json()["message"].startswith("The 'Basic' scheme is not accepted")


def test_no_credentials_still_says_so(client):
    response = client.get("/api/v1/invoices")

    assert response.status_code == 401
    assert response.json()["message"] == "Authentication credentials were not provided."


def test_a_post_to_no_endpoint_is_a_json_404_not_a_csrf_refusal(superuser):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)

    response = client.post("/api/v1/coupons/0/archive/again", {})

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
