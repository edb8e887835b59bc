"""No request parameter holding text PostgreSQL cannot store (NUL, unpaired surrogates) reaches a query:
the path, query string, form fields and cookies are checked by `UnstorableTextMiddleware` (400), JSON
bodies by the API's parser (400 with a field error).

On PostgreSQL, the portal API filter, the admin changelist filter, the session cookie and the JSON
body nested too deep answered 500 before (marked "was a 500"); the other cases were refused or
ignored by the view in one way or another, and show that the guard answers the same everywhere."""

import json

import pytest
from django.urls import reverse

from apps.accounts.models import Customer, CustomerMembership
from apps.accounts.tests.factories import CustomerFactory, UserFactory
from apps.catalog.models import BillableMetric

pytestmark = pytest.mark.django_db

NUL = "contains the NUL character (\\u0000), which cannot be stored."
SURROGATE = "contains an unpaired surrogate (\\ud800 to \\udfff): it is not valid Unicode text."
NOT_FINITE = "is not a finite number (e.g. 1e400 is beyond any number stored)."


def _capitalized(message: str) -> str:
    return message[0].upper() + message[1:]


def _error(field: str, message: str) -> dict:
    return {"code": "invalid", "message": f"{field} {message}", "fields": {field: [_capitalized(message)]}}


@pytest.fixture
def staff_client(api_client, superuser):
    api_client.force_authenticate(superuser)
    return api_client


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/customers?search=%00", "search"),
        ("/api/v1/invoices?status=%00", "status"),
        ("/api/v1/customers?external_id=acme%00&page=1", "external_id"),
    ],
)
def test_a_nul_in_an_api_query_parameter_is_a_400_naming_it(staff_client, url, field):
    CustomerFactory()

    response = staff_client.get(url)

    assert response.status_code == 400
    assert response.json() == _error(field, NUL)


def test_a_nul_in_a_portal_api_filter_is_a_400_not_a_500(api_client):
    """The outside probe's `GET /api/v1/portal/invoices?status=%00` (a customer's user): was a 500."""
    user = UserFactory(username="alpha-owner")
    CustomerMembership.objects.create(customer=CustomerFactory(), user=user, role="owner")
    api_client.force_authenticate(user)

    response = api_client.get("/api/v1/portal/invoices?status=%00")

    assert response.status_code == 400
    assert response.json() == _error("status", NUL)
    assert api_client.get("/api/v1/portal/invoices?status=open").status_code == 200


def test_a_nul_in_a_query_parameters_name_is_a_400(staff_client):
    response = staff_client.get("/api/v1/customers?sea%00rch=x")

    assert response.status_code == 400
    assert response.json()["fields"] == {"sea\ufffdrch": [_capitalized(f"has a name that {NUL}")]}


def test_an_admin_changelist_filter_with_nul_is_a_plain_400_page(client, superuser):
    # Was a 500 (the filter went into the query).
    client.force_login(superuser)

    response = client.get("/admin/invoices/invoice/?status=%00")

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert b"Bad Request (400)" in response.content


def test_a_portal_page_path_with_nul_is_a_400(client):
    response = client.get("/portal/invoices/1%00/")

    assert response.status_code == 400
    assert b"Bad Request (400)" in response.content


@pytest.mark.parametrize("url", [reverse("admin:login"), "/portal/login/"])
def test_a_login_form_with_nul_in_the_username_is_a_400_and_nothing_is_looked_up(client, url, settings):
    settings.AXES_ENABLED = True  # as in production: the lockout records the username too

    response = client.post(url, {"username": "root\x00", "password": "x"})

    assert response.status_code == 400
    assert b"Bad Request (400)" in response.content


def test_a_session_cookie_with_nul_is_a_400(client):
    # Was a 500 (the session lookup). In a quoted cookie value, the octal escape \000 is a NUL.
    response = client.get("/portal/", HTTP_COOKIE='sessionid="abcdefgh\\000ijklmnop"')

    assert response.status_code == 400


def test_the_api_form_body_with_nul_is_a_400_in_the_error_shape(staff_client):
    response = staff_client.post(
        "/api/v1/customers", "name=Acme%00&email=a%40b.example&country=IE&currency=EUR",
        content_type="application/x-www-form-urlencoded",
    )  # fmt: skip

    assert response.status_code == 400
    assert response.json() == _error("name", NUL)
    assert not Customer.objects.exists()


def test_clean_parameters_pass(staff_client, client, superuser):
    CustomerFactory(name="Acmé")
    client.force_login(superuser)

    assert staff_client.get("/api/v1/customers?search=Acm%C3%A9").json()["count"] == 1
    assert client.get("/admin/invoices/invoice/?status=open").status_code == 200


# --- JSON bodies (apps/core/api/parsers.py) ------------------------------------------------------


def _customer(**overrides) -> str:
    return json.dumps({"name": "Acme", "email": "ap@acme.example", "country": "IE", "currency": "EUR", **overrides})


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (_customer(name="Acme\ud800"), "name", SURROGATE),
        (_customer(name="Acme\u0000"), "name", NUL),
        (
            _customer(billing_contacts=[{"name": "\udfff", "email": "x@acme.example"}]),
            "billing_contacts.0.name",
            SURROGATE,
        ),
    ],
)
def test_text_no_database_can_store_in_a_json_body_is_a_field_error(staff_client, body, field, message):
    response = staff_client.post("/api/v1/customers", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == _error(field, message)
    assert not Customer.objects.exists()


def test_a_number_no_column_holds_in_a_json_body_is_a_field_error(staff_client):
    body = '{"code": "gb", "name": "GB", "aggregation": "sum", "field_name": "gb", "filters": {"tier": [1e400]}}'

    response = staff_client.post("/api/v1/billable-metrics", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["fields"] == {"filters.tier.0": [_capitalized(NOT_FINITE)]}
    assert not BillableMetric.objects.exists()


def test_a_json_body_nested_too_deep_for_the_parser_is_a_400(staff_client):
    # Was a 500 (RecursionError in the parser).
    body = '{"name": ' + "[" * 100_000 + "]" * 100_000 + "}"

    response = staff_client.post("/api/v1/customers", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {
        "code": "parse_error",
        "message": "JSON parse error - the body nests deeper than the parser can read.",
        "fields": {},
    }


def test_every_operation_documents_the_400(client):
    """Any operation can answer 400 for a parameter holding NUL (found by the API fuzzing's hostile pass:
    operations without filters or a body did not document it)."""
    schema = client.get(reverse("api-schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    undocumented = [
        f"{method.upper()} {path}"
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "400" not in operation["responses"]
    ]

    assert undocumented == []


# --- In the request's language --------------------------------------------------------------------

CHINESE = {"HTTP_ACCEPT_LANGUAGE": "zh-Hans"}
NUL_ZH = "包含 NUL 字符（\\u0000），无法存储。"


def test_the_refusal_of_a_query_parameter_speaks_the_requests_language(staff_client):
    english = staff_client.get("/api/v1/customers?search=%00")
    chinese = staff_client.get("/api/v1/customers?search=%00", **CHINESE)
    chinese_name = staff_client.get("/api/v1/customers?sea%00rch=x", **CHINESE)

    assert english.json() == _error("search", NUL)
    assert chinese.status_code == 400
    assert chinese.json() == {"code": "invalid", "message": f"search {NUL_ZH}", "fields": {"search": [NUL_ZH]}}
    assert chinese_name.json() == {
        "code": "invalid",
        "message": f"参数 sea\ufffdrch 的名称{NUL_ZH}",
        "fields": {"sea\ufffdrch": [f"名称{NUL_ZH}"]},
    }


def test_the_refusal_of_a_json_body_speaks_the_requests_language(staff_client):
    def post(body, **headers):
        return staff_client.post("/api/v1/customers", body, content_type="application/json", **headers)

    contacts = _customer(billing_contacts=[{"name": "\udfff", "email": "x@acme.example"}])
    surrogate_zh = "包含未配对的代理项（\\ud800 至 \\udfff）：不是有效的 Unicode 文本。"

    assert post(_customer(name="Acme\u0000")).json() == _error("name", NUL)
    assert post(_customer(name="Acme\u0000"), **CHINESE).json() == {
        "code": "invalid",
        "message": f"name {NUL_ZH}",
        "fields": {"name": [NUL_ZH]},
    }
    assert post(contacts, **CHINESE).json() == {
        "code": "invalid",
        "message": f"billing_contacts.0.name {surrogate_zh}",
        "fields": {"billing_contacts.0.name": [surrogate_zh]},
    }
    assert post('"\\u0000"', **CHINESE).json()["message"] == f"请求正文 {NUL_ZH}"
    assert post('"\\u0000"').json()["message"] == f"The request body {NUL}"
    assert not Customer.objects.exists()


def test_a_number_no_column_holds_is_refused_in_the_requests_language(staff_client):
    body = '{"code": "gb", "name": "GB", "aggregation": "sum", "field_name": "gb", "filters": {"tier": [1e400]}}'

    response = staff_client.post("/api/v1/billable-metrics", body, content_type="application/json", **CHINESE)

    assert response.status_code == 400
    assert response.json()["fields"] == {"filters.tier.0": ["不是有限数（例如 1e400 超出了任何可存储的数值）。"]}
