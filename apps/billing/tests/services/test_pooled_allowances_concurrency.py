"""Two subscriptions of one pool billed at the same time (two workers of one run) never both take the
same share of the pool (PostgreSQL: real connections, the customer's usage lock)."""

from decimal import Decimal

import pytest
from django.db import connection

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import subscription_bill_due, subscription_start
from apps.catalog.services import ChargeInput, PriceInput, billable_metric_create, plan_create
from apps.catalog.tests.factories import ProductFactory
from apps.core.tests.concurrency import run_in_threads
from apps.invoices.models import InvoiceLine
from apps.subscriptions.periods import utc
from apps.usage.services import usage_events_ingest

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent billing is a PostgreSQL property"),
]

D = Decimal


def test_two_sims_billed_at_once_share_the_pool_once():
    billable_metric_create(code="data_gb", name="Data", aggregation="sum", field_name="gb")
    plan = plan_create(
        product=ProductFactory(name="IoT"), code="sim", name="SIM",
        charges=[
            ChargeInput(name="SIM fee", price_model="flat", prices=[PriceInput(currency="USD", amount=D("3"))]),
            ChargeInput(name="Data", kind="usage", metric_code="data_gb", price_model="per_unit",
                        pooled_allowance=D("1"), prices=[PriceInput(currency="USD", amount=D("2.00"))]),
        ],
    )  # fmt: skip
    customer = CustomerFactory(currency="USD", external_id="fleet")
    sims = [subscription_start(customer=customer, plan=plan, now=utc(2026, 4, 1)) for _ in range(2)]
    # Pool 2 GB. Event order: A 1.5 (1.5), B 1.0 (2.5: 0.5 beyond), A 0.75 (3.25: all 0.75 beyond).
    events = [(sims[0], 2, "1.5"), (sims[1], 3, "1.0"), (sims[0], 4, "0.75")]
    result = usage_events_ingest(
        events=[
            {"transaction_id": f"e{index}", "external_customer_id": "fleet", "metric_code": "data_gb",
             "timestamp": utc(2026, 4, day).isoformat(), "properties": {"gb": gb, "subscription_id": sim.pk}}
            for index, (sim, day, gb) in enumerate(events)
        ],
        now=utc(2026, 4, 25),
    )  # fmt: skip
    assert result.rejected == []

    run_in_threads(lambda index: subscription_bill_due(subscription_id=sims[index].pk, now=utc(2026, 5, 1, 1)), 2)

    lines = InvoiceLine.objects.filter(kind="usage", invoice__period_start_at=utc(2026, 5, 1))
    beyond = {line.invoice.subscription_id: (line.quantity, line.amount.amount) for line in lines}
    # A: 0.75 × 2.00 = 1.50; B: 0.5 × 2.00 = 1.00; 1.25 GB beyond the 2 GB pool in all (3.25 − 2), once.
    assert beyond == {sims[0].pk: (D("0.75"), D("1.50")), sims[1].pk: (D("0.5"), D("1.00"))}
