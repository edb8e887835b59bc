"""Pooled allowances (IoT data pools): a usage charge's allowance per subscription, pooled across the
customer's subscriptions on the same plan, consumed in event order; usage beyond the pool is billed to
the subscription whose events went beyond it (docs/pricing.md, "Pooled allowances")."""

from datetime import datetime
from decimal import Decimal

import pytest
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import (
    bill_due_subscriptions,
    subscription_bill_due,
    subscription_start,
    subscription_upcoming_invoice,
)
from apps.billing.services.billing_chunk import billing_chunk_bill
from apps.billing.services.changes import subscription_change
from apps.billing.services.late_usage import late_usage_waiting_subscription_ids
from apps.catalog.services import ChargeInput, PriceInput, billable_metric_create, plan_create
from apps.catalog.tests.factories import ProductFactory
from apps.invoices.models import Invoice, UsageChangeSettlement
from apps.subscriptions.periods import utc
from apps.usage.models import UsageEventChange
from apps.usage.services import usage_events_ingest

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def sim_plan():
    """3.00 USD per SIM a month; data at 2.00 USD per GB beyond a pool of 1 GB per SIM."""
    billable_metric_create(code="data_gb", name="Data", aggregation="sum", field_name="gb")
    return plan_create(
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
            ),
        ],
    )


def _three_sims(plan):
    customer = CustomerFactory(currency="USD", external_id="fleet")
    return customer, [subscription_start(customer=customer, plan=plan, now=utc(2026, 4, 1)) for _ in range(3)]


def _send(customer, *events: tuple[object, datetime, str]) -> None:
    result = usage_events_ingest(
        events=[
            {
                "transaction_id": f"e{index}",
                "external_customer_id": customer.external_id,
                "metric_code": "data_gb",
                "timestamp": at.isoformat(),
                "properties": {"gb": gb, "subscription_id": sim.pk},
            }
            for index, (sim, at, gb) in enumerate(events)
        ],
        now=utc(2026, 4, 25),
    )
    assert result.rejected == [], result.rejected


def _day(day: int) -> datetime:
    return utc(2026, 4, day, 12)


def _data_line(subscription):
    invoice = Invoice.objects.get(subscription=subscription, period_start_at=utc(2026, 5, 1))
    (line,) = invoice.lines.filter(kind="usage")
    return line.description, line.quantity, line.amount.amount, line.explanation, invoice.total


def test_doc_pooled_allowances_the_events_that_exceed_the_pool_are_billed_on_the_sim_that_sent_them(sim_plan):
    customer, (sim_a, sim_b, sim_c) = _three_sims(sim_plan)
    # A 0.2 GB; B 1.0 + 0.5 = 1.5 GB; C 0.8 + 1.0 = 1.8 GB. Running total in event order:
    # 0.2 (A), 1.2 (B), 2.0 (C), 2.5 (B), 3.5 (C): the pool of 3 × 1 GB is used up by C's last event,
    # 0.5 GB of which is beyond it.
    _send(
        customer,
        (sim_a, _day(2), "0.2"),
        (sim_b, _day(3), "1.0"),
        (sim_c, _day(5), "0.8"),
        (sim_b, _day(10), "0.5"),
        (sim_c, _day(12), "1.0"),
    )

    for sim in (sim_a, sim_b, sim_c):
        subscription_bill_due(subscription_id=sim.pk, now=utc(2026, 5, 1, 1))

    pool = (
        "Pool: 3 subscriptions × 1 = 3, shared by the customer's subscriptions on this plan; 3.5 used by all of them."
    )
    title = "IoT — SIM 1 GB: Data (usage beyond the pool)"
    description, quantity, amount, explanation, total = _data_line(sim_a)
    assert (description, quantity, amount, total) == (title, D(0), D("0.00"), Money("3.00", "USD"))
    assert explanation[:3] == [
        "Data: 0.2 used by this subscription (Sum of a property).",
        pool,
        "From the pool: 0.2; beyond the pool: 0 (the pool is used in the order the events happened; usage beyond "
        "it is billed to the subscription that sent it).",
    ]
    assert _data_line(sim_b)[1:3] == (D(0), D("0.00"))
    assert _data_line(sim_b)[3][2].startswith("From the pool: 1.5; beyond the pool: 0 ")
    description, quantity, amount, explanation, total = _data_line(sim_c)
    # 0.5 GB × 2.00 = 1.00; with the 3.00 fee of May, 4.00
    assert (quantity, amount, total) == (D("0.5"), D("1.00"), Money("4.00", "USD"))
    assert explanation[0] == "Data: 1.8 used by this subscription (Sum of a property)."
    assert explanation[2].startswith("From the pool: 1.3; beyond the pool: 0.5 ")
    assert explanation[3] == "0.5 × 2.00 USD"


def test_event_order_not_the_subscription_decides_who_goes_beyond_the_pool(sim_plan):
    customer, (sim_a, sim_b, sim_c) = _three_sims(sim_plan)
    # The same totals per SIM (0.2, 1.5, 1.8 GB) in another order: 0.2 (A), 1.0 (C), 2.0 (B), 3.0 (C:
    # exactly the pool), 3.5 (B): B's last 0.5 GB is all beyond the pool.
    _send(
        customer,
        (sim_a, _day(2), "0.2"),
        (sim_c, _day(3), "0.8"),
        (sim_b, _day(4), "1.0"),
        (sim_c, _day(5), "1.0"),
        (sim_b, _day(10), "0.5"),
    )

    # In bulk: the chunk leaves pooled subscriptions to the one-by-one path, which bills them.
    outcome = billing_chunk_bill(subscription_ids=[sim_a.pk, sim_b.pk, sim_c.pk], now=utc(2026, 5, 1, 1))
    assert (outcome.invoice_ids, sorted(outcome.one_by_one_ids)) == ([], sorted([sim_a.pk, sim_b.pk, sim_c.pk]))
    for sim in (sim_c, sim_b, sim_a):  # billed in any order: the same shares
        subscription_bill_due(subscription_id=sim.pk, now=utc(2026, 5, 1, 1))

    assert _data_line(sim_a)[1:3] == (D(0), D("0.00"))
    assert _data_line(sim_c)[1:3] == (D(0), D("0.00"))
    assert _data_line(sim_c)[3][2].startswith("From the pool: 1.8; beyond the pool: 0 ")
    assert _data_line(sim_b)[1:3] == (D("0.5"), D("1.00"))
    assert _data_line(sim_b)[3][2].startswith("From the pool: 1; beyond the pool: 0.5 ")


def test_the_upcoming_invoice_shows_the_share_so_far_and_other_customers_and_plans_have_their_own_pools(sim_plan):
    customer, (sim_a, sim_b, _) = _three_sims(sim_plan)
    other = subscription_start(
        customer=CustomerFactory(currency="USD", external_id="other"), plan=sim_plan, now=utc(2026, 4, 1)
    )
    _send(customer, (sim_a, _day(2), "2.5"), (sim_b, _day(3), "1.25"))
    result = usage_events_ingest(
        events=[
            {"transaction_id": "o1", "external_customer_id": "other", "metric_code": "data_gb",
             "timestamp": _day(2).isoformat(), "properties": {"gb": "1.5", "subscription_id": other.pk}},
        ],
        now=utc(2026, 4, 25),
    )  # fmt: skip
    assert result.rejected == []

    upcoming = subscription_upcoming_invoice(subscription_id=sim_b.pk, now=utc(2026, 4, 20))
    other_upcoming = subscription_upcoming_invoice(subscription_id=other.pk, now=utc(2026, 4, 20))

    # The fleet's pool is 3 GB: A's 2.5 GB fit, B's 1.25 GB takes the last 0.5 and goes 0.75 beyond:
    # 0.75 × 2.00 = 1.50. The other customer's single SIM has a pool of 1 GB: 0.5 × 2.00 = 1.00.
    (line,) = [line for line in upcoming.lines if line.kind == "usage"]
    assert (line.quantity, line.amount) == (D("0.75"), D("1.50"))
    (other_line,) = [line for line in other_upcoming.lines if line.kind == "usage"]
    assert (other_line.quantity, other_line.amount) == (D("0.5"), D("1.00"))


def test_a_late_event_that_moves_the_pool_corrects_the_subscription_already_billed(sim_plan):
    customer, (sim_a, sim_b, sim_c) = _three_sims(sim_plan)
    _send(customer, (sim_a, _day(2), "2.0"), (sim_b, _day(3), "1.5"))  # B: 0.5 beyond (1.00)
    subscription_bill_due(subscription_id=sim_b.pk, now=utc(2026, 5, 1, 1))
    assert _data_line(sim_b)[1:3] == (D("0.5"), D("1.00"))

    # C's event of 1 Apr arrives on 1 May at 02:00, within the window: it came first, so the pool is used
    # up at B's event: 0.5 + 2.0 + 1.5 = 4.0, B goes 1.0 beyond (0.5 more than billed).
    result = usage_events_ingest(
        events=[
            {"transaction_id": "late", "external_customer_id": "fleet", "metric_code": "data_gb",
             "timestamp": utc(2026, 4, 1, 6).isoformat(), "properties": {"gb": "0.5", "subscription_id": sim_c.pk}},
        ],
        now=utc(2026, 5, 1, 2),
    )  # fmt: skip
    assert result.rejected == []
    subscription_bill_due(subscription_id=sim_a.pk, now=utc(2026, 5, 1, 3))
    subscription_bill_due(subscription_id=sim_c.pk, now=utc(2026, 5, 1, 3))
    assert _data_line(sim_a)[1:3] == (D(0), D("0.00"))
    assert _data_line(sim_c)[1:3] == (D(0), D("0.00"))

    # B's next invoice (June) carries the difference: 1.0 × 2.00 − 1.00 billed = 1.00.
    subscription_bill_due(subscription_id=sim_b.pk, now=utc(2026, 6, 1, 1))
    june = Invoice.objects.get(subscription=sim_b, period_start_at=utc(2026, 6, 1))
    late = [line for line in june.lines.all() if line.period_start_at == utc(2026, 4, 1)]
    assert [(line.quantity, line.amount.amount) for line in late] == [(D("0.5"), D("1.00"))]


def test_an_event_of_a_pooled_metric_must_name_a_subscription_of_the_pool(sim_plan):
    customer, (sim_a, _, _) = _three_sims(sim_plan)
    other_customer_sim = subscription_start(
        customer=CustomerFactory(currency="USD", external_id="other"), plan=sim_plan, now=utc(2026, 4, 1)
    )

    def event(transaction_id: str, **properties: object) -> dict:
        return {"transaction_id": transaction_id, "external_customer_id": "fleet", "metric_code": "data_gb",
                "timestamp": _day(2).isoformat(), "properties": {"gb": "1", **properties}}  # fmt: skip

    result = usage_events_ingest(
        events=[
            event("missing"),
            event("someone-else", subscription_id=other_customer_sim.pk),
            event("float", subscription_id=float(sim_a.pk)),
            event("ok-int", subscription_id=sim_a.pk),
            event("ok-text", subscription_id=str(sim_a.pk)),
        ],
        now=utc(2026, 4, 25),
    )

    assert result.accepted == 2
    assert [(rejection.index, rejection.code) for rejection in result.rejected] == [
        (0, "unknown_subscription"),
        (1, "unknown_subscription"),
        (2, "unknown_subscription"),
    ]
    assert result.rejected[0].reason == (
        "The metric 'data_gb' is billed to this customer by pooled charges, which bill each event to the "
        "subscription that sent it: name one of the customer's subscriptions on those plans in "
        "properties.subscription_id (missing)."
    )
    assert customer.usage_events.count() == 2


def test_a_billing_run_bills_the_pool_of_every_customer_once(sim_plan):
    customer, (sim_a, sim_b, sim_c) = _three_sims(sim_plan)
    _send(customer, (sim_a, _day(2), "0.2"), (sim_b, _day(3), "1.5"), (sim_c, _day(5), "1.8"))

    run = bill_due_subscriptions(now=utc(2026, 5, 1, 1))

    # 0.2 + 1.5 + 1.8 = 3.5 GB in a 3 GB pool: C's event crosses it, 0.5 GB beyond = 1.00
    assert (run.errors, run.invoiced_count) == ([], 3)
    assert [_data_line(sim)[1:3] for sim in (sim_a, sim_b, sim_c)] == [
        (D(0), D("0.00")),
        (D(0), D("0.00")),
        (D("0.5"), D("1.00")),
    ]


def test_doc_late_events_of_a_pool_are_settled_by_each_subscription_on_its_own_next_invoice(sim_plan):
    customer, (sim_a, sim_b, sim_c) = _three_sims(sim_plan)
    # April, a pool of 3 × 1 = 3 GB: A 2.0 (2 Apr), B 1.5 (3 Apr) → 3.5, B goes 0.5 beyond: 1.00.
    _send(customer, (sim_a, _day(2), "2.0"), (sim_b, _day(3), "1.5"))
    for sim in (sim_a, sim_b, sim_c):
        subscription_bill_due(subscription_id=sim.pk, now=utc(2026, 5, 1, 1))
    assert [_data_line(sim)[1:3] for sim in (sim_a, sim_b)] == [(D(0), D("0.00")), (D("0.5"), D("1.00"))]

    # On 2 May, within the window, two sessions of April arrive late: C's 0.5 GB of 1 Apr 06:00 (before
    # everything else) and A's 0.25 GB of 30 Apr 12:00 (after everything else). April in event order:
    # C 0.5 → 0.5, A 2.0 → 2.5, B 1.5 → 4.0 (1.0 beyond: B), A 0.25 → 4.25 (all 0.25 beyond: A).
    result = usage_events_ingest(
        events=[
            {"transaction_id": tid, "external_customer_id": "fleet", "metric_code": "data_gb",
             "timestamp": at.isoformat(), "properties": {"gb": gb, "subscription_id": sim.pk}}
            for tid, sim, at, gb in [
                ("c-late", sim_c, utc(2026, 4, 1, 6), "0.5"), ("a-late", sim_a, utc(2026, 4, 30, 12), "0.25"),
            ]
        ],
        now=utc(2026, 5, 2),
    )  # fmt: skip
    assert result.rejected == []
    changes = list(UsageEventChange.objects.order_by("transaction_id"))
    assert [(change.transaction_id, change.settled_at) for change in changes] == [("a-late", None), ("c-late", None)]

    # 1 Jun: C is billed first. Its share of April does not change (0.5 GB, all from the pool): no line;
    # it has taken both changes in, but A and B have not yet: the changes are not settled.
    june = utc(2026, 6, 1, 1)
    subscription_bill_due(subscription_id=sim_c.pk, now=june)
    assert late_usage_waiting_subscription_ids([sim_a, sim_b, sim_c]) == {sim_a.pk, sim_b.pk}
    assert not UsageEventChange.objects.filter(settled_at__isnull=False).exists()

    # A: 0.25 GB beyond the pool now, 0 billed: 0.25 × 2.00 = 0.50; with June's fee, 3.50.
    # B: 1.0 GB beyond the pool now, 0.5 billed: 1.0 × 2.00 − 1.00 = 1.00; with June's fee, 4.00.
    subscription_bill_due(subscription_id=sim_a.pk, now=june)
    subscription_bill_due(subscription_id=sim_b.pk, now=june)
    late = {}
    for sim in (sim_a, sim_b, sim_c):
        invoice = Invoice.objects.get(subscription=sim, period_start_at=utc(2026, 6, 1))
        late[sim.pk] = [
            (line.description, line.quantity, line.amount.amount, invoice.total.amount)
            for line in invoice.lines.all()
            if line.period_start_at == utc(2026, 4, 1)
        ] or invoice.total.amount
    assert late == {
        sim_a.pk: [("IoT — SIM 1 GB: Data (late usage, 1–30 Apr)", D("0.25"), D("0.50"), D("3.50"))],
        sim_b.pk: [("IoT — SIM 1 GB: Data (late usage, 1–30 Apr)", D("0.5"), D("1.00"), D("4.00"))],
        sim_c.pk: D("3.00"),
    }
    # Every subscription of the pool has taken both in: settled, and never billed again.
    assert sorted(UsageChangeSettlement.objects.values_list("change__transaction_id", "subscription_id")) == sorted(
        (change.transaction_id, sim.pk) for change in changes for sim in (sim_a, sim_b, sim_c)
    )
    assert list(UsageEventChange.objects.order_by("id").values_list("settled_at", flat=True)) == [june, june]
    assert late_usage_waiting_subscription_ids([sim_a, sim_b, sim_c]) == set()
    for sim in (sim_a, sim_b, sim_c):
        subscription_bill_due(subscription_id=sim.pk, now=utc(2026, 7, 1, 1))
        july = Invoice.objects.get(subscription=sim, period_start_at=utc(2026, 7, 1))
        assert [line.kind for line in july.lines.all()] == ["recurring"]


def test_a_change_inside_the_period_does_not_give_the_subscription_a_second_pool(sim_plan):
    customer, (sim_a, sim_b, sim_c) = _three_sims(sim_plan)
    # April's pool is 3 × 1 = 3 GB. A uses 2.5 GB on 5 Apr; its quantity changes on 15 Apr (the usage
    # before the change is closed out: a stretch 1–15 Apr, then 15 Apr – 1 May); A uses 2.5 GB more on
    # 20 Apr. In event order: 2.5 (within), 5.0 (2.0 beyond): 2.0 × 2.00 = 4.00, on the second stretch.
    # Each stretch with a fresh 3 GB pool would bill nothing.
    _send(customer, (sim_a, utc(2026, 4, 5), "2.5"), (sim_a, utc(2026, 4, 20), "2.5"))
    subscription_change(subscription_id=sim_a.pk, quantity=2, now=utc(2026, 4, 15))
    for sim in (sim_a, sim_b, sim_c):
        subscription_bill_due(subscription_id=sim.pk, now=utc(2026, 5, 1, 1))

    invoice = Invoice.objects.get(subscription=sim_a, period_start_at=utc(2026, 5, 1))
    assert [
        (line.period_start_at, line.period_end_at, line.quantity, line.amount.amount)
        for line in invoice.lines.filter(kind="usage").order_by("period_start_at")
    ] == [
        (utc(2026, 4, 1), utc(2026, 4, 15), D(0), D("0.00")),
        (utc(2026, 4, 15), utc(2026, 5, 1), D("2.0"), D("4.00")),
    ]
    second = invoice.lines.get(kind="usage", period_start_at=utc(2026, 4, 15))
    assert second.explanation[2].startswith("From the pool: 0.5; beyond the pool: 2 ")
