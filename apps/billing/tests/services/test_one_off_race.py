"""A pending one-off charge is billed once when billing runs race (PostgreSQL row locks)."""

import pytest
from django.db import connection
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import bill_due_subscriptions, subscription_bill_next_period
from apps.billing.services.one_off import OneOffCharge, invoice_item_create, invoice_item_update
from apps.catalog.tests.factories import PlanFactory
from apps.core.errors import NotEditable
from apps.core.tests.concurrency import run_in_threads
from apps.invoices.constants import InvoiceLineKind
from apps.invoices.models import Invoice, InvoiceItem, InvoiceLine
from apps.subscriptions.periods import utc
from apps.subscriptions.tests.factories import make_subscription

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row-lock concurrency is a PostgreSQL property"),
]


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.INVOICE_DRAFT_GRACE_HOURS = 0
    settings.INVOICE_GROUPING = "per_subscription"


def _customer_with_two_subscriptions():
    customer = CustomerFactory(currency="USD")
    plan = PlanFactory(prices=[Money("10.00", "USD")])
    subscriptions = [make_subscription(customer=customer, plan=plan, started_at=utc(2026, 1, 1)) for _ in range(2)]
    bill_due_subscriptions(now=utc(2026, 1, 1))
    item = invoice_item_create(
        customer_id=customer.pk, now=utc(2026, 1, 5),
        charge=OneOffCharge(quantity=1, unit_amount="500.00", description="Setup fee"),
    )  # fmt: skip
    return customer, subscriptions, item


def test_two_subscriptions_of_the_customer_billed_at_once_take_the_item_once():
    customer, subscriptions, item = _customer_with_two_subscriptions()

    invoices = run_in_threads(
        lambda index: subscription_bill_next_period(subscription_id=subscriptions[index].pk, now=utc(2026, 2, 1)),
        count=2,
    )

    assert all(invoice is not None for invoice in invoices)
    lines = InvoiceLine.objects.filter(kind=InvoiceLineKind.ONE_OFF)
    assert [(line.description, line.amount) for line in lines] == [("Setup fee", Money("500.00", "USD"))]
    item.refresh_from_db()
    assert item.invoice_id == lines.get().invoice_id
    totals = sorted(Invoice.objects.filter(period_start_at=utc(2026, 2, 1)).values_list("total", flat=True))
    assert [str(total) for total in totals] == ["10.0000", "510.0000"]


def test_three_billing_runs_at_once_bill_the_item_once():
    customer, subscriptions, item = _customer_with_two_subscriptions()

    runs = run_in_threads(lambda _: bill_due_subscriptions(now=utc(2026, 2, 1)), count=3)

    assert [error for run in runs for error in run.errors] == []
    assert sum(run.invoiced_count for run in runs) == 2
    assert InvoiceLine.objects.filter(kind=InvoiceLineKind.ONE_OFF).count() == 1
    item.refresh_from_db()
    assert item.invoice_id is not None


def test_an_edit_racing_the_run_waits_and_is_refused_once_billed():
    customer, subscriptions, item = _customer_with_two_subscriptions()

    def work(index: int):
        if index == 0:
            return bill_due_subscriptions(now=utc(2026, 2, 1))
        try:
            invoice_item_update(item_id=item.pk, changes={"unit_amount": "600.00"})
        except NotEditable:
            return "refused"
        return "changed"

    _, outcome = run_in_threads(work, count=2)

    billed = InvoiceLine.objects.get(kind=InvoiceLineKind.ONE_OFF)
    item = InvoiceItem.objects.get(pk=item.pk)
    # Either the edit came first and the run billed the new price, or the run came first and the edit
    # was refused: never a billed item with a price its invoice does not show.
    assert billed.amount == item.amount
    assert outcome in {"refused", "changed"}
    assert (outcome == "changed") == (billed.amount == Money("600.00", "USD"))
