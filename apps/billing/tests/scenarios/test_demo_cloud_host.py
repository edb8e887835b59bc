"""Story: a customer of the demo cloud host (Stratus Cloud, apps/demo/sellers.py) on its pay-as-you-go
plan, over two months on a test clock. Every invoice line is asserted to the cent, each amount worked
out by hand in the comments.

The plan (USD, usage only, billed in arrears; a customer in the US pays no tax):
- VM-hours: a time-weighted sum of the VMs running per region (each event is the new number
  running, held until the next one, carried over from month to month), 0.040 USD per VM-hour, and
  0.052 in ap-southeast (a dimension price);
- block storage: a time-weighted sum of the GB provisioned in GB-months (each second counts as
  1 ÷ the seconds of its calendar month), 0.023 USD per GB-month.
A plan with no fee billed in advance makes no invoice when it is subscribed: the first invoice comes
on 1 April with March's usage. Each amount = quantity × price, rounded once, half up.
"""

from decimal import Decimal

import pytest

from apps.accounts.services import customer_create, simulated_clock_create
from apps.billing.services import subscription_start
from apps.billing.services.simulated_clocks import simulated_clock_advance
from apps.core import clock
from apps.demo.sellers import cloud_host_catalog
from apps.subscriptions.periods import utc
from apps.usage.services import usage_events_ingest

from .helpers import Bill, Line, bills_of

pytestmark = pytest.mark.django_db

D = Decimal
VM = "Stratus Cloud (demo cloud host) — Pay as you go: VM-hours"
STORAGE = "Stratus Cloud (demo cloud host) — Pay as you go: Block storage (GB-months)"


def _send(customer, *events):
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


def _vms(tid, moment, region, vms):
    return (tid, "stratus_vm_hours", moment, {"region": region, "vms": vms})


def _storage(tid, moment, gb):
    return (tid, "stratus_storage_gb", moment, {"gb": gb})


def test_cloud_host_bills_vm_hours_per_region_and_gb_months_in_arrears_month_by_month():
    plan = cloud_host_catalog()
    test_clock = simulated_clock_create(name="Cloud host story", frozen_at=utc(2026, 3, 1))
    customer = customer_create(
        name="Orbital Render Farm Inc.", email="billing@orbital.example", country="US", state="CA", currency="USD",
        external_id="orbital", test_clock=test_clock,
    )  # fmt: skip

    # --- 1 Mar 00:00: subscribed. Usage only: no invoice now.
    subscription_start(customer=customer, plan=plan)
    _send(customer, _vms("vm-1", utc(2026, 3, 1), "us-east", 2), _storage("st-1", utc(2026, 3, 1), 100))
    assert bills_of(customer) == []

    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 3, 21, 13))
    _send(
        customer,
        _vms("vm-2", utc(2026, 3, 11), "us-east", 5),
        _vms("vm-3", utc(2026, 3, 16), "ap-southeast", 1),
        _storage("st-2", utc(2026, 3, 16), 400),
        _vms("vm-4", utc(2026, 3, 21, 12), "us-east", 0),  # all us-east VMs stopped
    )

    # --- 1 Apr 00:00: March's usage is billed (March: 31 days = 744 hours).
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 4, 1, 1))
    # us-east: 2 VMs × 240 h (1–11 Mar) + 5 VMs × 252 h (11 Mar 00:00 – 21 Mar 12:00) + 0 = 480 + 1,260
    #   = 1,740 VM-hours × 0.040 = 69.60 (default price)
    # ap-southeast: 1 VM × 384 h (16 Mar – 1 Apr: 16 days) = 384 VM-hours × 0.052 = 19.968 → 19.97
    # storage: (100 GB × 15 days + 400 GB × 16 days) ÷ 31 days = 7,900 ÷ 31 = 254.838709… GB-months
    #   (quantity kept to 6 decimals: 254.838710) × 0.023 = 5.861290… → 5.86
    # total 69.60 + 19.97 + 5.86 = 95.43
    march = Bill(
        number="INV-2026-000001", status="open", billing_reason="subscription_cycle",
        period_start_at=utc(2026, 3, 1), period_end_at=utc(2026, 4, 1),
        issued_at=utc(2026, 4, 1), due_on=utc(2026, 4, 15).date(), currency="USD",  # issued + 14 days
        lines=[
            Line("usage", f"{VM} — region ap-southeast (usage)", utc(2026, 3, 1), utc(2026, 4, 1), D(384),
                 D("19.97")),
            Line("usage", f"{VM} — region us-east (usage)", utc(2026, 3, 1), utc(2026, 4, 1), D(1740), D("69.60")),
            Line("usage", f"{STORAGE} (usage)", utc(2026, 3, 1), utc(2026, 4, 1), D("254.838710"), D("5.86")),
        ],
        subtotal=D("95.43"), taxes=[], tax_total=D(0), total=D("95.43"), amount_paid=D(0), amount_due=D("95.43"),
    )  # fmt: skip
    assert bills_of(customer) == [march]

    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 4, 20, 1))
    _send(customer, _vms("vm-5", utc(2026, 4, 10), "us-east", 3), _vms("vm-6", utc(2026, 4, 20), "us-east", 0))

    # --- 1 May 00:00: April's usage (30 days = 720 hours); no storage or ap-southeast event in April:
    # their levels carry over from March.
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 5, 1, 1))
    # us-east: 0 (carried) for 9 days, 3 VMs × 240 h (10–20 Apr), then 0 = 720 VM-hours × 0.040 = 28.80
    # ap-southeast: 1 VM carried all month = 720 VM-hours × 0.052 = 37.44
    # storage: 400 GB carried through the whole calendar month = 400 GB-months × 0.023 = 9.20
    # total 28.80 + 37.44 + 9.20 = 75.44
    april = Bill(
        number="INV-2026-000002", status="open", billing_reason="subscription_cycle",
        period_start_at=utc(2026, 4, 1), period_end_at=utc(2026, 5, 1),
        issued_at=utc(2026, 5, 1), due_on=utc(2026, 5, 15).date(), currency="USD",
        lines=[
            Line("usage", f"{VM} — region ap-southeast (usage)", utc(2026, 4, 1), utc(2026, 5, 1), D(720),
                 D("37.44")),
            Line("usage", f"{VM} — region us-east (usage)", utc(2026, 4, 1), utc(2026, 5, 1), D(720), D("28.80")),
            Line("usage", f"{STORAGE} (usage)", utc(2026, 4, 1), utc(2026, 5, 1), D(400), D("9.20")),
        ],
        subtotal=D("75.44"), taxes=[], tax_total=D(0), total=D("75.44"), amount_paid=D(0), amount_due=D("75.44"),
    )  # fmt: skip
    assert bills_of(customer) == [march, april]
