from datetime import datetime
from decimal import Decimal

import pytest

from apps.accounts.tests.factories import CustomerFactory
from apps.catalog.services import billable_metric_create
from apps.subscriptions.periods import utc

# Ingestion time in these tests: events from 8 Feb to 15 Mar 2026 13:00 are inside the window.
NOW = utc(2026, 3, 15, 12)


@pytest.fixture
def customer(db):
    return CustomerFactory(external_id="acme")


@pytest.fixture
def make_metric(db):
    def _make(code: str = "api_calls", aggregation: str = "count", **kwargs):
        return billable_metric_create(code=code, name=code.replace("_", " ").title(), aggregation=aggregation, **kwargs)

    return _make


def event(
    transaction_id: str,
    at: datetime | str,
    *,
    customer: str = "acme",
    metric: str = "api_calls",
    **properties,
) -> dict:
    """An event as a sender would post it."""
    return {
        "transaction_id": transaction_id,
        "external_customer_id": customer,
        "metric_code": metric,
        "timestamp": at if isinstance(at, str) else at.isoformat(),
        "properties": properties,
    }


def D(value: str | int) -> Decimal:  # noqa: N802 - reads like a literal
    return Decimal(value)
