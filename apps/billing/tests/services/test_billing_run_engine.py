"""The billing run engine: chunks, the bulk path and the one-by-one path agree to the cent, progress,
failures, and runs left behind by a lost worker."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import bill_due_subscriptions, subscription_bill_due
from apps.billing.services.billing_chunk import billing_chunk_bill
from apps.catalog.models import PlanVersion, Price
from apps.catalog.services import billable_metric_create
from apps.catalog.tests.factories import CouponFactory, PlanFactory, add_charge
from apps.invoices.constants import BillingRunStatus, InvoiceStatus
from apps.invoices.models import BillingRun, Invoice, TaxRate
from apps.subscriptions.periods import utc
from apps.subscriptions.services import coupon_redeem, subscription_create
from apps.subscriptions.tests.factories import make_subscription
from apps.usage.models import UsageEvent
from apps.usage.selectors import UsageWindow, usage_aggregate, usage_aggregate_many
from apps.usage.services import usage_events_ingest

pytestmark = pytest.mark.django_db


@pytest.fixture
def hybrid_plan():
    """A fee plus three usage charges (count graduated, sum per unit, max volume)."""
    billable_metric_create(code="calls", name="Calls", group_by="region")
    billable_metric_create(code="storage", name="Storage", aggregation="sum", field_name="gb")
    billable_metric_create(code="seats", name="Seats", aggregation="max", field_name="seats")
    plan = PlanFactory(prices=[], name="Hybrid", product__name="Cloud")
    version = PlanVersion.objects.create(plan=plan, number=1)
    add_charge(version, name="Platform fee", price_model="flat", amount=Decimal("49"))
    add_charge(
        version, name="Calls", kind="usage", metric_code="calls", price_model="graduated",
        tiers=[("3", "0", "0"), (None, "0.0004", "0.10")],
    )  # fmt: skip
    add_charge(
        version, name="Storage", kind="usage", metric_code="storage", price_model="per_unit", amount=Decimal("0.023")
    )
    add_charge(
        version, name="Seats", kind="usage", metric_code="seats", price_model="volume",
        tiers=[("10", "8", "0"), (None, "6", "0")],
    )  # fmt: skip
    return plan


def _use(customer, tag: str, at_minutes: list[int]) -> None:
    """Usage events in April 2026 (minutes from 1 Apr 00:00, so partial hours at both period ends)."""
    start = utc(2026, 4, 1)
    events = []
    for n, minutes in enumerate(at_minutes):
        at = (start + timedelta(minutes=minutes)).isoformat()
        events += [
            {"transaction_id": f"{tag}-c{n}", "external_customer_id": customer.external_id, "metric_code": "calls",
             "timestamp": at, "properties": {"region": "eu" if n % 2 else "us"}},
            {"transaction_id": f"{tag}-s{n}", "external_customer_id": customer.external_id, "metric_code": "storage",
             "timestamp": at, "properties": {"gb": str(Decimal(n) + Decimal("0.125"))}},
            {"transaction_id": f"{tag}-m{n}", "external_customer_id": customer.external_id, "metric_code": "seats",
             "timestamp": at, "properties": {"seats": 3 + n * 2}},
        ]  # fmt: skip
    result = usage_events_ingest(events=events, now=utc(2026, 4, 30, 23, 59))
    assert result.rejected == []


def _twin(plan, name: str, **customer_fields):
    customer = CustomerFactory(currency="USD", external_id=name, **customer_fields)
    subscription = subscription_create(customer=customer, plan=plan, started_at=utc(2026, 4, 1), quantity=2)
    _use(customer, name, [0, 59, 61, 600, 7_000, 43_199])  # 43,199 min = 29 Apr 23:59 (period ends 1 May)
    return subscription


def _bill_view(invoice: Invoice) -> dict:
    return {
        "status": invoice.status,
        "period": (invoice.period_start_at, invoice.period_end_at),
        "totals": (invoice.subtotal, invoice.tax_total, invoice.total, invoice.reverse_charge),
        "lines": [
            (
                line.position,
                line.kind,
                line.description,
                line.quantity,
                line.unit_amount,
                line.amount,
                line.explanation,
                line.charge_id,
                line.period_start_at,
                line.period_end_at,
            )
            for line in invoice.lines.order_by("position")
        ],  # fmt: skip
        "taxes": [(t.name, t.percentage, t.inclusive, t.taxable_amount, t.tax_amount) for t in invoice.taxes.all()],
        "due_on": invoice.due_on,
        "events": [e.type for e in invoice.events.order_by("id")],
        "buyer": {k: v for k, v in invoice.customer_details.items() if k not in ("id", "external_id", "email", "name")},
        "seller": invoice.seller_details,
    }


@pytest.mark.parametrize("inclusive", [False, True])
def test_the_bulk_path_bills_exactly_what_the_one_by_one_path_bills(hybrid_plan, inclusive):
    TaxRate.objects.create(name="VAT", percentage=Decimal("21"), country="NL", inclusive=inclusive)
    bulk = _twin(hybrid_plan, "bulk", country="NL", city="Amsterdam", postal_code="1017 BZ")
    single = _twin(hybrid_plan, "single", country="NL", city="Amsterdam", postal_code="1017 BZ")
    subscription_bill_due(subscription_id=bulk.pk, now=utc(2026, 4, 1))
    subscription_bill_due(subscription_id=single.pk, now=utc(2026, 4, 1))

    outcome = billing_chunk_bill(subscription_ids=[bulk.pk], now=utc(2026, 5, 1))
    assert (len(outcome.invoice_ids), outcome.one_by_one_ids, outcome.errors) == (1, [], [])
    [one] = subscription_bill_due(subscription_id=single.pk, now=utc(2026, 5, 1))

    bulk_invoice = Invoice.objects.get(pk=outcome.invoice_ids[0])
    single_invoice = Invoice.objects.get(pk=one.pk)
    assert _bill_view(bulk_invoice) == _bill_view(single_invoice)
    assert bulk_invoice.lines.count() == 5  # fee, calls in two regions, storage, seats
    assert bulk_invoice.taxes.get().tax_amount.amount > 0
    assert int(bulk_invoice.number[-6:]) + 1 == int(single_invoice.number[-6:])
    bulk.refresh_from_db()
    assert (bulk.current_period_start_at, bulk.next_billing_at) == (utc(2026, 5, 1), utc(2026, 6, 1))
    for invoice, subscription in ((bulk_invoice, bulk), (single_invoice, single)):  # each period recorded once
        assert list(invoice.invoiced_periods.values_list("subscription_id", "period_start_at", "period_end_at")) == [
            (subscription.pk, utc(2026, 5, 1), utc(2026, 6, 1))
        ]


@override_settings(INVOICE_DRAFT_GRACE_HOURS=24)
def test_with_a_review_period_the_bulk_path_leaves_drafts(hybrid_plan):
    subscription = _twin(hybrid_plan, "draft")
    subscription_bill_due(subscription_id=subscription.pk, now=utc(2026, 4, 1))
    outcome = billing_chunk_bill(subscription_ids=[subscription.pk], now=utc(2026, 5, 1))
    invoice = Invoice.objects.get(pk=outcome.invoice_ids[0])
    assert (invoice.status, invoice.number, outcome.finalized_ids) == (InvoiceStatus.DRAFT, None, [])
    assert invoice.auto_finalize_at == utc(2026, 5, 2)


def test_a_zero_amount_invoice_is_finalized_and_paid():
    plan = PlanFactory(prices=[Money("0", "USD")])
    subscription = make_subscription(plan=plan, started_at=utc(2026, 3, 1))
    subscription_bill_due(subscription_id=subscription.pk, now=utc(2026, 3, 1))
    outcome = billing_chunk_bill(subscription_ids=[subscription.pk], now=utc(2026, 4, 1))
    invoice = Invoice.objects.get(pk=outcome.invoice_ids[0])
    assert (invoice.status, invoice.total, invoice.paid_at) == (InvoiceStatus.PAID, Money("0", "USD"), utc(2026, 4, 1))
    assert [e.type for e in invoice.events.order_by("id")] == ["created", "finalized", "paid"]


def test_a_run_is_split_into_chunks_and_records_its_progress():
    plan = PlanFactory()
    for day in range(1, 6):
        make_subscription(plan=plan, started_at=utc(2026, 1, day))
    with override_settings(BILLING_RUN_CHUNK_SIZE=2):
        run = bill_due_subscriptions(now=utc(2026, 1, 10))
    assert (run.status, run.due_count, run.chunk_count, run.chunks_done, run.processed_count) == (
        BillingRunStatus.SUCCEEDED, 5, 3, 3, 5,
    )  # fmt: skip
    assert (run.invoiced_count, run.skipped_count, run.failed_count) == (5, 0, 0)
    assert run.statement_count > 0 and run.duration_ms is not None and run.progress_percent == 100
    assert Invoice.objects.count() == 5


def test_special_cases_in_a_chunk_are_billed_one_by_one_and_plain_ones_in_bulk():
    plan = PlanFactory(prices=[Money("100", "USD")])
    plain = [make_subscription(plan=plan, started_at=utc(2026, 1, 1)) for _ in range(3)]
    trial = subscription_create(customer=CustomerFactory(), plan=plan, started_at=utc(2025, 12, 18), trial_days=14)
    discounted = make_subscription(plan=plan, started_at=utc(2026, 1, 1))
    coupon_redeem(coupon=CouponFactory(percent_off=Decimal("10")), subscription=discounted)
    behind = make_subscription(plan=plan, started_at=utc(2025, 11, 1))  # three periods to bill
    ids = [s.pk for s in [*plain, trial, discounted, behind]]

    outcome = billing_chunk_bill(subscription_ids=ids, now=utc(2026, 1, 1))
    assert sorted(outcome.one_by_one_ids) == sorted([trial.pk, discounted.pk, behind.pk])
    assert sorted(outcome.billed_subscription_ids) == sorted(s.pk for s in plain)

    run = bill_due_subscriptions(now=utc(2026, 1, 1))  # bills what the chunk left
    assert run.failed_count == 0
    assert Invoice.objects.filter(subscription=behind).count() == 3
    discount_line = Invoice.objects.get(subscription=discounted).lines.get(kind="discount")
    assert discount_line.amount == Money("-10.00", "USD")
    assert Invoice.objects.get(subscription=trial).total == Money("100.00", "USD")


def test_a_failing_subscription_is_reported_and_the_others_are_billed():
    plan = PlanFactory(prices=[Money("20", "USD")])
    good = [make_subscription(plan=plan, started_at=utc(2026, 2, 1)) for _ in range(4)]
    bad = make_subscription(plan=plan, started_at=utc(2026, 2, 1))
    bill_due_subscriptions(now=utc(2026, 2, 1))
    Price.objects.filter(charge__plan_version__plan=plan).delete()  # no price any more
    other_plan = PlanFactory(prices=[Money("30", "USD")])
    Invoice.objects.filter(subscription__in=good).count()
    for subscription in good:  # the good ones move to a plan that still has a price
        type(subscription).objects.filter(pk=subscription.pk).update(
            plan=other_plan, plan_version=other_plan.versions.get()
        )

    run = bill_due_subscriptions(now=utc(2026, 3, 1))
    assert (run.status, run.invoiced_count, run.failed_count) == (BillingRunStatus.COMPLETED_WITH_ERRORS, 4, 1)
    [error] = run.errors
    assert error["subscription"] == bad.pk
    assert "no price in USD" in error["error"]
    assert Invoice.objects.filter(subscription=bad).count() == 1  # only February's
    bad.refresh_from_db()
    assert bad.next_billing_at == utc(2026, 3, 1)  # still due: the next run tries again


def test_a_run_left_without_progress_is_closed_as_interrupted_by_the_next_one():
    stale = BillingRun.objects.create(
        as_of=utc(2026, 1, 1), trigger="schedule", started_at=utc(2026, 1, 1),
        heartbeat_at=timezone.now() - timedelta(hours=2), chunk_count=4, chunks_done=1,
    )  # fmt: skip
    recent = BillingRun.objects.create(
        as_of=utc(2026, 1, 1), trigger="schedule", started_at=utc(2026, 1, 1), heartbeat_at=timezone.now()
    )
    bill_due_subscriptions(now=utc(2026, 1, 1))
    stale.refresh_from_db()
    recent.refresh_from_db()
    assert (stale.status, recent.status) == (BillingRunStatus.INTERRUPTED, BillingRunStatus.RUNNING)


def test_usage_read_in_bulk_equals_usage_read_window_by_window(hybrid_plan):
    customers = [CustomerFactory(currency="USD", external_id=f"u{n}") for n in range(3)]
    for n, customer in enumerate(customers):
        _use(customer, f"u{n}", [n, 59 + n, 61, 600 + 7 * n, 7_000, 43_199 - n])
    from apps.catalog.models import BillableMetric

    windows = [
        UsageWindow(customer_id=customer.pk, metric=metric, start=start, end=end)
        for customer in customers
        for metric in BillableMetric.objects.all()
        for start, end in [
            (utc(2026, 4, 1), utc(2026, 5, 1)),
            (utc(2026, 4, 1, 0, 30), utc(2026, 4, 1, 10, 1)),
            (utc(2026, 4, 1, 0, 10), utc(2026, 4, 1, 0, 50)),
            (utc(2026, 4, 2), utc(2026, 4, 3)),
        ]
    ]
    assert UsageEvent.objects.count() == 3 * 6 * 3
    expected = [usage_aggregate(customer=customers[0].__class__(pk=w.customer_id), metric=w.metric, start=w.start,
                                end=w.end) for w in windows]  # fmt: skip
    assert usage_aggregate_many(windows) == expected
    assert any(result for result in expected) and any(not result for result in expected)


def test_invoices_take_the_customers_collection_method_and_start_unpaid_on_both_paths():
    plan = PlanFactory()
    bulk = make_subscription(
        plan=plan, started_at=utc(2026, 3, 1), customer=CustomerFactory(collection_method="charge_automatically")
    )
    single = make_subscription(plan=plan, started_at=utc(2026, 3, 1))
    for subscription in (bulk, single):
        subscription_bill_due(subscription_id=subscription.pk, now=utc(2026, 3, 1))
    outcome = billing_chunk_bill(subscription_ids=[bulk.pk], now=utc(2026, 4, 1))
    [one] = subscription_bill_due(subscription_id=single.pk, now=utc(2026, 4, 1))

    bulk_invoice = Invoice.objects.get(pk=outcome.invoice_ids[0])
    assert (bulk_invoice.collection_method, bulk_invoice.amount_paid, bulk_invoice.amount_due) == (
        "charge_automatically",
        Money("0.00", "USD"),
        bulk_invoice.total,
    )
    assert (one.collection_method, one.amount_paid) == ("send_invoice", Money("0.00", "USD"))


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the bulk path writes with COPY on PostgreSQL only")
def test_the_bulk_path_sends_as_many_statements_for_six_invoices_as_for_two():
    plan = PlanFactory()
    few = [make_subscription(plan=plan, started_at=utc(2026, 3, 1)) for _ in range(2)]
    many = [make_subscription(plan=plan, started_at=utc(2026, 3, 1)) for _ in range(6)]
    for subscription in few + many:
        subscription_bill_due(subscription_id=subscription.pk, now=utc(2026, 3, 1))

    with CaptureQueriesContext(connection) as small:
        billing_chunk_bill(subscription_ids=[s.pk for s in few], now=utc(2026, 4, 1))
    with CaptureQueriesContext(connection) as large:
        outcome = billing_chunk_bill(subscription_ids=[s.pk for s in many], now=utc(2026, 4, 1))

    assert len(outcome.invoice_ids) == 6
    assert len(large.captured_queries) == len(small.captured_queries)
