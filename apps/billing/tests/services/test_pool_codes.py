"""Pools across plans (docs/pricing.md, "Pools across plans"): the pooled charges of several plans name
one pool code; a customer's subscriptions on those plans share one pool, each adding its own plan's
allowance, consumed in event order; usage beyond the pool is priced by the charge of the subscription
that went beyond it. Without a pool code a pool stays the plan's."""

from datetime import datetime
from decimal import Decimal

import pytest
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import subscription_bill_due, subscription_start, subscription_upcoming_invoice
from apps.billing.services.late_usage import late_usage_waiting_subscription_ids
from apps.catalog.services import ChargeInput, PriceInput, billable_metric_create, plan_create
from apps.catalog.tests.factories import ProductFactory
from apps.invoices.models import Invoice
from apps.subscriptions.periods import utc
from apps.usage.models import UsageEventChange
from apps.usage.services import usage_events_ingest

pytestmark = pytest.mark.django_db

D = Decimal


def _sim_plan(code: str, name: str, *, fee: str, allowance: str, beyond: str, pool_code: str = "fleet-data"):
    return plan_create(
        product=ProductFactory(name="IoT", code=f"iot-{code}"),
        code=code,
        name=name,
        charges=[
            ChargeInput(name="SIM fee", price_model="flat", prices=[PriceInput(currency="USD", amount=D(fee))]),
            ChargeInput(
                name="Data",
                kind="usage",
                metric_code="data_gb",
                price_model="per_unit",
                pooled_allowance=D(allowance),
                pool_code=pool_code,
                prices=[PriceInput(currency="USD", amount=D(beyond))],
            ),
        ],
    )


@pytest.fixture
def fleet():
    """A customer with a SIM on "SIM 1 GB" (3.00 a month, 1 GB into the pool "fleet-data", 2.00 per GB
    beyond it) and a SIM on "SIM 5 GB" (10.00 a month, 5 GB into the same pool, 1.50 per GB beyond it):
    a pool of 1 + 5 = 6 GB a month. A third SIM on "SIM 1 GB solo" (the same allowance and prices, no
    pool code) has a pool of its own plan."""
    billable_metric_create(code="data_gb", name="Data", aggregation="sum", field_name="gb")
    small = _sim_plan("sim-1gb", "SIM 1 GB", fee="3", allowance="1", beyond="2.00")
    large = _sim_plan("sim-5gb", "SIM 5 GB", fee="10", allowance="5", beyond="1.50")
    solo = _sim_plan("sim-solo", "SIM 1 GB solo", fee="3", allowance="1", beyond="2.00", pool_code="")
    customer = CustomerFactory(currency="USD", external_id="fleet")
    sims = [subscription_start(customer=customer, plan=plan, now=utc(2026, 4, 1)) for plan in (small, large, solo)]
    return customer, sims


APRIL_25 = utc(2026, 4, 25)
MAY_1 = utc(2026, 5, 1)


def _send(customer, *events: tuple[object, datetime, str], now: datetime = APRIL_25, prefix: str = "e"):
    result = usage_events_ingest(
        events=[
            {
                "transaction_id": f"{prefix}{index}",
                "external_customer_id": customer.external_id,
                "metric_code": "data_gb",
                "timestamp": at.isoformat(),
                "properties": {"gb": gb, "subscription_id": sim.pk},
            }
            for index, (sim, at, gb) in enumerate(events)
        ],
        now=now,
    )
    assert result.rejected == [], result.rejected


def _day(day: int) -> datetime:
    return utc(2026, 4, day, 12)


def _data_line(subscription, period_start_at=MAY_1):
    invoice = Invoice.objects.get(subscription=subscription, period_start_at=period_start_at)
    (line,) = invoice.lines.filter(kind="usage")
    return line.description, line.quantity, line.amount.amount, line.explanation, invoice.total


def _interleaved(customer, small, large, solo):
    # The pool "fleet-data" holds 1 + 5 = 6 GB. In event order (the solo SIM's events are not the pool's):
    #   2 Apr  1 GB SIM 0.5 → 0.5
    #   3 Apr  5 GB SIM 3.0 → 3.5
    #   4 Apr  solo     0.8   (its own pool of 1 GB)
    #   5 Apr  1 GB SIM 1.5 → 5.0
    #   8 Apr  5 GB SIM 1.5 → 6.5: 0.5 beyond the pool, the 5 GB SIM's
    #  12 Apr  1 GB SIM 1.0 → 7.5: all 1.0 beyond the pool, the 1 GB SIM's
    _send(
        customer,
        (small, _day(2), "0.5"),
        (large, _day(3), "3.0"),
        (solo, _day(4), "0.8"),
        (small, _day(5), "1.5"),
        (large, _day(8), "1.5"),
        (small, _day(12), "1.0"),
    )


def test_doc_a_pool_code_shares_one_pool_across_plans_each_adding_its_allowance(fleet):
    customer, (small, large, solo) = fleet
    _interleaved(customer, small, large, solo)

    for sim in (large, solo, small):  # in any order: the shares depend on the events only
        subscription_bill_due(subscription_id=sim.pk, now=utc(2026, 5, 1, 1))

    pool = (
        "Pool fleet-data: 1 × 1 + 1 × 5 = 6, shared by the customer's 2 subscriptions on the plans of this pool; "
        "7.5 used by all of them."
    )
    # 1 GB SIM: 0.5 + 1.5 + 1.0 = 3.0 GB, 2.0 from the pool, 1.0 beyond: 1.0 × 2.00 = 2.00; with the fee, 5.00.
    description, quantity, amount, explanation, total = _data_line(small)
    assert (description, quantity, amount, total) == (
        "IoT — SIM 1 GB: Data (usage beyond the pool)", D("1.0"), D("2.00"), Money("5.00", "USD"),
    )  # fmt: skip
    assert explanation[:4] == [
        "Data: 3 used by this subscription (Sum of a property).",
        pool,
        "From the pool: 2; beyond the pool: 1 (the pool is used in the order the events happened; usage beyond "
        "it is billed to the subscription that sent it).",
        "1 × 2.00 USD",
    ]
    # 5 GB SIM: 3.0 + 1.5 = 4.5 GB, 4.0 from the pool, 0.5 beyond, at its own plan's 1.50: 0.75; total 10.75.
    description, quantity, amount, explanation, total = _data_line(large)
    assert (description, quantity, amount, total) == (
        "IoT — SIM 5 GB: Data (usage beyond the pool)", D("0.5"), D("0.75"), Money("10.75", "USD"),
    )  # fmt: skip
    assert explanation[1:4] == [
        pool,
        "From the pool: 4; beyond the pool: 0.5 (the pool is used in the order the events happened; usage beyond "
        "it is billed to the subscription that sent it).",
        "0.5 × 1.50 USD",
    ]
    # The solo SIM (no pool code) keeps its plan's own pool: 0.8 of 1 GB, nothing beyond; total 3.00.
    description, quantity, amount, explanation, total = _data_line(solo)
    assert (quantity, amount, total) == (D(0), D("0.00"), Money("3.00", "USD"))
    assert explanation[1] == (
        "Pool: 1 subscriptions × 1 = 1, shared by the customer's subscriptions on this plan; 0.8 used by all of them."
    )


def test_the_upcoming_invoice_shows_the_share_of_the_pool_across_plans_so_far(fleet):
    customer, (small, large, solo) = fleet
    _interleaved(customer, small, large, solo)

    upcoming = subscription_upcoming_invoice(subscription_id=small.pk, now=utc(2026, 4, 20))

    (line,) = [line for line in upcoming.lines if line.kind == "usage"]
    assert (line.quantity, line.amount) == (D("1.0"), D("2.00"))


def test_a_late_event_of_one_plan_moves_the_pools_end_onto_a_sim_of_the_other_plan(fleet):
    customer, (small, large, solo) = fleet
    _interleaved(customer, small, large, solo)
    for sim in (small, large, solo):
        subscription_bill_due(subscription_id=sim.pk, now=utc(2026, 5, 1, 1))
    assert [_data_line(sim)[1:3] for sim in (small, large)] == [(D("1.0"), D("2.00")), (D("0.5"), D("0.75"))]

    # On 2 May, within the window, a session of the 1 GB SIM of 1 Apr 06:00 (before everything else)
    # arrives: 1.0 GB. April in event order is now 1.0 (1 GB SIM), 1.5, 4.5 (5 GB SIM), 6.0 (1 GB SIM:
    # the pool is used up exactly), 7.5 (5 GB SIM: all 1.5 beyond), 8.5 (1 GB SIM: all 1.0 beyond).
    _send(customer, (small, utc(2026, 4, 1, 6), "1.0"), now=utc(2026, 5, 2), prefix="late")

    # The 1 GB SIM sent the late session but still owes 1.0 GB × 2.00 = 2.00, as billed: no late line.
    # The 5 GB SIM, on the other plan, is now 1.5 GB beyond: 1.5 × 1.50 = 2.25, of which 0.75 was billed:
    # 1.0 GB, 1.50 more; with June's fee, 11.50.
    june = utc(2026, 6, 1, 1)
    subscription_bill_due(subscription_id=small.pk, now=june)
    assert late_usage_waiting_subscription_ids([small, large, solo]) == {large.pk, solo.pk}
    subscription_bill_due(subscription_id=large.pk, now=june)
    subscription_bill_due(subscription_id=solo.pk, now=june)

    late = {}
    for sim in (small, large, solo):
        invoice = Invoice.objects.get(subscription=sim, period_start_at=utc(2026, 6, 1))
        late[sim.pk] = (
            [
                (line.description, line.quantity, line.amount.amount)
                for line in invoice.lines.all()
                if line.period_start_at == utc(2026, 4, 1)
            ],
            invoice.total.amount,
        )
    assert late == {
        small.pk: ([], D("3.00")),
        large.pk: ([("IoT — SIM 5 GB: Data (late usage, 1–30 Apr)", D("1.0"), D("1.50"))], D("11.50")),
        solo.pk: ([], D("3.00")),
    }
    assert list(UsageEventChange.objects.values_list("settled_at", flat=True)) == [june]


def test_an_event_of_a_pool_across_plans_must_name_one_of_its_subscriptions(fleet):
    customer, (small, large, _) = fleet
    other = subscription_start(
        customer=CustomerFactory(currency="USD", external_id="other"), plan=small.plan, now=utc(2026, 4, 1)
    )

    result = usage_events_ingest(
        events=[
            {"transaction_id": tid, "external_customer_id": "fleet", "metric_code": "data_gb",
             "timestamp": _day(2).isoformat(), "properties": {"gb": "1", **properties}}
            for tid, properties in [
                ("none", {}), ("other", {"subscription_id": other.pk}), ("large", {"subscription_id": str(large.pk)}),
            ]
        ],
        now=utc(2026, 4, 25),
    )  # fmt: skip

    assert [(rejection.index, rejection.code) for rejection in result.rejected] == [
        (0, "unknown_subscription"),
        (1, "unknown_subscription"),
    ]
    assert result.accepted == 1


def test_subscriptions_of_one_pool_on_other_billing_periods_have_pools_of_their_own(fleet):
    customer, (small, large, solo) = fleet
    # A 5 GB SIM started on 15 Apr bills 15 Apr – 15 May: not April's pool of the calendar-month SIMs.
    late_joiner = subscription_start(customer=customer, plan=large.plan, now=utc(2026, 4, 15))
    _interleaved(customer, small, large, solo)
    _send(customer, (late_joiner, _day(16), "5.5"), prefix="j")

    subscription_bill_due(subscription_id=small.pk, now=utc(2026, 5, 1, 1))
    subscription_bill_due(subscription_id=late_joiner.pk, now=utc(2026, 5, 15, 1))

    assert _data_line(small)[1:3] == (D("1.0"), D("2.00"))
    # Its own pool of 5 GB: 0.5 beyond × 1.50 = 0.75.
    assert _data_line(late_joiner, utc(2026, 5, 15))[1:3] == (D("0.5"), D("0.75"))
