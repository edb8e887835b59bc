"""Weighted-sum and percentile metrics on invoices: a cloud seller's storage in GB-months and a CDN's
95th-percentile bandwidth, billed by the billing run, shown by the upcoming invoice, late events
billed as the difference. Every amount computed by hand."""

from datetime import timedelta
from decimal import Decimal as D

import pytest

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import (
    bill_due_subscriptions,
    subscription_change,
    subscription_start,
    subscription_upcoming_invoice,
)
from apps.catalog.models import PlanVersion
from apps.catalog.services import billable_metric_create
from apps.catalog.tests.factories import PlanFactory, ProductFactory, add_charge
from apps.invoices.models import Invoice
from apps.subscriptions.periods import utc
from apps.usage.services import usage_events_ingest

pytestmark = pytest.mark.django_db

APRIL, MAY, JUNE = utc(2026, 4, 1), utc(2026, 5, 1), utc(2026, 6, 1)


@pytest.fixture
def plan():
    billable_metric_create(
        code="storage", name="Storage", aggregation="weighted_sum", field_name="gb", time_unit="month"
    )
    billable_metric_create(
        code="egress", name="Bandwidth", aggregation="percentile", field_name="mbps", percentile=D(95),
        interval_minutes=5,
    )  # fmt: skip
    plan = PlanFactory(product=ProductFactory(name="Cloud"), name="Edge", prices=[])
    version = PlanVersion.objects.create(plan=plan, number=1)
    add_charge(version, name="Storage", kind="usage", metric_code="storage", price_model="per_unit", amount=D("0.10"))
    add_charge(version, name="Bandwidth", kind="usage", metric_code="egress", price_model="per_unit", amount=D("2.00"))
    return plan


def _send(now, *events):
    """(transaction id, metric, moment, properties) events, as the usage API sends them."""
    result = usage_events_ingest(
        events=[
            {"transaction_id": transaction_id, "external_customer_id": "acme", "metric_code": metric,
             "timestamp": moment.isoformat(), "properties": properties}
            for transaction_id, metric, moment, properties in events
        ],
        now=now,
    )  # fmt: skip
    assert result.rejected == [], result.rejected
    return result


def _april_usage():
    """Storage: 100 GB from 1 Apr, 400 GB from 16 Apr 00:00. Bandwidth: 433 five-minute intervals from
    2 Apr 00:00 with 100, 101, …, 532 Mbps; April's other 8,207 intervals are empty."""
    storage = [("s1", "storage", APRIL, {"gb": 100}), ("s2", "storage", utc(2026, 4, 16), {"gb": 400})]
    bandwidth = [
        (f"e{j}", "egress", utc(2026, 4, 2) + timedelta(minutes=5 * j, seconds=30), {"mbps": 100 + j})
        for j in range(433)
    ]
    _send(MAY, *storage, *bandwidth)


def _usage_lines(invoice):
    return [
        (line.description, line.quantity, line.amount.amount)
        for line in invoice.lines.filter(kind="usage").order_by("position")
    ]


@pytest.fixture
def subscription(plan):
    return subscription_start(customer=CustomerFactory(currency="USD", external_id="acme"), plan=plan, now=APRIL)


def test_the_billing_run_bills_gb_months_and_the_95th_percentile_to_the_cent(subscription):
    _april_usage()

    bill_due_subscriptions(now=MAY + timedelta(hours=1))
    bill_due_subscriptions(now=JUNE + timedelta(hours=1))

    # April (30 days): (100 GB × 15 days + 400 GB × 15 days) / 30 days = 250 GB-months × 0.10 = 25.00.
    # 30 × 288 = 8,640 samples; k = floor(8,640 × 5 / 100) = 432 dropped (532 … 101), 100 Mbps × 2.00.
    assert _usage_lines(Invoice.objects.get(subscription=subscription, period_start_at=APRIL)) == [
        ("Cloud — Edge: Storage (usage)", D(250), D("25.00")),
        ("Cloud — Edge: Bandwidth (usage)", D(100), D("200.00")),
    ]
    april = Invoice.objects.get(subscription=subscription, period_start_at=APRIL)
    assert [line.explanation[0] for line in april.lines.order_by("position")] == [
        "Storage: 250 (Time-weighted sum of a gauge property, per calendar month)",
        "Bandwidth: 100 (95th percentile of 5-minute sums of a property)",
    ]
    # May: no event, the 400 GB carried over all month = 400 GB-months = 40.00; no bandwidth: no line.
    assert _usage_lines(Invoice.objects.get(subscription=subscription, period_start_at=MAY)) == [
        ("Cloud — Edge: Storage (usage)", D(400), D("40.00")),
    ]


def test_the_upcoming_invoice_shows_the_meters_so_far(subscription):
    _april_usage()

    preview = subscription_upcoming_invoice(subscription_id=subscription.pk, now=utc(2026, 4, 21))

    # 100 GB × 15 days + 400 GB × 5 days = 3,500 GB-days, of April's 30 days: 116.666667 GB-months;
    # 20 days so far: 5,760 samples, k = 288 dropped (532 … 245), 244 Mbps.
    usage = [(line.description, line.quantity, line.amount) for line in preview.lines if line.kind == "usage"]
    assert usage == [
        ("Cloud — Edge: Storage (usage)", D("116.666667"), D("11.67")),
        ("Cloud — Edge: Bandwidth (usage)", D(244), D("488.00")),
    ]


def test_a_run_bills_meter_subscriptions_alongside_plain_ones(subscription):
    billable_metric_create(code="calls", name="Calls")
    plain_plan = PlanFactory(product=ProductFactory(name="API"), name="Calls", prices=[])
    version = PlanVersion.objects.create(plan=plain_plan, number=1)
    add_charge(version, name="Calls", kind="usage", metric_code="calls", price_model="per_unit", amount=D("0.01"))
    plain = subscription_start(
        customer=CustomerFactory(currency="USD", external_id="other"), plan=plain_plan, now=APRIL
    )
    _april_usage()
    usage_events_ingest(
        events=[{"transaction_id": f"c{n}", "external_customer_id": "other", "metric_code": "calls",
                 "timestamp": utc(2026, 4, 3, n).isoformat()} for n in range(7)],
        now=MAY,
    )  # fmt: skip

    bill_due_subscriptions(now=MAY + timedelta(hours=1))

    assert [line[2] for line in _usage_lines(Invoice.objects.get(subscription=subscription))] == [
        D("25.00"), D("200.00"),
    ]  # fmt: skip
    assert _usage_lines(Invoice.objects.get(subscription=plain)) == [("API — Calls: Calls (usage)", D(7), D("0.07"))]


@pytest.fixture
def subscription_with_fee(plan):
    """The same plan with a platform fee of 10.00 billed in advance. (On a usage-only plan an invoice
    carrying only arrears lines is named after their span, which a late line for a period already
    invoiced makes collide with that period's invoice: see the report of this change.)"""
    add_charge(plan.versions.get(), name="Platform", price_model="flat", amount=D("10.00"))
    return subscription_start(customer=CustomerFactory(currency="USD", external_id="acme"), plan=plan, now=APRIL)


def test_a_late_sample_moves_the_95th_percentile_and_the_next_invoice_bills_the_difference(subscription_with_fee):
    subscription = subscription_with_fee
    _april_usage()
    bill_due_subscriptions(now=MAY + timedelta(hours=1))

    # On 2 May, a CDN log for 30 Apr 23:55–24:00 arrives: 600 Mbps. April now has 434 samples with traffic;
    # the 432 highest (600, 532 … 102) are dropped and 101 Mbps is billed: 202.00 instead of 200.00.
    _send(utc(2026, 5, 2), ("late", "egress", utc(2026, 4, 30, 23, 57), {"mbps": 600}))
    bill_due_subscriptions(now=JUNE + timedelta(hours=1))

    june = Invoice.objects.get(subscription=subscription, period_start_at=JUNE)
    assert _usage_lines(june) == [
        ("Cloud — Edge: Storage (usage)", D(400), D("40.00")),
        ("Cloud — Edge: Bandwidth (late usage, 1–30 Apr)", D(1), D("2.00")),
    ]


def test_a_late_gauge_level_reprices_its_period(subscription_with_fee):
    subscription = subscription_with_fee
    _april_usage()
    bill_due_subscriptions(now=MAY + timedelta(hours=1))

    # 30 Apr 00:00: the bucket shrank to 100 GB (sent on 1 May at noon): April is now
    # 100 × 15 + 400 × 14 + 100 × 1 = 7,200 GB-days / 30 = 240 GB-months: 24.00, 1.00 less than billed;
    # May carries 100 GB: 100 GB-months = 10.00.
    _send(utc(2026, 5, 1, 12), ("shrink", "storage", utc(2026, 4, 30), {"gb": 100}))
    bill_due_subscriptions(now=JUNE + timedelta(hours=1))

    june = Invoice.objects.get(subscription=subscription, period_start_at=JUNE)
    assert _usage_lines(june) == [
        ("Cloud — Edge: Storage (usage)", D(100), D("10.00")),
        ("Cloud — Edge: Storage (late usage, 1–30 Apr)", D(-10), D("-1.00")),
    ]


def test_an_upgrade_mid_month_bills_each_stretch_its_share_of_gb_months_and_its_own_percentile(subscription, plan):
    bigger = PlanFactory(product=plan.product, name="Edge Plus", prices=[])
    version = PlanVersion.objects.create(plan=bigger, number=1)
    add_charge(version, name="Storage", kind="usage", metric_code="storage", price_model="per_unit", amount=D("0.20"))
    add_charge(version, name="Bandwidth", kind="usage", metric_code="egress", price_model="per_unit", amount=D("3.00"))
    _april_usage()
    subscription_change(subscription_id=subscription.pk, plan=bigger, now=utc(2026, 4, 16))

    bill_due_subscriptions(now=MAY + timedelta(hours=1))

    # 1–16 Apr on Edge: 100 GB × 15 days / 30 = 50 GB-months × 0.10 = 5.00; 15 × 288 = 4,320 samples,
    # k = 216 dropped (532 … 317), 316 Mbps × 2.00 = 632.00. 16 Apr–1 May on Edge Plus: 400 GB × 15 days
    # / 30 = 200 GB-months × 0.20 = 40.00; no bandwidth.
    invoice = Invoice.objects.get(subscription=subscription)
    assert [
        (line.description, line.period_start_at, line.period_end_at, line.quantity, line.amount.amount)
        for line in invoice.lines.filter(kind="usage").order_by("position")
    ] == [
        ("Cloud — Edge: Storage (usage)", APRIL, utc(2026, 4, 16), D(50), D("5.00")),
        ("Cloud — Edge: Bandwidth (usage)", APRIL, utc(2026, 4, 16), D(316), D("632.00")),
        ("Cloud — Edge Plus: Storage (usage)", utc(2026, 4, 16), MAY, D(200), D("40.00")),
    ]
