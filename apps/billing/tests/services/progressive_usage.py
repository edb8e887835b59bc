"""What the progressive-billing tests send: `calls` API calls of a subscription's customer at midnight
of a day of 2026 (metric `api_calls`, sum of `calls`), ingested half an hour later."""

from apps.subscriptions.periods import utc
from apps.usage.services import usage_events_ingest


def send_calls(subscription, calls: int, *, day: int, month: int = 4, key: str = "") -> None:
    customer = subscription.customer
    result = usage_events_ingest(
        events=[
            {
                "transaction_id": f"{customer.external_id}-{month}-{day}-{key}",
                "external_customer_id": customer.external_id,
                "metric_code": "api_calls",
                "timestamp": utc(2026, month, day).isoformat(),
                "properties": {"calls": str(calls)},
            }
        ],
        now=utc(2026, month, day, 0, 30),
    )
    assert result.rejected == [], result.rejected
