"""An alert fires once per crossing while usage is ingested and evaluations run at the same time
(PostgreSQL: real concurrent transactions; the unique constraint on the crossing is the guard)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection

from apps.alerts.models import AlertCrossing
from apps.alerts.services import alert_create, alerts_evaluate_customer
from apps.core.tests.concurrency import run_in_threads
from apps.portal.tests.conftest import NOW
from apps.usage.services import usage_events_ingest

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent transactions need a real database server"),
]

INGESTERS = 4
EVALUATORS = 4
BATCHES = 10  # per ingester, one event each: 6 calls before + 4 × 10 = 46 calls


def test_an_alert_fires_once_per_crossing_under_concurrent_ingestion(world):
    customer = world.a.customer
    alert = alert_create(customer=customer, kind="usage", metric="api_calls", thresholds=["10", "20", "30", "40"])

    def ingest(index: int) -> list:
        for batch in range(BATCHES):
            result = usage_events_ingest(
                events=[
                    {
                        "transaction_id": f"race-{index}-{batch}",
                        "external_customer_id": customer.external_id,
                        "metric_code": "api_calls",
                        "timestamp": (NOW - timedelta(minutes=index * BATCHES + batch + 1)).isoformat(),
                        "properties": {},
                    }
                ],
                now=NOW,
            )
            assert result.accepted == 1
        return []

    def evaluate() -> list:
        fired = []
        for _ in range(3 * BATCHES):
            fired += [crossing.pk for crossing in alerts_evaluate_customer(customer_id=customer.pk, now=NOW)]
        return fired

    results = run_in_threads(lambda index: ingest(index) if index < INGESTERS else evaluate(), INGESTERS + EVALUATORS)
    fired = [crossing_id for result in results for crossing_id in result]
    fired += [crossing.pk for crossing in alerts_evaluate_customer(customer_id=customer.pk, now=NOW)]

    crossings = list(AlertCrossing.objects.filter(alert=alert).order_by("threshold"))
    assert [crossing.threshold for crossing in crossings] == [Decimal(10), Decimal(20), Decimal(30), Decimal(40)]
    # Each crossing was recorded (and so emailed and published) by exactly one evaluation.
    assert sorted(fired) == sorted(crossing.pk for crossing in crossings)
    assert all(crossing.value >= crossing.threshold for crossing in crossings)
    assert alerts_evaluate_customer(customer_id=customer.pk, now=NOW) == []


def test_two_evaluations_at_once_record_a_crossing_once(world):
    customer = world.a.customer
    alert = alert_create(customer=customer, kind="usage", metric="api_calls", thresholds=["1", "2", "3", "4", "5"])

    results = run_in_threads(lambda index: alerts_evaluate_customer(customer_id=customer.pk, now=NOW), 6)

    fired = [crossing.pk for result in results for crossing in result]
    assert AlertCrossing.objects.filter(alert=alert).count() == 5
    assert sorted(fired) == sorted(AlertCrossing.objects.filter(alert=alert).values_list("pk", flat=True))
