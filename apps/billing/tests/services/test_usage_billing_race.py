"""An event being stored while the billing run closes its period is billed, never lost (PostgreSQL)."""

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import bill_due_subscriptions, subscription_start
from apps.catalog.models import PlanVersion
from apps.catalog.services import billable_metric_create
from apps.catalog.tests.factories import PlanFactory, add_charge
from apps.invoices.models import InvoiceLine
from apps.subscriptions.periods import utc
from apps.usage.services import usage_events_ingest

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="lock interplay is a PostgreSQL property"),
]


def test_a_batch_in_flight_when_the_run_starts_is_billed_in_that_run():
    billable_metric_create(code="calls", name="Calls", lateness_window_days=0)  # no late usage here
    plan = PlanFactory(prices=[])
    version = PlanVersion.objects.create(plan=plan, number=1)
    add_charge(version, name="Fee", price_model="flat", amount=Decimal(1))
    add_charge(version, name="Calls", kind="usage", metric_code="calls", price_model="per_unit", amount=Decimal(1))
    customer = CustomerFactory(currency="USD", external_id="racer")
    subscription_start(customer=customer, plan=plan, now=utc(2026, 4, 1))
    stored = threading.Event()
    errors: list[BaseException] = []

    def slow_batch() -> None:
        try:
            with transaction.atomic():
                usage_events_ingest(
                    events=[{"transaction_id": "late-one", "external_customer_id": "racer", "metric_code": "calls",
                             "timestamp": utc(2026, 4, 30, 23).isoformat()}],
                    now=utc(2026, 4, 30, 23, 59),
                )  # fmt: skip
                stored.set()
                time.sleep(1.0)  # the billing run starts meanwhile and must wait for this commit
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=slow_batch)
    thread.start()
    assert stored.wait(10)
    bill_due_subscriptions(now=utc(2026, 5, 1, 0, 5))
    thread.join(30)

    assert not errors, errors
    line = InvoiceLine.objects.get(kind="usage")
    assert (line.quantity, line.amount.amount) == (Decimal(1), Decimal("1.00"))
    late = usage_events_ingest(
        events=[{"transaction_id": "too-late", "external_customer_id": "racer", "metric_code": "calls",
                 "timestamp": utc(2026, 4, 30, 23, 30).isoformat()}],
        now=utc(2026, 5, 1, 0, 6),
    )  # fmt: skip
    assert [rejection.code for rejection in late.rejected] == ["late_beyond_window"]
