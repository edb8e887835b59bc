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


@pytest.fixture
def billed_january(db, customer, make_metric):
    """API calls at 0.01 each, billed monthly from 1 Jan 2026; January's 3 events billed on 1 Feb, and one
    February event in the open period."""
    from apps.billing.services import bill_due_subscriptions
    from apps.catalog.tests.factories import PlanFactory, add_charge
    from apps.subscriptions.tests.factories import make_subscription
    from apps.usage.partitions import partitions_ensure
    from apps.usage.services import usage_events_ingest

    metric = make_metric()
    plan = PlanFactory()
    add_charge(
        plan.versions.get(), name="API calls", price_model="per_unit", kind="usage", metric_code="api_calls",
        amount=Decimal("0.01"),
    )  # fmt: skip
    make_subscription(customer=customer, plan=plan, started_at=utc(2026, 1, 1))
    partitions_ensure(now=utc(2026, 1, 10))
    january = [event(f"jan-{n}", utc(2026, 1, 10 + n, 12)) for n in range(3)]
    assert usage_events_ingest(events=january, now=utc(2026, 1, 20)).accepted == 3
    bill_due_subscriptions(now=utc(2026, 2, 1, 1))
    assert usage_events_ingest(events=[event("feb-1", utc(2026, 2, 3))], now=utc(2026, 2, 3, 1)).accepted == 1
    return metric
