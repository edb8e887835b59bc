"""The portal's two customers (A and B on the Starter plan: 49.00 USD a month in advance plus API
calls at 0.01 USD each, with 6 calls so far in March 2026; the test clock at 16 March) serve here."""

import pytest
from django.core.cache import cache

from apps.portal.tests.conftest import NOW, world  # noqa: F401
from apps.usage.services import usage_events_ingest


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


def api_calls(customer, count: int, *, at=NOW, prefix: str = "more") -> None:
    usage_events_ingest(
        events=[
            {
                "transaction_id": f"{customer.external_id}-{prefix}-{n}",
                "external_customer_id": customer.external_id,
                "metric_code": "api_calls",
                "timestamp": at.isoformat(),
                "properties": {},
            }
            for n in range(count)
        ],
        now=at,
    )
