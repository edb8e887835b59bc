"""Progressive billing under concurrency (PostgreSQL: real concurrent transactions). Evaluations at
once, while usage keeps arriving, issue one interim invoice per crossing, and the invoices of the
period still add up to the period billed at once."""

from decimal import Decimal

import pytest
from django.db import connection
from djmoney.money import Money

from apps.billing.services import bill_due_subscriptions
from apps.billing.services.progressive import subscription_progressive_evaluate
from apps.billing.tests.services.progressive_usage import send_calls
from apps.core.tests.concurrency import run_in_threads
from apps.invoices.constants import BillingReason
from apps.invoices.models import Invoice, ProgressiveCrossing
from apps.subscriptions.periods import utc

from .test_progressive_billing import _plan, _subscribe

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent transactions need a real database server"),
]

D = Decimal


@pytest.fixture(autouse=True)
def metrics():  # the module's own fixture is not imported with its helpers
    from apps.catalog.services import billable_metric_create

    billable_metric_create(code="api_calls", name="API calls", aggregation="sum", field_name="calls")


def test_evaluations_at_once_issue_one_interim_invoice_per_crossing():
    subscription = _subscribe(_plan())
    send_calls(subscription, 600, day=10)  # 600.00 ≥ 500.00

    results = run_in_threads(
        lambda index: subscription_progressive_evaluate(subscription_id=subscription.pk, now=utc(2026, 4, 10, 1)), 6
    )

    issued = [invoice for invoice in results if invoice is not None]
    assert len(issued) == 1
    interims = Invoice.objects.filter(subscription=subscription, billing_reason=BillingReason.SUBSCRIPTION_THRESHOLD)
    assert interims.count() == 1
    assert interims.get().total == Money("600.00", "USD")
    assert ProgressiveCrossing.objects.count() == 1


def test_evaluations_racing_ingestion_bill_each_crossing_once_and_add_up_to_the_period():
    subscription = _subscribe(_plan())
    days = list(range(2, 22))  # 20 batches of 100 calls: 2,000 calls in all

    def work(index: int) -> list:
        if index == 0:
            for day in days:
                send_calls(subscription, 100, day=day, key=str(day))
            return []
        issued = []
        for _ in days:
            invoice = subscription_progressive_evaluate(subscription_id=subscription.pk, now=utc(2026, 4, 22))
            if invoice is not None:
                issued.append(invoice.pk)
        return issued

    results = run_in_threads(work, 4)
    last = subscription_progressive_evaluate(subscription_id=subscription.pk, now=utc(2026, 4, 22))
    issued = [pk for result in results for pk in result] + ([last.pk] if last is not None else [])

    crossings = list(ProgressiveCrossing.objects.order_by("threshold"))
    assert len(issued) == len(set(issued)) == len(crossings)
    thresholds = [crossing.threshold for crossing in crossings]
    assert thresholds == sorted(set(thresholds))  # every crossing once, in increasing order
    # 2,000 calls: 800 × 1.00 + 1,200 × 0.50 = 1,400.00 → the highest threshold reached is 1,000.00.
    assert thresholds[-1] == D(1000)
    interim_total = sum((Invoice.objects.get(pk=pk).total for pk in issued), Money(0, "USD"))

    bill_due_subscriptions(now=utc(2026, 5, 1, 0, 5))

    final = Invoice.objects.get(subscription=subscription, period_start_at=utc(2026, 5, 1))
    # The period billed at once: 1,400.00 usage + 100.00 May fee.
    assert interim_total + final.total == Money("1500.00", "USD")
