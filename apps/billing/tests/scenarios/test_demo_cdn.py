"""Story: a customer of the demo CDN (Lumen Edge CDN, apps/demo/sellers.py), over two months on a test
clock. Every invoice line is asserted to the cent, each amount worked out by hand in the comments.

The plan (USD; a customer in the US pays no tax):
- Platform fee: 20.00 a month, billed in advance;
- Bandwidth: the 95th percentile of the 5-minute samples of each region (a sample = the Mbps sent in
  that interval; an interval without events is a sample of 0), 0.50 per Mbps, and 1.20 in apac (a
  dimension price). Of n samples the k = floor(n × 5 ÷ 100) highest are dropped and the (k+1)-th
  highest is billed;
- Requests: 0.75 per started package of 10,000 (package price, rounded up).
"""

from datetime import timedelta
from decimal import Decimal

import pytest

from apps.accounts.services import customer_create, simulated_clock_create
from apps.billing.services import subscription_start
from apps.billing.services.simulated_clocks import simulated_clock_advance
from apps.core import clock
from apps.demo.sellers import cdn_catalog
from apps.subscriptions.periods import utc
from apps.usage.services import usage_events_ingest

from .helpers import Bill, Line, bills_of

pytestmark = pytest.mark.django_db

D = Decimal
PLAN = "Lumen Edge CDN (demo CDN) — Edge"
FIVE_MINUTES = timedelta(minutes=5)


def _send(customer, events):
    """(transaction id, metric, moment, properties) — sent at the test clock's time; no refusal."""
    result = usage_events_ingest(
        events=[
            {"transaction_id": tid, "external_customer_id": customer.external_id, "metric_code": metric,
             "timestamp": moment.isoformat(), "properties": properties}
            for tid, metric, moment, properties in events
        ],
        now=clock.now(),
    )  # fmt: skip
    assert result.rejected == [] and result.accepted == len(events)


def _samples(prefix, region, start, values):
    """One bandwidth event per 5-minute interval from `start`, with these Mbps."""
    return [
        (f"{prefix}-{n}", "lumen_bandwidth_mbps", start + n * FIVE_MINUTES, {"region": region, "mbps": mbps})
        for n, mbps in enumerate(values)
    ]


def _requests(prefix, start, counts):
    return [
        (f"{prefix}-{n}", "lumen_requests", start + timedelta(hours=n), {"requests": count})
        for n, count in enumerate(counts)
    ]


def test_cdn_bills_the_95th_percentile_per_region_and_requests_per_10000_month_by_month():
    plan = cdn_catalog()
    test_clock = simulated_clock_create(name="CDN story", frozen_at=utc(2026, 4, 1))
    customer = customer_create(
        name="StreamCast Media LLC", email="ap@streamcast.example", country="US", state="CO", currency="USD",
        external_id="streamcast", test_clock=test_clock,
    )  # fmt: skip

    # --- 1 Apr 00:00: subscribed; the platform fee of April is billed in advance at once.
    subscription_start(customer=customer, plan=plan)
    april_fee = Bill(
        number="INV-2026-000001", status="open", billing_reason="subscription_cycle",
        period_start_at=utc(2026, 4, 1), period_end_at=utc(2026, 5, 1),
        issued_at=utc(2026, 4, 1), due_on=utc(2026, 4, 15).date(), currency="USD",
        lines=[Line("recurring", f"{PLAN}: Platform fee (monthly)", utc(2026, 4, 1), utc(2026, 5, 1), D(1),
                    D("20.00"))],
        subtotal=D("20.00"), taxes=[], tax_total=D(0), total=D("20.00"), amount_paid=D(0), amount_due=D("20.00"),
    )  # fmt: skip
    assert bills_of(customer) == [april_fee]

    # --- 4 Apr: the CDN's logs of 2–3 April.
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 4, 4))
    _send(
        customer,
        # na: 500 consecutive intervals from 2 Apr 00:00 of 1, 2, …, 500 Mbps
        _samples("na", "na", utc(2026, 4, 2), range(1, 501))
        # apac: 10 spikes of 900 Mbps, then 433 intervals of 100 Mbps
        + _samples("apac", "apac", utc(2026, 4, 2), [900] * 10 + [100] * 433)
        # requests: 12 hours of 10,288 = 123,456
        + _requests("req", utc(2026, 4, 2), [10_288] * 12),
    )

    # --- 1 May 00:00: May's fee in advance and April's usage in arrears, on one invoice.
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 5, 1, 1))
    # April: 30 days × 288 = 8,640 samples per region; k = floor(8,640 × 0.05) = 432 dropped.
    #   apac: 10 × 900, 433 × 100, the rest 0: the 433rd highest is 100 Mbps × 1.20 = 120.00
    #   na: 500, 499, …, 1, the rest 0: the 433rd highest is 500 − 432 = 68 Mbps × 0.50 = 34.00
    # requests: 123,456 → ceil(12.3456) = 13 packages × 0.75 = 9.75
    # total 20.00 + 120.00 + 34.00 + 9.75 = 183.75
    april = Bill(
        number="INV-2026-000002", status="open", billing_reason="subscription_cycle",
        period_start_at=utc(2026, 5, 1), period_end_at=utc(2026, 6, 1),  # the period it begins
        issued_at=utc(2026, 5, 1), due_on=utc(2026, 5, 15).date(), currency="USD",
        lines=[
            Line("usage", f"{PLAN}: Bandwidth (95th percentile) — region apac (usage)", utc(2026, 4, 1),
                 utc(2026, 5, 1), D(100), D("120.00")),
            Line("usage", f"{PLAN}: Bandwidth (95th percentile) — region na (usage)", utc(2026, 4, 1),
                 utc(2026, 5, 1), D(68), D("34.00")),
            Line("usage", f"{PLAN}: Requests (per 10,000) (usage)", utc(2026, 4, 1), utc(2026, 5, 1), D(123_456),
                 D("9.75")),
            Line("recurring", f"{PLAN}: Platform fee (monthly)", utc(2026, 5, 1), utc(2026, 6, 1), D(1), D("20.00")),
        ],
        subtotal=D("183.75"), taxes=[], tax_total=D(0), total=D("183.75"), amount_paid=D(0),
        amount_due=D("183.75"),
    )  # fmt: skip
    assert bills_of(customer) == [april_fee, april]

    # --- 20 May: May's logs: na only, 447 intervals of 40 Mbps; exactly 10,000 requests.
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 5, 20))
    _send(
        customer,
        _samples("may-na", "na", utc(2026, 5, 10), [40] * 447) + _requests("may-req", utc(2026, 5, 10), [10_000]),
    )

    # --- 1 Jun 00:00: June's fee and May's usage.
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 6, 1, 1))
    # May: 31 days × 288 = 8,928 samples; k = floor(8,928 × 0.05) = floor(446.4) = 446 dropped.
    #   na: 447 × 40, the rest 0: the 447th highest is 40 Mbps × 0.50 = 20.00 (one interval fewer: 0)
    #   apac: no sample in May: no line
    # requests: 10,000 → exactly 1 package × 0.75 = 0.75
    # total 20.00 + 20.00 + 0.75 = 40.75
    may = Bill(
        number="INV-2026-000003", status="open", billing_reason="subscription_cycle",
        period_start_at=utc(2026, 6, 1), period_end_at=utc(2026, 7, 1),
        issued_at=utc(2026, 6, 1), due_on=utc(2026, 6, 15).date(), currency="USD",
        lines=[
            Line("usage", f"{PLAN}: Bandwidth (95th percentile) — region na (usage)", utc(2026, 5, 1),
                 utc(2026, 6, 1), D(40), D("20.00")),
            Line("usage", f"{PLAN}: Requests (per 10,000) (usage)", utc(2026, 5, 1), utc(2026, 6, 1), D(10_000),
                 D("0.75")),
            Line("recurring", f"{PLAN}: Platform fee (monthly)", utc(2026, 6, 1), utc(2026, 7, 1), D(1), D("20.00")),
        ],
        subtotal=D("40.75"), taxes=[], tax_total=D(0), total=D("40.75"), amount_paid=D(0), amount_due=D("40.75"),
    )  # fmt: skip
    assert bills_of(customer) == [april_fee, april, may]
