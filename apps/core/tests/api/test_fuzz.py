"""Property-based fuzzing of the whole API against its own OpenAPI schema (schemathesis): for every
operation, generated requests (authenticated as a superuser, or with an API key for usage ingestion)
never get a 5xx, and every response conforms to the schema: a documented status code, content type,
headers and body shape.

Bounded for CI: FUZZ_MAX_EXAMPLES examples per operation (default 10), generated deterministically
(the same requests on every run); raise it locally to search further, e.g.
`FUZZ_MAX_EXAMPLES=200 .venv/bin/pytest -m fuzz`.
"""

import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from djmoney.money import Money
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from apps.accounts.services import api_key_create, user_token_create
from apps.accounts.tests.factories import CustomerFactory, UserFactory
from apps.catalog.services import billable_metric_create
from apps.catalog.tests.factories import PlanFactory
from apps.invoices.services import subscription_start
from apps.subscriptions.periods import utc
from billing_portal.wsgi import application

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "10"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

pytestmark = pytest.mark.fuzz


def _load_schema() -> schemathesis.schemas.BaseSchema:
    """The schema the API serves at /api/schema/ (generated the same way), requests sent to the WSGI app."""
    loaded = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
    loaded.app = application
    return loaded


schema = _load_schema()


@pytest.fixture(autouse=True)
def keep_the_test_connection(db):
    """Like Django's test client: keep the test's database connection (and its transaction) open
    across the requests instead of closing it at the end of each one."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def credentials(db) -> dict[str, str]:
    """A superuser's token for the staff API; an API key (with a customer and a metric it can meter)
    for usage ingestion."""
    superuser = UserFactory(username="fuzz-root", is_staff=True, is_superuser=True)
    _, token = user_token_create(user_id=superuser.pk, name="fuzz")
    # Something to list: a customer with a subscription and its first (finalized) invoice.
    customer = CustomerFactory(external_id="acme", currency="USD")
    billable_metric_create(code="api_calls", name="API calls")
    subscription_start(customer=customer, plan=PlanFactory(prices=[Money("49.00", "USD")]), now=utc(2026, 4, 1))
    _, api_key = api_key_create(name="fuzz")
    return {"staff": f"Token {token}", "api_key": f"Bearer {api_key}"}


@schema.parametrize()
@hypothesis_settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema_and_never_fails(case, credentials):
    security = {name for requirement in case.operation.definition.raw.get("security", []) for name in requirement}
    authorization = credentials["api_key"] if "apiKey" in security else credentials["staff"]

    checks = CHECKS
    if case.operation.path == "/api/v1/events/batch":
        # By design a batch is accepted whole and each bad event in it refused on its own (200 with the
        # reasons in `rejected`): an event missing a required field is not a rejected request.
        checks = [check for check in CHECKS if check is not negative_data_rejection]
    case.call_and_validate(headers={"Authorization": authorization}, checks=checks)
