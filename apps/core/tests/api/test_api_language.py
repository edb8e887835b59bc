"""The API's errors speak the request's language (`Accept-Language: zh-Hans`), in the one error shape
`{"code", "message", "fields"}`, and English without the header: pagination, parsing, credentials
(ours and DRF's), permissions, throttling, the JSON 404, 405 and the request size limit."""

import pytest
from django.core.cache import cache
from django.test import override_settings
from django.urls import clear_url_caches

from apps.accounts.credentials import api_key_create

pytestmark = pytest.mark.django_db

CHINESE = {"HTTP_ACCEPT_LANGUAGE": "zh-Hans"}


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "fields"}
    return body


@pytest.fixture
def staff_client(client, superuser):
    client.force_login(superuser)
    return client


@pytest.mark.parametrize(
    ("query", "field", "english", "chinese"),
    [
        ("page=abc", "page", "Give a page number from 1.", "请填写从 1 开始的页码。"),
        ("page=99", "page", "There is no such page; the last one is `count` / `page_size`.",
         "没有这一页；最后一页是 `count` / `page_size`。"),
        ("page_size=0", "page_size", "Give a whole number from 1 to 500.", "请填写 1 到 500 之间的整数。"),
        ("cursor=zzz", "cursor", "Give a cursor from a previous page's links.", "请使用上一页链接中的游标。"),
        ("cursor=&page=1", "cursor", "Give either a page or a cursor, not both.", "请填写页码或游标，不能同时填写。"),
    ],
)  # fmt: skip
def test_pagination_errors(staff_client, query, field, english, chinese):
    assert _error(staff_client.get(f"/api/v1/customers?{query}"), 400) == {
        "code": "invalid",
        "message": "Invalid input.",
        "fields": {field: [english]},
    }
    assert _error(staff_client.get(f"/api/v1/customers?{query}", **CHINESE), 400) == {
        "code": "invalid",
        "message": "输入无效。",
        "fields": {field: [chinese]},
    }


def test_malformed_json(staff_client):
    def post(**headers):
        return staff_client.post("/api/v1/customers", data="{bad", content_type="application/json", **headers)

    english, chinese = _error(post(), 400), _error(post(**CHINESE), 400)

    assert (english["code"], chinese["code"]) == ("parse_error", "parse_error")
    assert english["message"].startswith("JSON parse error - Expecting property name")
    assert chinese["message"].startswith("JSON 解析错误 - ")


def test_unsupported_media_type(staff_client):
    def post(**headers):
        return staff_client.post("/api/v1/customers", data="x", content_type="text/plain", **headers)

    assert _error(post(), 415)["message"] == 'Unsupported media type "text/plain" in request.'
    assert _error(post(**CHINESE), 415) == {
        "code": "unsupported_media_type",
        "message": "不支持请求中的媒体类型 “text/plain”。",
        "fields": {},
    }


def test_method_not_allowed(staff_client):
    assert (
        _error(staff_client.put("/api/v1/customers", data="{}", content_type="application/json"), 405)["message"]
        == 'Method "PUT" not allowed.'
    )
    assert _error(
        staff_client.put("/api/v1/customers", data="{}", content_type="application/json", **CHINESE), 405
    ) == {
        "code": "method_not_allowed",
        "message": "方法 “PUT” 不被允许。",
        "fields": {},
    }


@pytest.mark.parametrize("path", ["/api/v1/customers/", "/api/v1/no-such-thing", "/api/v1/customers/999999"])
@pytest.mark.parametrize("debug", [False, True])
def test_not_found(staff_client, path, debug):
    with override_settings(DEBUG=debug):
        clear_url_caches()
        english = _error(staff_client.get(path), 404)
        chinese = _error(staff_client.get(path, **CHINESE), 404)

    assert english == {"code": "not_found", "message": "Not found.", "fields": {}}
    assert chinese == {"code": "not_found", "message": "未找到。", "fields": {}}


def test_no_credentials(client):
    assert _error(client.get("/api/v1/invoices"), 401)["message"] == "Authentication credentials were not provided."
    assert _error(client.get("/api/v1/invoices", **CHINESE), 401) == {
        "code": "not_authenticated",
        "message": "身份认证信息未提供。",
        "fields": {},
    }


def test_an_api_key_on_the_staff_api(client):
    _, raw_key = api_key_create(name="ingestion")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw_key}"}

    english = _error(client.get("/api/v1/customers", **auth), 401)
    chinese = _error(client.get("/api/v1/customers", **auth, **CHINESE), 401)

    assert english["message"].startswith("An API key (Bearer bp_…) is for sending usage events")
    assert chinese == {
        "code": "authentication_failed",
        "message": "API 密钥（Bearer bp_…）用于发送用量事件（/api/v1/events…）；"
        "此接口需要员工用户的令牌：Authorization: Token …",
        "fields": {},
    }


@pytest.mark.parametrize(
    ("authorization", "english", "chinese"),
    [
        ("Token not-a-token", "Invalid token.", "令牌无效。"),
        ("Token a b", "Invalid token header: give one token after Token.",
         "令牌请求头无效：请在 Token 后提供一个令牌。"),
        ("Basic dXNlcjpwYXNz",
         "The 'Basic' scheme is not accepted: send Authorization: Token … (a staff user's token).",
         "不接受 'Basic' 认证方式：请发送 Authorization: Token …（员工用户的令牌）。"),
        ("Bearer bpc_0123456789abcdef", "A customer API token (Bearer bpc_…) works only under /api/v1/portal/; this "
         "endpoint takes a staff user's token: Authorization: Token …",
         "客户 API 令牌（Bearer bpc_…）仅适用于 /api/v1/portal/；此接口需要员工用户的令牌：Authorization: Token …"),
    ],
)  # fmt: skip
def test_refused_credentials(client, authorization, english, chinese):
    auth = {"HTTP_AUTHORIZATION": authorization}

    assert _error(client.get("/api/v1/invoices", **auth), 401)["message"] == english
    assert _error(client.get("/api/v1/invoices", **auth, **CHINESE), 401)["message"] == chinese


def test_an_unknown_customer_token_on_the_customer_api(client):
    auth = {"HTTP_AUTHORIZATION": "Bearer bpc_0123456789abcdef"}

    assert _error(client.get("/api/v1/portal/invoices", **auth), 401)["message"] == "Unknown or revoked token."
    assert _error(client.get("/api/v1/portal/invoices", **auth, **CHINESE), 401)["message"] == "未知或已撤销的令牌。"


def test_permission_denied(client, make_staff):
    client.force_login(make_staff())

    assert (
        _error(client.get("/api/v1/customers"), 403)["message"] == "You do not have permission to perform this action."
    )
    assert _error(client.get("/api/v1/customers", **CHINESE), 403) == {
        "code": "permission_denied",
        "message": "您没有执行该操作的权限。",
        "fields": {},
    }


def test_throttled(client, make_staff, settings):
    cache.clear()  # the rate counters live in the cache
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "user": "1/hour"}
    client.force_login(make_staff("accounts.view_customer"))
    assert client.get("/api/v1/customers").status_code == 200

    english = _error(client.get("/api/v1/customers"), 429)
    chinese = _error(client.get("/api/v1/customers", **CHINESE), 429)

    assert english["code"] == chinese["code"] == "throttled"
    assert english["message"].startswith("Request was throttled. Expected available in ")
    assert chinese["message"].startswith("请求已被限流。 预计 ")


def test_request_too_large(client, settings):
    settings.API_MAX_REQUEST_BYTES = 10

    def post(**headers):
        return client.post("/api/v1/events", data='{"events": []}', content_type="application/json", **headers)

    assert _error(post(), 413)["message"] == "The request body is 14 bytes; the limit is 10 bytes."
    assert _error(post(**CHINESE), 413)["message"] == "请求体为 14 字节；上限为 10 字节。"
