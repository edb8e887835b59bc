from decimal import Decimal

import pytest
from django.test import override_settings
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import bill_due_subscriptions, subscription_bill_due, subscription_start
from apps.catalog.models import Price
from apps.catalog.tests.factories import PlanFactory
from apps.core import clock
from apps.invoices.constants import BillingRunStatus, InvoiceStatus
from apps.invoices.models import Invoice
from apps.invoices.signals import invoices_finalized
from apps.subscriptions.periods import utc
from apps.subscriptions.services import subscription_create
from apps.subscriptions.tests.factories import make_subscription

pytestmark = pytest.mark.django_db


def _invoices(subscription):
    return list(Invoice.objects.filter(subscription=subscription).order_by("period_start_at").prefetch_related("lines"))


def test_subscription_started_on_31_january_bills_periods_ending_29_february_and_31_march():
    plan = PlanFactory(prices=[Money("99.00", "USD")])
    subscription = make_subscription(plan=plan, quantity=3, started_at=utc(2024, 1, 31, 10))

    run = bill_due_subscriptions(now=utc(2024, 3, 1))

    assert (run.due_count, run.invoiced_count, run.failed_count) == (1, 2, 0)
    first, second = _invoices(subscription)
    assert (first.period_start_at, first.period_end_at) == (utc(2024, 1, 31, 10), utc(2024, 2, 29, 10))
    assert (second.period_start_at, second.period_end_at) == (utc(2024, 2, 29, 10), utc(2024, 3, 31, 10))
    for invoice in (first, second):
        assert invoice.status == InvoiceStatus.OPEN
        assert invoice.total == Money("297.00", "USD")
        [line] = invoice.lines.all()
        assert (line.quantity, line.unit_amount, line.amount) == (
            Decimal(3),
            Money("99", "USD"),
            Money("297.00", "USD"),
        )
        assert (line.period_start_at, line.period_end_at) == (invoice.period_start_at, invoice.period_end_at)
    subscription.refresh_from_db()
    assert (subscription.current_period_start_at, subscription.current_period_end_at) == (
        utc(2024, 2, 29, 10),
        utc(2024, 3, 31, 10),
    )
    assert subscription.next_billing_at == utc(2024, 3, 31, 10)

    # The third period begins exactly at its start (half-open periods), not a second before.
    assert bill_due_subscriptions(now=utc(2024, 3, 31, 9, 59, 59)).invoiced_count == 0
    assert bill_due_subscriptions(now=utc(2024, 3, 31, 10)).invoiced_count == 1
    assert _invoices(subscription)[-1].period_end_at == utc(2024, 4, 30, 10)


def test_running_billing_twice_creates_exactly_one_invoice_per_period():
    subscriptions = [make_subscription(started_at=utc(2026, 1, day)) for day in (1, 15, 28)]
    first = bill_due_subscriptions(now=utc(2026, 3, 1))
    second = bill_due_subscriptions(now=utc(2026, 3, 1))

    # 1 Jan: periods from 1 Jan, 1 Feb and 1 Mar (begun at the run's instant); 15 and 28 Jan: two each.
    assert first.invoiced_count == 3 + 2 + 2
    assert (second.due_count, second.invoiced_count) == (0, 0)
    for subscription, expected in zip(subscriptions, (3, 2, 2), strict=True):
        starts = [invoice.period_start_at for invoice in _invoices(subscription)]
        assert len(starts) == len(set(starts)) == expected
    assert Invoice.objects.count() == 7


def test_nothing_is_billed_before_the_subscription_starts():
    make_subscription(started_at=utc(2026, 6, 1))
    run = bill_due_subscriptions(now=utc(2026, 5, 31, 23, 59))
    assert (run.due_count, run.invoiced_count) == (0, 0)
    assert Invoice.objects.count() == 0


def test_unit_prices_with_many_decimals_are_rounded_once_per_line():
    plan = PlanFactory(prices=[Money("0.333333", "USD")])
    subscription = make_subscription(plan=plan, quantity=3, started_at=utc(2026, 1, 1))
    bill_due_subscriptions(now=utc(2026, 1, 1))
    [invoice] = _invoices(subscription)
    assert invoice.lines.get().amount == Money("1.00", "USD")  # 0.999999 rounded once, half up
    assert invoice.total == Money("1.00", "USD")


def test_zero_decimal_currency_bills_whole_yen():
    customer = CustomerFactory(currency="JPY", country="JP")
    plan = PlanFactory(prices=[Money("1234.5", "JPY")])
    subscription = make_subscription(customer=customer, plan=plan, started_at=utc(2026, 1, 1))
    bill_due_subscriptions(now=utc(2026, 1, 1))
    assert _invoices(subscription)[0].total == Money("1235", "JPY")


def test_a_failing_subscription_is_recorded_and_the_others_are_billed():
    healthy = make_subscription(started_at=utc(2026, 1, 1))
    broken = make_subscription(started_at=utc(2026, 1, 1))
    Price.objects.filter(charge__plan_version__plan=broken.plan).delete()  # its price disappeared after it was sold

    run = bill_due_subscriptions(now=utc(2026, 1, 2))

    assert run.status == BillingRunStatus.COMPLETED_WITH_ERRORS
    assert (run.due_count, run.invoiced_count, run.failed_count) == (2, 1, 1)
    assert run.errors == [
        {
            "subscription": broken.pk,
            "error": f"ApplicationError: {broken.plan.name} v1: charge 'Subscription fee' has no price in USD.",
        }
    ]
    assert len(_invoices(healthy)) == 1
    assert _invoices(broken) == []
    broken.refresh_from_db()
    assert broken.next_billing_at == utc(2026, 1, 1)  # untouched: billed by the next run once fixed


@override_settings(INVOICE_DRAFT_GRACE_HOURS=24)
def test_drafts_wait_for_review_then_the_billing_run_finalizes_them():
    subscription = make_subscription(started_at=utc(2026, 1, 1))
    run = bill_due_subscriptions(now=utc(2026, 1, 1, 6))
    [invoice] = _invoices(subscription)
    assert (invoice.status, invoice.number, run.finalized_count) == (InvoiceStatus.DRAFT, None, 0)
    assert invoice.auto_finalize_at == utc(2026, 1, 2, 6)

    assert bill_due_subscriptions(now=utc(2026, 1, 2, 5)).finalized_count == 0
    run = bill_due_subscriptions(now=utc(2026, 1, 2, 6))
    invoice.refresh_from_db()
    assert (invoice.status, invoice.number, run.finalized_count) == (InvoiceStatus.OPEN, "INV-2026-000001", 1)
    assert invoice.issued_at == utc(2026, 1, 2, 6)


def test_subscription_bill_due_catches_up_every_missed_period():
    subscription = make_subscription(started_at=utc(2025, 11, 30))
    invoices = subscription_bill_due(subscription_id=subscription.pk, now=utc(2026, 2, 1))
    assert [(i.period_start_at, i.period_end_at) for i in invoices] == [
        (utc(2025, 11, 30), utc(2025, 12, 30)),
        (utc(2025, 12, 30), utc(2026, 1, 30)),
        (utc(2026, 1, 30), utc(2026, 2, 28)),
    ]
    assert [i.number for i in invoices] == ["INV-2026-000001", "INV-2026-000002", "INV-2026-000003"]


def test_billing_run_uses_the_project_clock_by_default():
    make_subscription(started_at=utc(2026, 1, 1))
    with clock.frozen_at(utc(2026, 2, 1)):
        run = bill_due_subscriptions()
    assert run.as_of == utc(2026, 2, 1)
    assert run.invoiced_count == 2


def test_finalizing_schedules_the_pdf_after_commit(django_capture_on_commit_callbacks):
    make_subscription(started_at=utc(2026, 1, 1))
    with django_capture_on_commit_callbacks() as callbacks:
        bill_due_subscriptions(now=utc(2026, 1, 1))
    # One task renders the chunk's bills; one signal tells payment collection about the chunk; the
    # run's end is announced (the reports refresh on it).
    assert [callback.__qualname__.split(".")[0] for callback in callbacks] == [
        "invoices_finalized_send_on_commit",
        "_bill_chunk",
        "billing_run_complete",
    ]


def test_finalizing_one_invoice_schedules_its_pdf_after_commit(django_capture_on_commit_callbacks):
    subscription = subscription_create(
        customer=CustomerFactory(), plan=PlanFactory(), started_at=utc(2025, 12, 18), trial_days=14
    )
    with django_capture_on_commit_callbacks() as callbacks:
        bill_due_subscriptions(now=utc(2026, 1, 1))
    assert Invoice.objects.filter(subscription=subscription).count() == 1  # billed one by one (trial end)
    assert [callback.__qualname__.split(".")[0] for callback in callbacks] == [
        "invoice_finalize",
        "invoices_finalized_send_on_commit",
        "billing_run_complete",
    ]


def test_every_finalization_path_sends_invoices_finalized_after_commit(django_capture_on_commit_callbacks):
    received: list[list[int]] = []

    def receiver(sender, invoice_ids, **kwargs):
        received.append(list(invoice_ids))

    invoices_finalized.connect(receiver, dispatch_uid="test-invoices-finalized")
    try:
        bulk = [make_subscription(started_at=utc(2026, 1, 1)) for _ in range(2)]
        one_by_one = subscription_create(
            customer=CustomerFactory(), plan=PlanFactory(), started_at=utc(2025, 12, 18), trial_days=14
        )
        with django_capture_on_commit_callbacks(execute=True):
            bill_due_subscriptions(now=utc(2026, 1, 1))
    finally:
        invoices_finalized.disconnect(dispatch_uid="test-invoices-finalized")
    bulk_ids = sorted(Invoice.objects.filter(subscription__in=bulk).values_list("pk", flat=True))
    single_id = Invoice.objects.get(subscription=one_by_one).pk
    assert len(bulk_ids) == 2
    assert sorted(received) == sorted([bulk_ids, [single_id]])


def test_subscription_start_creates_the_subscription_with_its_first_invoice():
    customer = CustomerFactory(currency="EUR")
    subscription = subscription_start(
        customer=customer, plan=PlanFactory(), quantity=2, started_at=utc(2026, 3, 31), now=utc(2026, 3, 31, 0, 5)
    )
    [invoice] = _invoices(subscription)
    assert (invoice.status, invoice.total, invoice.period_end_at) == (
        InvoiceStatus.OPEN,
        Money("90.00", "EUR"),
        utc(2026, 4, 30),
    )
    assert subscription.next_billing_at == utc(2026, 4, 30)


def test_subscription_start_in_the_future_bills_nothing_yet():
    subscription = subscription_start(
        customer=CustomerFactory(), plan=PlanFactory(), started_at=utc(2026, 6, 1), now=utc(2026, 5, 1)
    )
    assert _invoices(subscription) == []


def test_subscription_started_now_is_invoiced_now():
    """No explicit times: the start and the billing moment are the same clock reading."""
    with clock.frozen_at(utc(2026, 5, 17, 13, 45)):
        subscription = subscription_start(customer=CustomerFactory(), plan=PlanFactory())
    [invoice] = _invoices(subscription)
    assert (invoice.period_start_at, invoice.period_end_at) == (utc(2026, 5, 17, 13, 45), utc(2026, 6, 17, 13, 45))
    subscription = subscription_start(customer=CustomerFactory(), plan=PlanFactory())  # wall clock
    assert len(_invoices(subscription)) == 1
