"""Story: a customer of the demo IoT connectivity seller (Kite IoT Connect, apps/demo/sellers.py) with
two SIMs, over two months on a test clock, with a device that reports late. Every invoice line is
asserted to the cent, each amount worked out by hand in the comments.

The plan (USD; a customer in Australia pays no tax), one subscription per SIM:
- Active SIM: 2.00 a month, billed in arrears (at the end of the month);
- Data: each SIM adds 500 MB to the customer's pool of the month (2 SIMs: 1,000 MB), consumed in
  event order across the SIMs; data beyond the pool at 0.01 per MB, billed to the SIM whose events
  went beyond it. Late events are accepted for 5 days after a month ends and billed on the next
  invoice as the difference.
The customer's SIMs are invoiced together (one invoice per customer and month).
"""

from decimal import Decimal

import pytest

from apps.accounts.services import customer_create, simulated_clock_create
from apps.billing.services import subscription_start
from apps.billing.services.simulated_clocks import simulated_clock_advance
from apps.core import clock
from apps.demo.sellers import iot_catalog
from apps.subscriptions.periods import utc
from apps.usage.services import usage_events_ingest

from .helpers import Bill, Line, bills_of

pytestmark = pytest.mark.django_db

D = Decimal
PLAN = "Kite IoT Connect (demo IoT connectivity) — SIM with pooled data"


def _send(customer, *events):
    """(transaction id, SIM subscription, moment, MB) sent at the test clock's time; returns the refusals."""
    result = usage_events_ingest(
        events=[
            {"transaction_id": tid, "external_customer_id": customer.external_id, "metric_code": "kite_sim_data_mb",
             "timestamp": moment.isoformat(), "properties": {"mb": mb, "subscription_id": sim.pk}}
            for tid, sim, moment, mb in events
        ],
        now=clock.now(),
    )  # fmt: skip
    assert result.accepted + len(result.rejected) == len(events)
    return [(rejection.transaction_id, rejection.code) for rejection in result.rejected]


def test_iot_sims_pay_per_active_sim_share_a_data_pool_and_late_sessions_reach_the_next_invoice():
    plan = iot_catalog()
    test_clock = simulated_clock_create(name="IoT story", frozen_at=utc(2026, 3, 1))
    customer = customer_create(
        name="Cold Chain Trackers Pty Ltd", email="accounts@coldchain.example", country="AU", currency="USD",
        external_id="coldchain", test_clock=test_clock, invoice_grouping="per_customer",
    )  # fmt: skip

    # --- 1 Mar 00:00: two SIMs. The fee is billed in arrears: no invoice now.
    sim_a = subscription_start(customer=customer, plan=plan)
    sim_b = subscription_start(customer=customer, plan=plan)
    assert bills_of(customer) == []

    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 3, 26))
    # The pool of March: 2 SIMs × 500 MB = 1,000 MB, used in event order:
    #   5 Mar A 300 → 300 used; 10 Mar B 400 → 700; 20 Mar A 450 → 1,000 (300 from the pool, 150 beyond: A);
    #   25 Mar B 100 → all beyond the pool (B).
    assert _send(
        customer,
        ("a-1", sim_a, utc(2026, 3, 5, 8), "300"), ("b-1", sim_b, utc(2026, 3, 10, 9), "400"),
        ("a-2", sim_a, utc(2026, 3, 20, 10), "450"), ("b-2", sim_b, utc(2026, 3, 25, 11), "100"),
    ) == []  # fmt: skip

    # --- 1 Apr 00:00: March is billed, both SIMs on one invoice.
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 4, 1, 1))
    # SIM fees: 2 × 2.00 (a whole month in arrears) = 4.00
    # data beyond the pool: A 150 MB × 0.01 = 1.50; B 100 MB × 0.01 = 1.00
    # total 4.00 + 1.50 + 1.00 = 6.50
    march = Bill(
        number="INV-2026-000001", status="open", billing_reason="subscription_cycle",
        period_start_at=utc(2026, 3, 1), period_end_at=utc(2026, 4, 1),
        issued_at=utc(2026, 4, 1), due_on=utc(2026, 4, 15).date(), currency="USD",
        lines=[
            Line("recurring", f"{PLAN}: Active SIM (monthly)", utc(2026, 3, 1), utc(2026, 4, 1), D(1), D("2.00")),
            Line("usage", f"{PLAN}: Data (usage beyond the pool)", utc(2026, 3, 1), utc(2026, 4, 1), D(150),
                 D("1.50")),
            Line("recurring", f"{PLAN}: Active SIM (monthly)", utc(2026, 3, 1), utc(2026, 4, 1), D(1), D("2.00")),
            Line("usage", f"{PLAN}: Data (usage beyond the pool)", utc(2026, 3, 1), utc(2026, 4, 1), D(100),
                 D("1.00")),
        ],
        subtotal=D("6.50"), taxes=[], tax_total=D(0), total=D("6.50"), amount_paid=D(0), amount_due=D("6.50"),
    )  # fmt: skip
    assert bills_of(customer) == [march]

    # --- 3 Apr: SIM A's tracker comes back online and reports a session of 31 Mar 22:30 (80 MB): March
    # is invoiced, but the metric takes late events until 5 days after it ended (6 Apr 00:00).
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 4, 3, 12))
    assert _send(customer, ("a-late", sim_a, utc(2026, 3, 31, 22, 30), "80")) == []
    # --- 7 Apr: another March session arrives after the window closed: refused, never billed.
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 4, 7, 12))
    assert _send(customer, ("b-too-late", sim_b, utc(2026, 3, 31, 23), "50")) == [("b-too-late", "late_beyond_window")]

    # April: A 200 MB, B 250 MB: 450 of the 1,000 MB pool, nothing beyond it.
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 4, 16))
    assert _send(
        customer, ("a-3", sim_a, utc(2026, 4, 8), "200"), ("b-3", sim_b, utc(2026, 4, 15), "250")
    ) == []  # fmt: skip

    # --- 1 May 00:00: April is billed, with March's late session.
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 5, 1, 1))
    # SIM fees: 2 × 2.00 = 4.00; April's data all from the pool: 0.00 on each SIM
    # March again for A, now with the late 80 MB (after the pool ran out on 20 Mar): beyond the pool
    #   150 + 80 = 230 MB = 2.30; already billed 1.50; difference 80 MB, 0.80 (B's March is unchanged)
    # total 4.00 + 0.80 = 4.80
    april = Bill(
        number="INV-2026-000002", status="open", billing_reason="subscription_cycle",
        # The invoice names April, the period it bills; March's late line names March itself.
        period_start_at=utc(2026, 4, 1), period_end_at=utc(2026, 5, 1),
        issued_at=utc(2026, 5, 1), due_on=utc(2026, 5, 15).date(), currency="USD",
        lines=[
            Line("recurring", f"{PLAN}: Active SIM (monthly)", utc(2026, 4, 1), utc(2026, 5, 1), D(1), D("2.00")),
            Line("usage", f"{PLAN}: Data (usage beyond the pool)", utc(2026, 4, 1), utc(2026, 5, 1), D(0),
                 D("0.00")),
            Line("usage", f"{PLAN}: Data (late usage, 1–31 Mar)", utc(2026, 3, 1), utc(2026, 4, 1), D(80),
                 D("0.80")),
            Line("recurring", f"{PLAN}: Active SIM (monthly)", utc(2026, 4, 1), utc(2026, 5, 1), D(1), D("2.00")),
            Line("usage", f"{PLAN}: Data (usage beyond the pool)", utc(2026, 4, 1), utc(2026, 5, 1), D(0),
                 D("0.00")),
        ],
        subtotal=D("4.80"), taxes=[], tax_total=D(0), total=D("4.80"), amount_paid=D(0), amount_due=D("4.80"),
    )  # fmt: skip
    assert bills_of(customer) == [march, april]


def test_a_late_session_of_the_second_sim_reaches_the_next_invoice():
    plan = iot_catalog()
    test_clock = simulated_clock_create(name="IoT late story", frozen_at=utc(2026, 3, 1))
    customer = customer_create(
        name="Cold Chain Trackers Pty Ltd", email="accounts@coldchain.example", country="AU", currency="USD",
        external_id="coldchain", test_clock=test_clock, invoice_grouping="per_customer",
    )  # fmt: skip
    sim_a = subscription_start(customer=customer, plan=plan)
    sim_b = subscription_start(customer=customer, plan=plan)
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 3, 26))
    # March's pool: A 600 then B 400 use the 1,000 MB exactly; nothing beyond it.
    assert _send(customer, ("a-1", sim_a, utc(2026, 3, 5), "600"), ("b-1", sim_b, utc(2026, 3, 10), "400")) == []
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 4, 3))
    # SIM B's session of 31 Mar 22:30 arrives within the window: 80 MB beyond the pool, B's.
    assert _send(customer, ("b-late", sim_b, utc(2026, 3, 31, 22, 30), "80")) == []
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 5, 1, 1))
    march, april = bills_of(customer)
    # March: 2 × 2.00 = 4.00 (the data lines 0.00); April: 2 × 2.00 + B's late 80 MB × 0.01 = 0.80 → 4.80
    assert (march.total, april.total) == (D("4.00"), D("4.80"))
    assert [(line.quantity, line.amount) for line in april.lines if "late usage" in line.description] == [
        (D(80), D("0.80"))
    ]
