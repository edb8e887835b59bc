"""Usage charges on invoices: billed in arrears, per group, at the period boundary."""

from datetime import timedelta
from decimal import Decimal

import pytest
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import bill_due_subscriptions, subscription_start, subscription_upcoming_invoice
from apps.catalog.models import PlanVersion
from apps.catalog.services import billable_metric_create
from apps.catalog.tests.factories import PlanFactory, add_charge
from apps.invoices.models import Invoice
from apps.subscriptions.periods import utc
from apps.subscriptions.services import subscription_cancel
from apps.usage.services import usage_events_ingest

pytestmark = pytest.mark.django_db


@pytest.fixture
def api_plan():
    billable_metric_create(code="api_calls", name="API calls", group_by="region")
    plan = PlanFactory(prices=[], name="API", product__name="Gateway")
    version = PlanVersion.objects.create(plan=plan, number=1)
    add_charge(version, name="Platform fee", price_model="flat", amount=Decimal("10"))
    add_charge(
        version, name="Calls", kind="usage", metric_code="api_calls", price_model="graduated",
        tiers=[("100", "0", "0"), (None, "0.05", "0")],
    )  # fmt: skip
    return plan


def _send(customer, *events):
    result = usage_events_ingest(
        events=[
            {"transaction_id": tid, "external_customer_id": customer.external_id, "metric_code": "api_calls",
             "timestamp": at.isoformat(), "properties": {"region": region}}
            for tid, at, region in events
        ],
        now=utc(2026, 5, 1),
    )  # fmt: skip
    assert result.rejected == [], result.rejected
    return result


def test_usage_is_billed_in_arrears_per_group_and_the_period_end_belongs_to_the_next_period(api_plan):
    customer = CustomerFactory(currency="USD", external_id="acme")
    subscription = subscription_start(customer=customer, plan=api_plan, now=utc(2026, 4, 1))
    events = [(f"eu-{n}", utc(2026, 4, 2) + timedelta(minutes=n), "eu") for n in range(130)]
    events += [(f"us-{n}", utc(2026, 4, 3) + timedelta(minutes=n), "us") for n in range(20)]
    events += [("boundary", utc(2026, 5, 1), "eu")]  # exactly at the period end: May's
    _send(customer, *events)

    bill_due_subscriptions(now=utc(2026, 5, 1, 1))

    may = Invoice.objects.get(subscription=subscription, period_start_at=utc(2026, 5, 1))
    lines = [
        (line.kind, line.description, line.quantity, line.amount.amount) for line in may.lines.order_by("position")
    ]
    assert lines == [
        ("usage", "Gateway — API: Calls — region eu (usage)", Decimal(130), Decimal("1.50")),  # 30 × 0.05
        ("usage", "Gateway — API: Calls — region us (usage)", Decimal(20), Decimal("0.00")),  # priced apart
        ("recurring", "Gateway — API: Platform fee (monthly)", Decimal(1), Decimal("10.00")),
    ]
    usage_line = may.lines.filter(kind="usage").first()
    assert (usage_line.period_start_at, usage_line.period_end_at) == (utc(2026, 4, 1), utc(2026, 5, 1))
    assert usage_line.explanation[0] == "API calls: 130 (Count of events)"


def test_events_for_an_invoiced_period_are_refused_after_the_run_past_the_lateness_window(api_plan):
    customer = CustomerFactory(currency="USD", external_id="acme")
    subscription_start(customer=customer, plan=api_plan, now=utc(2026, 4, 1))
    bill_due_subscriptions(now=utc(2026, 5, 1, 1))

    result = usage_events_ingest(
        events=[{"transaction_id": "late", "external_customer_id": "acme", "metric_code": "api_calls",
                 "timestamp": utc(2026, 4, 30).isoformat(), "properties": {"region": "eu"}}],
        now=utc(2026, 5, 4, 0, 0, 1),  # the 3-day window after 1 May closed a second ago
    )  # fmt: skip

    assert [(rejection.index, rejection.code) for rejection in result.rejected] == [(0, "late_beyond_window")]
    assert "already invoiced" in result.rejected[0].reason


def test_upcoming_invoice_shows_usage_so_far_and_the_final_invoice_bills_the_last_period(api_plan):
    customer = CustomerFactory(currency="USD", external_id="acme")
    subscription = subscription_start(customer=customer, plan=api_plan, now=utc(2026, 4, 1))
    _send(customer, *[(f"eu-{n}", utc(2026, 4, 2) + timedelta(minutes=n), "eu") for n in range(120)])

    upcoming = subscription_upcoming_invoice(subscription_id=subscription.pk, now=utc(2026, 4, 10))
    assert [(line.kind, line.amount) for line in upcoming.lines] == [
        ("usage", Decimal("1.00")),  # 20 calls above the free 100, × 0.05
        ("recurring", Decimal("10.00")),
    ]

    subscription_cancel(subscription_id=subscription.pk, at_period_end=True, now=utc(2026, 4, 10))
    bill_due_subscriptions(now=utc(2026, 5, 1, 1))

    final = Invoice.objects.get(subscription=subscription, billing_reason="subscription_update")
    assert final.total == Money("1.00", "USD")
    assert final.lines.get().description == "Gateway — API: Calls — region eu (usage)"
