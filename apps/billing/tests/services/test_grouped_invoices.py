"""Invoices grouped per customer: one invoice for all of a customer's subscriptions renewing on the
same date (customer setting, or the INVOICE_GROUPING default), exactly once and to the cent."""

import io
import threading
import time
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.test import override_settings
from django.urls import reverse
from djmoney.money import Money
from pypdf import PdfReader

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import bill_due_subscriptions, subscription_bill_due
from apps.billing.services.billing import _chunks
from apps.catalog.models import Price
from apps.catalog.tests.factories import CouponFactory, PlanFactory
from apps.core.tests.concurrency import run_in_threads
from apps.invoices.constants import BillingRunStatus, InvoiceStatus
from apps.invoices.models import Invoice, InvoicedPeriod, InvoiceItem, TaxRate
from apps.invoices.selectors import subscription_invoices, subscription_period_invoices
from apps.invoices.services.pdf import invoice_render_pdf_bytes
from apps.subscriptions.models import Subscription
from apps.subscriptions.periods import utc
from apps.subscriptions.services import coupon_redeem
from apps.subscriptions.tests.factories import make_subscription
from apps.usage.services import usage_billing_lock

pytestmark = pytest.mark.django_db

APRIL, MAY, JUNE = utc(2026, 4, 1), utc(2026, 5, 1), utc(2026, 6, 1)


def _signed_up(customer, plan, started_at):
    """A subscription with its first period invoiced at sign-up (always on its own invoice)."""
    subscription = make_subscription(customer=customer, plan=plan, started_at=started_at)
    subscription_bill_due(subscription_id=subscription.pk, now=started_at)
    return subscription


def _customer_with_two(grouping: str, *, prices=("100.00", "30.00"), **fields):
    customer = CustomerFactory(currency="USD", invoice_grouping=grouping, **fields)
    subscriptions = [_signed_up(customer, PlanFactory(prices=[Money(price, "USD")]), APRIL) for price in prices]
    return customer, subscriptions


def _cycle_invoices(customer, since=MAY):
    return Invoice.objects.filter(customer=customer, period_start_at__gte=since).order_by("id")


def test_a_grouping_customer_gets_one_invoice_for_the_subscriptions_renewing_that_day():
    TaxRate.objects.create(name="VAT", percentage=Decimal("20"), country="GB")
    grouped, (fee, addon) = _customer_with_two("per_customer", country="GB")
    single, _ = _customer_with_two("per_subscription", country="GB")

    run = bill_due_subscriptions(now=MAY)

    [invoice] = _cycle_invoices(grouped)
    assert (invoice.subscription, invoice.status, invoice.number is not None) == (None, InvoiceStatus.OPEN, True)
    assert (invoice.period_start_at, invoice.period_end_at) == (MAY, JUNE)
    assert [(line.subscription_id, line.amount) for line in invoice.lines.order_by("position")] == [
        (fee.pk, Money("100.00", "USD")),
        (addon.pk, Money("30.00", "USD")),
    ]
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (
        Money("130.00", "USD"), Money("26.00", "USD"), Money("156.00", "USD"),
    )  # fmt: skip
    assert list(invoice.invoiced_periods.values_list("subscription_id", "period_start_at", "period_end_at")) == [
        (fee.pk, MAY, JUNE),
        (addon.pk, MAY, JUNE),
    ]
    assert _cycle_invoices(single).count() == 2  # the other customer keeps one invoice per subscription
    assert (run.status, run.due_count, run.invoiced_count, run.skipped_count) == (BillingRunStatus.SUCCEEDED, 4, 3, 0)
    for subscription in (fee, addon):
        subscription.refresh_from_db()
        assert (subscription.current_period_start_at, subscription.next_billing_at) == (MAY, JUNE)
        assert list(subscription_period_invoices(subscription_id=subscription.pk, period_start_at=MAY)) == [invoice]
        assert invoice in subscription_invoices(subscription_id=subscription.pk)

    again = bill_due_subscriptions(now=MAY)
    assert (again.due_count, again.invoiced_count) == (0, 0)
    assert _cycle_invoices(grouped).count() == 1


@override_settings(INVOICE_GROUPING="per_customer")
def test_the_default_groups_and_a_customer_can_opt_out():
    by_default, _ = _customer_with_two("")
    opted_out, _ = _customer_with_two("per_subscription")

    bill_due_subscriptions(now=MAY)

    assert _cycle_invoices(by_default).count() == 1
    assert _cycle_invoices(opted_out).count() == 2


def test_subscriptions_renewing_on_different_days_are_not_grouped_and_a_late_run_catches_up_by_day():
    customer = CustomerFactory(currency="USD", invoice_grouping="per_customer")
    plan = PlanFactory(prices=[Money("10.00", "USD")])
    early, late, third = (_signed_up(customer, plan, utc(2026, 4, day)) for day in (1, 15, 15))

    bill_due_subscriptions(now=utc(2026, 6, 20))  # a run weeks late: 1 May, 15 May, 1 Jun and 15 Jun are due

    invoices = list(_cycle_invoices(customer).order_by("period_start_at"))
    assert [(i.period_start_at, i.subscription_id) for i in invoices] == [
        (utc(2026, 5, 1), early.pk),
        (utc(2026, 5, 15), None),
        (utc(2026, 6, 1), early.pk),
        (utc(2026, 6, 15), None),
    ]
    for grouped in (invoices[1], invoices[3]):
        assert sorted(grouped.invoiced_periods.values_list("subscription_id", flat=True)) == [late.pk, third.pk]
        assert grouped.total == Money("20.00", "USD")


def test_the_credit_balance_comes_off_the_grouped_invoice_once():
    customer, _ = _customer_with_two("per_customer")
    InvoiceItem.objects.create(
        customer=customer, kind="proration", description="Credit", amount=Money("-120.00", "USD"), created_at=APRIL
    )

    bill_due_subscriptions(now=MAY)

    [invoice] = _cycle_invoices(customer)
    assert invoice.total == Money("10.00", "USD")
    assert invoice.lines.order_by("position").last().subscription_id is None  # the credit is the customer's
    assert not InvoiceItem.objects.filter(invoice=None).exists()


@override_settings(INVOICE_DRAFT_GRACE_HOURS=24)
def test_with_a_review_period_the_grouped_invoice_waits_as_a_draft_then_is_issued():
    customer, _ = _customer_with_two("per_customer")
    bill_due_subscriptions(now=MAY)
    [draft] = _cycle_invoices(customer)
    assert (draft.status, draft.number) == (InvoiceStatus.DRAFT, None)

    bill_due_subscriptions(now=utc(2026, 5, 2))

    draft.refresh_from_db()
    assert draft.status == InvoiceStatus.OPEN and draft.number


def test_a_failing_subscription_is_reported_and_the_customers_other_subscriptions_are_billed():
    customer, (good, bad) = _customer_with_two("per_customer")
    Price.objects.filter(charge__plan_version__plan=bad.plan).delete()  # no price any more

    run = bill_due_subscriptions(now=MAY)

    assert (run.status, run.invoiced_count, run.failed_count) == (BillingRunStatus.COMPLETED_WITH_ERRORS, 1, 1)
    assert run.errors[0]["subscription"] == bad.pk
    [invoice] = _cycle_invoices(customer)
    assert invoice.subscription_id == good.pk  # billed on its own
    bad.refresh_from_db()
    assert bad.next_billing_at == MAY  # still due: the next run bills it once it has a price


def test_a_customer_wide_coupon_keeps_one_invoice_per_subscription_while_it_lasts():
    customer, (fee, addon) = _customer_with_two("per_customer")
    coupon_redeem(coupon=CouponFactory(percent_off=Decimal("10"), duration="once"), customer=customer, now=APRIL)

    bill_due_subscriptions(now=MAY)

    may = list(_cycle_invoices(customer))
    assert [invoice.subscription_id for invoice in may] == [fee.pk, addon.pk]
    assert [invoice.total for invoice in may] == [Money("90.00", "USD"), Money("30.00", "USD")]  # once: 10 % off once

    bill_due_subscriptions(now=JUNE)  # the coupon is used up: grouped again

    [june] = _cycle_invoices(customer, since=JUNE)
    assert (june.subscription_id, june.total) == (None, Money("130.00", "USD"))


def test_a_period_is_billed_once_whether_alone_or_grouped():
    customer, (fee, addon) = _customer_with_two("per_customer")
    alone = _signed_up(CustomerFactory(currency="USD"), PlanFactory(), APRIL)
    bill_due_subscriptions(now=MAY)
    [grouped] = _cycle_invoices(customer)
    [single] = _cycle_invoices(alone.customer)
    assert list(single.invoiced_periods.values_list("subscription_id", "period_start_at")) == [(alone.pk, MAY)]

    for invoice, subscription in [(grouped, fee), (single, fee), (grouped, alone)]:  # a period billed twice
        with pytest.raises(IntegrityError), transaction.atomic():
            InvoicedPeriod.objects.create(
                invoice=invoice, subscription=subscription, period_start_at=MAY, period_end_at=JUNE
            )


def test_a_grouping_customers_subscriptions_stay_in_one_chunk():
    due = [(1, 10), (2, 20), (3, 10), (4, 30), (5, 10), (6, 40)]
    assert _chunks(due, {10}, 2) == [[1, 3, 5], [2, 4], [6]]
    assert _chunks(due, set(), 4) == [[1, 2, 3, 4], [5, 6]]

    customer, _ = _customer_with_two("per_customer", prices=("1.00", "2.00", "3.00"))
    _signed_up(CustomerFactory(currency="USD"), PlanFactory(), APRIL)
    with override_settings(BILLING_RUN_CHUNK_SIZE=1):
        run = bill_due_subscriptions(now=MAY)
    assert (run.chunk_count, run.invoiced_count) == (2, 2)
    [invoice] = _cycle_invoices(customer)
    assert invoice.total == Money("6.00", "USD")


def test_the_bill_heads_each_subscriptions_lines_with_it_and_its_period():
    customer, (fee, addon) = _customer_with_two("per_customer")
    bill_due_subscriptions(now=MAY)
    [invoice] = _cycle_invoices(customer)

    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(invoice_render_pdf_bytes(invoice))).pages)

    fee_heading = f"Subscription #{fee.pk} · 1 May 2026 – 1 Jun 2026"
    addon_heading = f"Subscription #{addon.pk} · 1 May 2026 – 1 Jun 2026"
    assert fee_heading in text and addon_heading in text
    assert text.index(fee_heading) < text.index("100.00") < text.index(addon_heading) < text.index("30.00")


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row-lock concurrency is a PostgreSQL property")
def test_two_runs_at_once_bill_each_grouped_period_once():
    plan = PlanFactory(prices=[Money("5.00", "USD")])
    customers = [CustomerFactory(currency="USD", invoice_grouping="per_customer") for _ in range(6)]
    for n, customer in enumerate(customers):
        for _ in range(1 + n % 3):
            _signed_up(customer, plan, APRIL)

    with override_settings(BILLING_RUN_CHUNK_SIZE=2):
        runs = run_in_threads(lambda _: bill_due_subscriptions(now=MAY), count=3)

    assert [error for run in runs for error in run.errors] == []
    for customer in customers:
        assert _cycle_invoices(customer).count() == 1
    billed = list(InvoicedPeriod.objects.filter(period_start_at=MAY).values_list("subscription_id", flat=True))
    assert len(billed) == len(set(billed)) == 12  # every subscription's May, once


# --- API ------------------------------------------------------------------------------------------


def test_the_api_sets_a_customers_grouping_and_refuses_an_unknown_one(api_client, superuser):
    customer = CustomerFactory(currency="USD")
    api_client.force_authenticate(superuser)
    url = reverse("api:customer-detail", args=[customer.pk])

    refused = api_client.patch(url, {"invoice_grouping": "per_planet", "name": "Changed"})
    assert refused.status_code == 400
    assert list(refused.json()["fields"]) == ["invoice_grouping"]
    customer.refresh_from_db()
    assert (customer.invoice_grouping, customer.name) == ("", customer.name)

    accepted = api_client.patch(url, {"invoice_grouping": "per_customer"})
    assert accepted.status_code == 200, accepted.data
    assert accepted.json()["invoice_grouping"] == "per_customer"
    customer.refresh_from_db()
    assert customer.invoice_grouping == "per_customer"


def test_the_api_shows_a_grouped_invoices_periods_and_finds_it_by_subscription(api_client, superuser):
    customer, (fee, addon) = _customer_with_two("per_customer")
    bill_due_subscriptions(now=MAY)
    [invoice] = _cycle_invoices(customer)
    api_client.force_authenticate(superuser)

    body = api_client.get(reverse("api:invoice-detail", args=[invoice.pk])).json()
    assert body["subscription"] is None
    assert [(p["subscription"], p["period_start_at"][:10]) for p in body["invoiced_periods"]] == [
        (fee.pk, "2026-05-01"),
        (addon.pk, "2026-05-01"),
    ]
    assert [line["subscription"] for line in body["lines"]] == [fee.pk, addon.pk]

    found = api_client.get(reverse("api:invoice-list"), {"subscription": addon.pk}).json()
    assert sorted(row["id"] for row in found["results"]) == sorted(
        [invoice.pk, *Invoice.objects.filter(subscription=addon).values_list("id", flat=True)]
    )
    assert len(found["results"]) == 2  # its sign-up invoice and the grouped one
    refused = api_client.get(reverse("api:invoice-list"), {"subscription": "5.9"})
    assert refused.status_code == 400 and "subscription" in refused.json()["fields"]


def test_the_admin_links_a_grouped_invoice_to_its_subscriptions_and_back(client, superuser):
    customer, (fee, addon) = _customer_with_two("per_customer")
    bill_due_subscriptions(now=MAY)
    [invoice] = _cycle_invoices(customer)
    client.force_login(superuser)

    page = client.get(reverse("admin:invoices_invoice_change", args=[invoice.pk])).content.decode()
    for subscription in (fee, addon):
        assert reverse("admin:subscriptions_subscription_change", args=[subscription.pk]) in page
    assert "one invoice for the customer&#x27;s subscriptions renewing that day" in page

    page = client.get(reverse("admin:subscriptions_subscription_change", args=[addon.pk])).content.decode()
    assert "billed periods" in page.lower()
    assert reverse("admin:invoices_invoice_change", args=[invoice.pk]) in page


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row-lock concurrency is a PostgreSQL property")
def test_a_run_meeting_another_in_the_middle_of_a_customer_waits_and_never_splits_the_group():
    customer, (fee, addon) = _customer_with_two("per_customer")
    holding = threading.Event()

    def other_run_in_the_middle(index: int):
        if index == 0:  # another run has taken the customer and locked its first subscription
            with transaction.atomic():
                usage_billing_lock(customer_id=customer.pk)
                list(Subscription.objects.select_for_update().filter(pk=fee.pk))
                holding.set()
                time.sleep(1)  # ... and then fails (rolls back), leaving both subscriptions due
            return None
        assert holding.wait(10)
        return bill_due_subscriptions(now=MAY)

    _, run = run_in_threads(other_run_in_the_middle, count=2)

    assert (run.invoiced_count, run.skipped_count) == (1, 0)
    [invoice] = _cycle_invoices(customer)
    assert sorted(invoice.invoiced_periods.values_list("subscription_id", flat=True)) == [fee.pk, addon.pk]
