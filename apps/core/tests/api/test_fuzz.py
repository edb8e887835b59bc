"""Property-based fuzzing of the whole API against its own OpenAPI schema (schemathesis): for every
operation, generated requests (authenticated as a superuser, or with an API key for usage ingestion)
never get a 5xx, and every response conforms to the schema: a documented status code, content type,
headers and body shape.

Bounded for CI: FUZZ_MAX_EXAMPLES examples per operation (default 10), generated deterministically
(the same requests on every run); raise it locally to search further, e.g.
`FUZZ_MAX_EXAMPLES=200 .venv/bin/pytest -m fuzz`.

A second pass sends what databases refuse in every field: valid requests (FUZZ_HOSTILE_EXAMPLES per
operation, default 3) are sent again three times — with a NUL character added to every string (JSON
body, query string, path), with an unpaired surrogate (`\\ud800`) added to every string of a JSON body
(a URL cannot carry one), and with every number made huge (`1e400` in a JSON body, `1e400` or a
400-digit integer in the query and path). Checks: no 5xx, and a documented status, content type,
headers and body.
"""

import copy
import json
import os
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from djmoney.money import Money
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from apps.accounts.credentials import api_key_create, user_token_create
from apps.accounts.tests.factories import CustomerFactory, UserFactory
from apps.billing.services import subscription_start
from apps.catalog.services import billable_metric_create
from apps.catalog.tests.factories import PlanFactory
from apps.subscriptions.periods import utc
from billing_portal.wsgi import application

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "10"))
HOSTILE_EXAMPLES = int(os.environ.get("FUZZ_HOSTILE_EXAMPLES", "3"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

pytestmark = pytest.mark.fuzz


def _load_schema(raw: dict) -> schemathesis.schemas.BaseSchema:
    """The schema the API serves at /api/schema/ (generated the same way), requests sent to the WSGI app."""
    loaded = schemathesis.openapi.from_dict(copy.deepcopy(raw))
    loaded.app = application
    return loaded


_RAW_SCHEMA = SchemaGenerator().get_schema(request=None, public=True)
schema = _load_schema(_RAW_SCHEMA)
# The hostile pass: valid requests from the fuzzing phase only (no coverage or example phases), each
# then made hostile field by field.
hostile_schema = _load_schema(_RAW_SCHEMA)
hostile_schema.config.phases.examples.enabled = False
hostile_schema.config.phases.coverage.enabled = False
hostile_schema.config.generation.modes = [GenerationMode.POSITIVE]


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


# --- What databases refuse, in every field --------------------------------------------------------

HOSTILE_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
HUGE_NUMBER = "__huge_number__"  # a JSON number no float holds (1e400), written into the body's text


def _hostile(value: Any, variant: str) -> Any:
    """`value` (a body, a query, path parameters) with every string and number made hostile."""
    if isinstance(value, dict):
        return {key: _hostile(item, variant) for key, item in value.items()}
    if isinstance(value, list):
        return [_hostile(item, variant) for item in value]
    if isinstance(value, str):
        return value + ("\x00" if variant == "nul" else "\ud800" if variant == "surrogate" else "")
    if isinstance(value, int | float) and not isinstance(value, bool) and variant == "huge":
        return HUGE_NUMBER
    return value


def _hostile_json(body: Any) -> bytes:
    # json.dumps escapes the surrogate (\\ud800), as any JSON sender may.
    return json.dumps(body).replace(f'"{HUGE_NUMBER}"', "1e400").encode()


@hostile_schema.parametrize()
@hypothesis_settings(
    max_examples=HOSTILE_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_nul_surrogates_and_huge_numbers_in_every_field_never_fail(case, credentials):
    security = {name for requirement in case.operation.definition.raw.get("security", []) for name in requirement}
    headers = {"Authorization": credentials["api_key"] if "apiKey" in security else credentials["staff"]}
    json_body = case.media_type == "application/json" and isinstance(case.body, dict | list)

    for variant in ("nul", "surrogate", "huge"):
        hostile = case.derive(keep_auth=True)
        kwargs: dict[str, Any] = {}
        if variant != "surrogate":  # a URL carries no surrogate: UTF-8 cannot encode one
            query = _hostile(case.query, variant)
            hostile.query = {k: ("1e400" if v == HUGE_NUMBER else v) for k, v in query.items()}
            path_parameters = _hostile(case.path_parameters, variant)
            hostile.path_parameters = {
                k: ("1" + "0" * 400 if v == HUGE_NUMBER else v) for k, v in path_parameters.items()
            }
        if json_body:
            kwargs["data"] = _hostile_json(_hostile(case.body, variant))
            kwargs["headers"] = {**headers, "Content-Type": "application/json"}
        else:
            kwargs["headers"] = headers
        hostile.call_and_validate(checks=HOSTILE_CHECKS, **kwargs)
