"""Exactly-once billing and gapless numbering under real concurrency (PostgreSQL row locks)."""

import random

import pytest
from django.db import connection
from django.test import override_settings

from apps.billing.services import bill_due_subscriptions
from apps.catalog.tests.factories import PlanFactory
from apps.core.errors import InvalidTransition
from apps.core.tests.concurrency import run_in_threads
from apps.invoices.constants import InvoiceStatus
from apps.invoices.models import Invoice
from apps.invoices.services import invoice_finalize
from apps.subscriptions.periods import utc
from apps.subscriptions.tests.factories import make_subscription

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row-lock concurrency is a PostgreSQL property"),
]


def _assert_gapless(numbers: list[str], year: int) -> None:
    assert sorted(numbers) == [f"INV-{year}-{n:06d}" for n in range(1, len(numbers) + 1)]


def test_two_billing_runs_at_once_bill_each_period_exactly_once():
    plan = PlanFactory()
    subscriptions = [make_subscription(plan=plan, started_at=utc(2026, 1, 1 + i % 28, i % 24)) for i in range(40)]

    runs = run_in_threads(lambda _: bill_due_subscriptions(now=utc(2026, 3, 1)), count=3)

    invoices = Invoice.objects.all()
    # Two periods each by 1 Mar; a third only for the subscription whose anchor is exactly 1 Jan 00:00.
    expected = sum(3 if s.started_at.day == 1 and s.started_at.hour == 0 else 2 for s in subscriptions)
    assert [error for run in runs for error in run.errors] == []
    assert invoices.count() == expected
    assert sum(run.invoiced_count for run in runs) == expected
    pairs = list(invoices.values_list("subscription_id", "period_start_at"))
    assert len(pairs) == len(set(pairs))
    _assert_gapless(list(invoices.values_list("number", flat=True)), 2026)


@override_settings(INVOICE_DRAFT_GRACE_HOURS=48)
def test_concurrent_finalization_gives_gapless_unique_numbers():
    plan = PlanFactory()
    for i in range(30):
        make_subscription(plan=plan, started_at=utc(2026, 1, 1 + i % 28))
    bill_due_subscriptions(now=utc(2026, 1, 28, 23))
    draft_ids = list(Invoice.objects.filter(status=InvoiceStatus.DRAFT).values_list("id", flat=True))
    assert len(draft_ids) == 30

    def finalize_all(index: int) -> int:
        order = draft_ids[:]
        random.Random(index).shuffle(order)
        done = 0
        for invoice_id in order:
            try:
                invoice_finalize(invoice_id=invoice_id, now=utc(2026, 1, 29))
                done += 1
            except InvalidTransition:
                pass  # another worker finalized it first
        return done

    finalized = run_in_threads(finalize_all, count=4)

    assert sum(finalized) == 30
    _assert_gapless(list(Invoice.objects.values_list("number", flat=True)), 2026)
