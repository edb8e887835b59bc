"""Progressive billing on a pooled charge whose pool grows after an interim invoice (docs/billing-rules.md,
"Progressive billing"): the final invoice never bills the period's usage below zero; what the interim
invoices billed beyond the period's usage is credited back on a line of its own.

Worked by hand. Plan "SIM 1 GB": 3.00 USD a SIM a month in advance; data at 2.00 USD per GB beyond a pool
of 1 GB per SIM, shared by the customer's SIMs on the plan in the same period; an interim invoice every
2.00 USD of usage.

- 1 Apr: SIM A starts (period [1 Apr, 1 May); April's fee 3.00).
- 5 Apr: A sends 3 GB. 10 Apr evaluation: the pool is 1 SIM × 1 GB = 1 GB; A's 3 GB use it and 2 GB
  are beyond it: 2 × 2.00 = 4.00 ≥ 4.00 → interim invoice 4.00.
- 15 Apr: SIM B starts, billed on the 1st of the month (its first period [15 Apr, 1 May) is April's):
  it joins A's pool for April, which is now 2 × 1 GB = 2 GB.
- 1 May, A's invoice: A's 3 GB, 2 GB from the pool, 1 GB beyond: 1 × 2.00 = 2.00 of usage. The interim
  invoice billed 4.00: its deduction stops at the 2.00 of usage (the period's usage comes to 0.00, not
  −2.00) and the other 2.00 is credited back on a line of its own; May's fee 3.00. Total
  2.00 − 2.00 − 2.00 + 3.00 = 1.00.
- Check: interim 4.00 + final 1.00 = 5.00 = the period billed at once (usage 2.00 + May's fee 3.00).
"""

from decimal import Decimal

import pytest
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import subscription_bill_due, subscription_start, subscription_upcoming_invoice
from apps.billing.services.progressive import subscription_progressive_evaluate
from apps.catalog.services import (
    ChargeInput,
    PriceInput,
    billable_metric_create,
    plan_create,
    plan_version_progressive_billing_set,
)
from apps.catalog.tests.factories import ProductFactory
from apps.invoices.constants import BillingReason, InvoiceLineKind
from apps.invoices.models import Invoice
from apps.subscriptions.periods import utc
from apps.usage.services import usage_events_ingest

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def sim_plan():
    billable_metric_create(code="data_gb", name="Data", aggregation="sum", field_name="gb")
    plan = plan_create(
        product=ProductFactory(name="IoT"),
        code="sim-1gb",
        name="SIM 1 GB",
        charges=[
            ChargeInput(name="SIM fee", price_model="flat", prices=[PriceInput(currency="USD", amount=D("3"))]),
            ChargeInput(
                name="Data",
                kind="usage",
                metric_code="data_gb",
                price_model="per_unit",
                pooled_allowance=D("1"),
                prices=[PriceInput(currency="USD", amount=D("2.00"))],
            ),  # fmt: skip
        ],
    )
    plan_version_progressive_billing_set(version=plan.versions.get(), currency="USD", amounts=[], every="2.00")
    return plan


def _send(customer, sim, gb: str, *, day: int) -> None:
    result = usage_events_ingest(
        events=[
            {
                "transaction_id": f"{sim.pk}-{day}",
                "external_customer_id": customer.external_id,
                "metric_code": "data_gb",
                "timestamp": utc(2026, 4, day, 12).isoformat(),
                "properties": {"gb": gb, "subscription_id": sim.pk},
            }
        ],
        now=utc(2026, 4, day, 13),
    )
    assert result.rejected == [], result.rejected


def _lines(lines) -> list[tuple]:
    """(kind, description, amount) of invoice lines or of the upcoming invoice's drafts."""
    return [(line.kind, line.description, getattr(line.amount, "amount", line.amount)) for line in lines]


def test_a_pool_that_grows_after_an_interim_invoice_never_takes_the_periods_usage_below_zero(sim_plan):
    customer = CustomerFactory(currency="USD", external_id="fleet")
    sim_a = subscription_start(customer=customer, plan=sim_plan, now=utc(2026, 4, 1))
    _send(customer, sim_a, "3", day=5)

    interim = subscription_progressive_evaluate(subscription_id=sim_a.pk, now=utc(2026, 4, 10))

    assert interim.billing_reason == BillingReason.SUBSCRIPTION_THRESHOLD
    [usage] = interim.lines.all()
    assert (usage.quantity, usage.amount.amount) == (D(2), D("4.00"))  # 2 GB beyond a pool of 1 GB
    assert interim.total == Money("4.00", "USD")

    sim_b = subscription_start(customer=customer, plan=sim_plan, now=utc(2026, 4, 15), billing_cycle_day=1)
    assert (sim_b.current_period_start_at, sim_b.current_period_end_at) == (utc(2026, 4, 15), utc(2026, 5, 1))

    credited_back = "Usage billed on interim invoices beyond the period's usage, credited back"
    deduction = f"Usage already billed on {interim.number} (progressive billing)"
    data = "IoT — SIM 1 GB: Data (usage beyond the pool)"

    # The upcoming invoice of 20 Apr already prices A's usage with the pool of two.
    upcoming = subscription_upcoming_invoice(subscription_id=sim_a.pk, now=utc(2026, 4, 20))
    assert _lines(upcoming.lines)[:3] == [
        (InvoiceLineKind.USAGE, data, D("2.00")),
        (InvoiceLineKind.PROGRESSIVE, deduction, D("-2.00")),
        (InvoiceLineKind.PROGRESSIVE, credited_back, D("-2.00")),
    ]

    subscription_bill_due(subscription_id=sim_a.pk, now=utc(2026, 5, 1, 0, 5))

    may = Invoice.objects.get(subscription=sim_a, period_start_at=utc(2026, 5, 1))
    lines = list(may.lines.order_by("position"))
    assert _lines(lines) == [
        (InvoiceLineKind.USAGE, data, D("2.00")),  # 3 GB, 2 from the pool of 2 × 1 GB, 1 beyond × 2.00
        (InvoiceLineKind.PROGRESSIVE, deduction, D("-2.00")),  # of its 4.00: no more than the usage
        (InvoiceLineKind.PROGRESSIVE, credited_back, D("-2.00")),  # 4.00 billed − 2.00 of usage
        (InvoiceLineKind.RECURRING, "IoT — SIM 1 GB: SIM fee (monthly)", D("3.00")),
    ]
    # The period's usage less what is deducted of it never comes to less than zero.
    assert lines[0].amount.amount + lines[1].amount.amount == D("0.00")
    assert lines[1].explanation[-1] == (
        "The period's usage came to less than the interim invoices billed: 2.00 USD of this one is deducted, "
        "the rest is credited back below."
    )
    assert lines[2].explanation == [
        f"The interim invoices {interim.number} billed 4.00 USD of usage; the whole period's usage came to 2.00 USD "
        "(usage beyond a shared pool shrinks when other subscriptions join the pool later in the period, and "
        "corrected usage can lower it). The difference, 2.00 USD, is credited back here."
    ]
    assert may.total == Money("1.00", "USD")
    assert interim.total + may.total == Money("5.00", "USD")  # usage 2.00 + May's fee 3.00, billed at once
