from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from apps.accounts.tests.factories import UserFactory


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
def test_schema_endpoint_returns_the_schema(client, superuser):
    client.force_login(superuser)

    response = client.get(reverse("api-schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "Billing Portal API"
    assert "/api/v1/customers" in schema["paths"]
    assert "/api/v1/billing-runs" in schema["paths"]


@pytest.mark.django_db
def test_swagger_ui_loads_from_local_static_files(client, superuser):
    client.force_login(superuser)

    response = client.get(reverse("api-docs"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html


@pytest.mark.django_db
@pytest.mark.parametrize("url_name", ["api-schema", "api-docs"])
def test_schema_and_docs_are_for_staff_only(client, url_name):
    assert client.get(reverse(url_name)).status_code in (401, 403)
    client.force_login(UserFactory(is_staff=False))
    assert client.get(reverse(url_name)).status_code == 403
