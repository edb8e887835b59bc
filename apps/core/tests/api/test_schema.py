import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse


def test_openapi_schema_is_valid_without_warnings(tmp_path):
    # --fail-on-warn turns every drf-spectacular warning or error into a failure (SystemExit).
    target = tmp_path / "schema.yaml"
    stderr = StringIO()

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target), stderr=stderr)

    assert stderr.getvalue() == ""
    schema = target.read_text()
    assert "/api/v1/invoices/{id}/pdf:" in schema
    assert "name: Idempotency-Key" in schema


@pytest.mark.django_db
def test_schema_is_public_and_describes_every_authentication_scheme_and_the_error_shape(client):
    response = client.get(reverse("api-schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "Billing Portal API"
    assert "/api/v1/customers" in schema["paths"]
    assert "/api/v1/billing-runs" in schema["paths"]
    assert set(schema["components"]["securitySchemes"]) == {"tokenAuth", "cookieAuth", "apiKey", "customerToken"}
    assert {"customerToken": []} in schema["paths"]["/api/v1/portal/me"]["get"]["security"]
    assert {"customerToken": []} not in schema["paths"]["/api/v1/customers"]["get"]["security"]
    assert sorted(schema["components"]["schemas"]["ErrorOutput"]["required"]) == ["code", "fields", "message"]
    assert schema["paths"]["/api/v1/events/batch"]["post"]["security"] == [{"apiKey": []}]
    # A customer token can list tokens, but making or revoking one needs the portal's session.
    assert {"customerToken": []} in schema["paths"]["/api/v1/portal/tokens"]["get"]["security"]
    assert schema["paths"]["/api/v1/portal/tokens"]["post"]["security"] == [{"cookieAuth": []}]
    assert schema["paths"]["/api/v1/portal/tokens/{id}"]["delete"]["security"] == [{"cookieAuth": []}]


@pytest.mark.django_db
def test_every_operation_documents_its_error_responses_with_the_error_shape(client):
    schema = client.get(reverse("api-schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    error_ref = {"$ref": "#/components/schemas/ErrorOutput"}
    operations = [(path, method, op) for path, ops in schema["paths"].items() for method, op in ops.items()]
    assert len(operations) > 60
    for path, method, op in operations:
        statuses = set(op["responses"])
        expected = {"401", "403", "429", "503"} | ({"404"} if "{" in path else set())
        if method in ("post", "put", "patch"):
            expected |= {"400", "413"}
        assert expected <= statuses, (method, path, statuses)
        for status in statuses - {"200", "201", "202", "204"}:
            assert op["responses"][status]["content"]["application/json"]["schema"] == error_ref, (method, path)
        assert op["responses"]["429"]["headers"]["Retry-After"]["schema"] == {"type": "integer"}


@pytest.mark.django_db
def test_schema_is_served_even_with_a_bad_token(client):
    response = client.get(reverse("api-schema"), HTTP_AUTHORIZATION="Token not-a-token")

    assert response.status_code == 200


@pytest.mark.django_db
def test_the_endpoints_stay_protected(client):
    response = client.get("/api/v1/customers")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.django_db
def test_every_operation_in_the_public_schema_stays_protected(client):
    """The schema is public; none of the operations it describes answers without credentials."""
    schema = client.get(reverse("api-schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    answers = {}
    for path, operations in schema["paths"].items():
        url = re.sub(r"\{[^}]+\}", "1", path)
        for method, operation in operations.items():
            assert operation.get("security"), (method, path)  # each operation names its scheme
            response = getattr(client, method)(url, data={}, content_type="application/json")
            answers[f"{method.upper()} {path}"] = (response.status_code, response.json()["code"])

    assert len(answers) > 60
    assert {answer for answer in answers.values()} == {(401, "not_authenticated")}, answers


@pytest.mark.django_db
def test_swagger_ui_is_public_and_loads_from_local_static_files_without_inline_script(client):
    response = client.get(reverse("api-docs"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html
    assert "<script>" not in html  # its start-up script is a file of its own
    assert "script-src 'self'" in response["Content-Security-Policy"]
    script = client.get(reverse("api-docs") + "?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()


@pytest.mark.django_db
def test_redoc_is_public_and_loads_nothing_from_elsewhere(client):
    response = client.get(reverse("api-redoc"))

    assert response.status_code == 200
    html = response.content.decode()
    assert '<redoc spec-url="/api/schema/">' in html
    assert "https://" not in html
    assert "<script>" not in html
