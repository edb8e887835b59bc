"""Usage-only plans and fees billed in arrears; plan and quantity changes, cancel-now and pauses that
close out the usage of the period so far at the prices it was used at (docs/billing-rules.md,
"Billed in arrears" and "Changes inside a period"). Every amount is worked out by hand in comments.

The plans (USD, no tax):
- Metered A: calls at 1.00 per call, storage at 0.10 per GB (usage only, no fee);
- Metered B: calls at 2.00 per call (usage only; it has no storage charge).
March 2026 has 31 days; periods run from the 1st at 00:00 UTC.
"""

from decimal import Decimal

import pytest
from django.urls import reverse

from apps.accounts.services import customer_create, simulated_clock_create
from apps.billing.services import (
    bill_due_subscriptions,
    subscription_cancel_with_credit,
    subscription_change,
    subscription_pause,
    subscription_resume,
    subscription_start,
    subscription_upcoming_invoice,
)
from apps.billing.services.simulated_clocks import simulated_clock_advance
from apps.catalog.constants import SIMPLE_CHARGE_NAME, BillingTiming, ChargeKind, MetricAggregation, PriceModelChoice
from apps.catalog.models import Charge, Plan
from apps.catalog.services import (
    ChargeInput,
    PriceInput,
    TierInput,
    billable_metric_create,
    plan_create,
    product_create,
)
from apps.core import clock
from apps.invoices.models import Invoice, InvoicedPeriod
from apps.subscriptions.models import Subscription, SubscriptionSegment
from apps.subscriptions.periods import utc
from apps.usage.services import usage_events_ingest

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def catalog():
    billable_metric_create(code="calls", name="Calls", aggregation=MetricAggregation.SUM, field_name="n")
    billable_metric_create(code="storage", name="Storage", aggregation=MetricAggregation.SUM, field_name="gb")
    return product_create(code="api", name="API")


def _usage(metric: str, price: str, **kwargs) -> ChargeInput:
    name = {"calls": "Calls", "storage": "Storage"}[metric]
    return ChargeInput(
        name=name, kind=ChargeKind.USAGE, price_model=kwargs.pop("price_model", PriceModelChoice.PER_UNIT),
        metric_code=metric, prices=[PriceInput(currency="USD", amount=D(price), **kwargs)],
    )  # fmt: skip


def _fee(amount: str, timing: str) -> ChargeInput:
    return ChargeInput(
        name=SIMPLE_CHARGE_NAME, price_model=PriceModelChoice.FLAT, billing_timing=timing,
        prices=[PriceInput(currency="USD", amount=D(amount))],
    )  # fmt: skip


def _plan(product, code: str, name: str, *charges: ChargeInput) -> Plan:
    return plan_create(product=product, code=code, name=name, charges=list(charges))


def _metered_a(product) -> Plan:
    return _plan(product, "metered-a", "Metered A", _usage("calls", "1.00"), _usage("storage", "0.10"))


def _metered_b(product) -> Plan:
    return _plan(product, "metered-b", "Metered B", _usage("calls", "2.00"))


def _customer(test_clock=None):
    return customer_create(
        name="Acme", email="billing@acme.example", country="US", currency="USD", external_id="acme",
        test_clock=test_clock,
    )  # fmt: skip


def _send(customer, *events) -> None:
    """(transaction id, moment, metric, amount) each, sent as it happens (a customer on a test clock:
    its clock is moved there first)."""
    for transaction_id, moment, metric, amount in events:
        if customer.test_clock_id is not None:
            simulated_clock_advance(test_clock_id=customer.test_clock_id, to=moment)
        field = "n" if metric == "calls" else "gb"
        result = usage_events_ingest(
            events=[{"transaction_id": transaction_id, "external_customer_id": customer.external_id,
                     "metric_code": metric, "timestamp": moment.isoformat(), "properties": {field: amount}}],
            now=moment,
        )  # fmt: skip
        assert result.rejected == [], result.rejected


def _lines(invoice: Invoice) -> list[tuple]:
    return [
        (line.kind, line.description, line.period_start_at, line.period_end_at, line.quantity, line.amount.amount)
        for line in invoice.lines.order_by("position")
    ]


# --- 1. Usage-only plans and fees billed in arrears -------------------------------------------------


def test_the_api_subscribes_a_customer_to_a_usage_only_plan_without_an_invoice(api_client, superuser, catalog):
    plan = _metered_a(catalog)
    customer = _customer()
    api_client.force_authenticate(superuser)

    with clock.frozen_at(utc(2026, 3, 1)):
        response = api_client.post(reverse("api:subscription-list"), {"customer": customer.pk, "plan": plan.pk})

    assert response.status_code == 201, response.data
    body = response.json()
    assert (body["status"], body["invoices"]) == ("active", [])
    assert (body["current_period_start_at"], body["next_billing_at"]) == (
        "2026-03-01T00:00:00Z",
        "2026-04-01T00:00:00Z",
    )
    assert not Invoice.objects.exists()
    # The first period is recorded as billed (nothing in advance), so it is billed once.
    period = InvoicedPeriod.objects.get()
    assert (period.invoice, period.period_start_at, period.billed_at) == (None, utc(2026, 3, 1), utc(2026, 3, 1))


@pytest.mark.parametrize("on_test_clock", [False, True], ids=["bulk path", "one-by-one path"])
def test_a_usage_only_plan_is_billed_in_arrears_and_a_period_without_usage_makes_no_invoice(catalog, on_test_clock):
    plan = _metered_a(catalog)
    test_clock = simulated_clock_create(name="Metered", frozen_at=utc(2026, 3, 1)) if on_test_clock else None
    customer = _customer(test_clock)
    subscription = subscription_start(customer=customer, plan=plan, now=utc(2026, 3, 1))
    _send(customer, ("m1", utc(2026, 3, 5), "calls", 7), ("m2", utc(2026, 3, 20), "calls", 5))

    # The upcoming invoice bills March's usage so far and names March.
    upcoming = subscription_upcoming_invoice(subscription_id=subscription.pk, now=utc(2026, 3, 10))
    assert [(line.description, line.quantity, line.amount) for line in upcoming.lines] == [
        ("API — Metered A: Calls (usage)", D(7), D("7.00")),
    ]
    assert (upcoming.period_start_at, upcoming.period_end_at) == (utc(2026, 3, 1), utc(2026, 4, 1))

    # 1 Apr: March's 7 + 5 = 12 calls × 1.00 = 12.00, on an invoice naming March.
    run = bill_due_subscriptions(now=utc(2026, 4, 1, 1), test_clock=test_clock)
    assert (run.invoiced_count, run.failed_count, run.errors) == (1, 0, [])
    invoice = Invoice.objects.get()
    assert _lines(invoice) == [
        ("usage", "API — Metered A: Calls (usage)", utc(2026, 3, 1), utc(2026, 4, 1), D(12), D("12.00")),
    ]
    assert (invoice.period_start_at, invoice.period_end_at, invoice.total.amount) == (
        utc(2026, 3, 1), utc(2026, 4, 1), D("12.00"),
    )  # fmt: skip
    subscription.refresh_from_db()
    assert subscription.next_billing_at == utc(2026, 5, 1)

    # 1 May: no usage in April: no invoice, no error; the subscription moves on all the same.
    run = bill_due_subscriptions(now=utc(2026, 5, 1, 1), test_clock=test_clock)
    assert (run.due_count, run.invoiced_count, run.failed_count, run.errors) == (1, 0, 0, [])
    assert Invoice.objects.count() == 1
    subscription.refresh_from_db()
    assert (subscription.current_period_start_at, subscription.next_billing_at) == (utc(2026, 5, 1), utc(2026, 6, 1))
    assert list(
        InvoicedPeriod.objects.filter(subscription=subscription, invoice=None)
        .order_by("period_start_at")
        .values_list("period_start_at", flat=True)
    ) == [utc(2026, 3, 1), utc(2026, 5, 1)]
    # A second run bills nothing twice.
    run = bill_due_subscriptions(now=utc(2026, 5, 1, 2), test_clock=test_clock)
    assert (run.due_count, Invoice.objects.count()) == (0, 1)


@pytest.mark.parametrize("on_test_clock", [False, True], ids=["bulk path", "one-by-one path"])
def test_a_fee_billed_in_arrears_is_billed_with_the_usage_when_the_period_ends(catalog, on_test_clock):
    # 10.00 a month in advance, 30.00 a month in arrears, calls at 0.50.
    plan = _plan(
        catalog, "hybrid", "Hybrid", _fee("10.00", BillingTiming.IN_ADVANCE),
        ChargeInput(name="Support", price_model=PriceModelChoice.FLAT, billing_timing=BillingTiming.IN_ARREARS,
                    prices=[PriceInput(currency="USD", amount=D("30.00"))]),
        _usage("calls", "0.50"),
    )  # fmt: skip
    test_clock = simulated_clock_create(name="Hybrid", frozen_at=utc(2026, 3, 1)) if on_test_clock else None
    customer = _customer(test_clock)
    subscription = subscription_start(customer=customer, plan=plan, now=utc(2026, 3, 1))
    # March's invoice bills only the fee in advance.
    assert [line[-1] for line in _lines(Invoice.objects.get())] == [D("10.00")]
    _send(customer, ("h1", utc(2026, 3, 9), "calls", 10))

    # The upcoming invoice shows the fee in arrears for all of March, the usage so far and April's fee.
    upcoming = subscription_upcoming_invoice(subscription_id=subscription.pk, now=utc(2026, 3, 15))
    assert [(line.description, line.period_start_at, line.amount) for line in upcoming.lines] == [
        ("API — Hybrid: Support (monthly)", utc(2026, 3, 1), D("30.00")),
        ("API — Hybrid: Calls (usage)", utc(2026, 3, 1), D("5.00")),  # 10 × 0.50
        ("API — Hybrid (monthly)", utc(2026, 4, 1), D("10.00")),
    ]
    assert upcoming.total == D("45.00")

    bill_due_subscriptions(now=utc(2026, 4, 1, 1), test_clock=test_clock)
    april = Invoice.objects.get(period_start_at=utc(2026, 4, 1))
    assert _lines(april) == [
        ("recurring", "API — Hybrid: Support (monthly)", utc(2026, 3, 1), utc(2026, 4, 1), D(1), D("30.00")),
        ("usage", "API — Hybrid: Calls (usage)", utc(2026, 3, 1), utc(2026, 4, 1), D(10), D("5.00")),
        ("recurring", "API — Hybrid (monthly)", utc(2026, 4, 1), utc(2026, 5, 1), D(1), D("10.00")),
    ]
    assert april.total.amount == D("45.00")  # 30.00 + 5.00 + 10.00


def test_billing_timing_is_set_and_checked_through_the_catalog_api(api_client, superuser, catalog):
    api_client.force_authenticate(superuser)
    charge = {"name": "Fee", "kind": "recurring", "price_model": "flat", "billing_timing": "in_arrears",
              "prices": [{"currency": "USD", "amount": "30"}]}  # fmt: skip
    body = {"product": catalog.pk, "code": "arrears", "name": "Arrears", "interval": "month", "interval_count": 1}

    response = api_client.post(reverse("api:plan-list"), {**body, "charges": [charge]}, format="json")

    assert response.status_code == 201, response.data
    assert response.json()["current_version"]["charges"][0]["billing_timing"] == "in_arrears"
    assert Charge.objects.get().billing_timing == BillingTiming.IN_ARREARS

    bad = {**charge, "billing_timing": "whenever"}
    response = api_client.post(reverse("api:plan-list"), {**body, "code": "bad", "charges": [bad]}, format="json")
    assert response.status_code == 400
    assert "billing_timing" in str(response.json()["fields"])
    assert Plan.objects.count() == 1


# --- 2. Changes inside a period close out the usage so far ------------------------------------------


def test_an_upgrade_bills_the_usage_before_it_at_the_old_price_and_keeps_a_metric_the_new_plan_lacks(catalog):
    metered_a, metered_b = _metered_a(catalog), _metered_b(catalog)
    customer = _customer()
    subscription = subscription_start(customer=customer, plan=metered_a, now=utc(2026, 3, 1))
    _send(customer, ("c1", utc(2026, 3, 5), "calls", 10), ("s1", utc(2026, 3, 6), "storage", 30))
    change = subscription_change(subscription_id=subscription.pk, plan=metered_b, now=utc(2026, 3, 16))
    assert change.preview.lines == []  # no fees: nothing to prorate
    _send(customer, ("c2", utc(2026, 3, 20), "calls", 10))

    bill_due_subscriptions(now=utc(2026, 4, 1, 1))

    # Before the change, on A: 10 calls × 1.00 = 10.00 and 30 GB × 0.10 = 3.00 (B has no storage
    # charge: still billed, at A's price). After, on B: 10 calls × 2.00 = 20.00. Total 33.00 (all
    # 20 calls at B's price would be 40.00, and the storage dropped).
    invoice = Invoice.objects.get()
    assert _lines(invoice) == [
        ("usage", "API — Metered A: Calls (usage)", utc(2026, 3, 1), utc(2026, 3, 16), D(10), D("10.00")),
        ("usage", "API — Metered A: Storage (usage)", utc(2026, 3, 1), utc(2026, 3, 16), D(30), D("3.00")),
        ("usage", "API — Metered B: Calls (usage)", utc(2026, 3, 16), utc(2026, 4, 1), D(10), D("20.00")),
    ]
    assert invoice.total.amount == D("33.00")
    assert SubscriptionSegment.objects.get().billed_at == utc(2026, 4, 1, 1)


def test_a_downgrade_applies_the_old_tiers_to_the_usage_before_it(catalog):
    # Tiered: the first 10 calls free, then 1.00 each. Flat: 0.25 per call.
    tiered = _plan(
        catalog, "tiered", "Tiered",
        _usage("calls", "0", price_model=PriceModelChoice.GRADUATED,
               tiers=[TierInput(up_to=D(10), unit_amount=D(0), flat_amount=D(0)),
                      TierInput(up_to=None, unit_amount=D(1), flat_amount=D(0))]),
    )  # fmt: skip
    cheap = _plan(catalog, "cheap", "Cheap", _usage("calls", "0.25"))
    customer = _customer()
    subscription = subscription_start(customer=customer, plan=tiered, now=utc(2026, 3, 1))
    _send(customer, ("c1", utc(2026, 3, 3), "calls", 15))
    subscription_change(subscription_id=subscription.pk, plan=cheap, now=utc(2026, 3, 10))
    _send(customer, ("c2", utc(2026, 3, 12), "calls", 8))

    bill_due_subscriptions(now=utc(2026, 4, 1, 1))

    # Before: 15 calls on Tiered's tiers alone: 10 free + 5 × 1.00 = 5.00. After: 8 × 0.25 = 2.00.
    # Total 7.00 (all 23 calls at Cheap's price would be 5.75).
    invoice = Invoice.objects.get()
    assert [(line[1], line[4], line[5]) for line in _lines(invoice)] == [
        ("API — Tiered: Calls (usage)", D(15), D("5.00")),
        ("API — Cheap: Calls (usage)", D(8), D("2.00")),
    ]
    assert invoice.total.amount == D("7.00")


def test_fees_in_arrears_are_billed_per_stretch_across_a_change(catalog):
    small = _plan(catalog, "small", "Small", _fee("31.00", BillingTiming.IN_ARREARS))
    large = _plan(catalog, "large", "Large", _fee("62.00", BillingTiming.IN_ARREARS))
    customer = _customer()
    subscription = subscription_start(customer=customer, plan=small, now=utc(2026, 3, 1))
    assert not Invoice.objects.exists()
    change = subscription_change(subscription_id=subscription.pk, plan=large, now=utc(2026, 3, 11))
    assert change.preview.lines == []  # fees in arrears are not prorated: each stretch bills its share

    bill_due_subscriptions(now=utc(2026, 4, 1, 1))

    # Small for 10 of March's 31 days: 31.00 × 10/31 = 10.00; Large for 21: 62.00 × 21/31 = 42.00.
    invoice = Invoice.objects.get()
    assert [(line[1], line[2], line[3], line[5]) for line in _lines(invoice)] == [
        ("API — Small (monthly, partial period)", utc(2026, 3, 1), utc(2026, 3, 11), D("10.00")),
        ("API — Large (monthly, partial period)", utc(2026, 3, 11), utc(2026, 4, 1), D("42.00")),
    ]
    assert invoice.total.amount == D("52.00")


def test_cancel_now_bills_each_stretch_at_its_own_price_on_the_final_invoice(catalog):
    metered_a, metered_b = _metered_a(catalog), _metered_b(catalog)
    customer = _customer()
    subscription = subscription_start(customer=customer, plan=metered_a, now=utc(2026, 3, 1))
    _send(customer, ("c1", utc(2026, 3, 5), "calls", 10))
    subscription_change(subscription_id=subscription.pk, plan=metered_b, now=utc(2026, 3, 16))
    _send(customer, ("c2", utc(2026, 3, 20), "calls", 10), ("c3", utc(2026, 3, 23), "calls", 3))

    subscription_cancel_with_credit(subscription_id=subscription.pk, prorate=True, now=utc(2026, 3, 24))

    # A: 10 × 1.00 = 10.00 for [1 Mar, 16 Mar); B: (10 + 3) × 2.00 = 26.00 for [16 Mar, 24 Mar).
    final = Invoice.objects.get()
    assert final.billing_reason == "subscription_update"
    assert [(line[1], line[2], line[3], line[5]) for line in _lines(final)] == [
        ("API — Metered A: Calls (usage)", utc(2026, 3, 1), utc(2026, 3, 16), D("10.00")),
        ("API — Metered B: Calls (usage)", utc(2026, 3, 16), utc(2026, 3, 24), D("26.00")),
    ]
    assert final.total.amount == D("36.00")
    # Nothing more is billed later.
    bill_due_subscriptions(now=utc(2026, 4, 1, 1))
    assert Invoice.objects.count() == 1


def test_a_pause_closes_out_the_usage_before_it_and_bills_it_when_the_subscription_resumes(catalog):
    metered_a = _metered_a(catalog)
    customer = _customer()
    subscription = subscription_start(customer=customer, plan=metered_a, now=utc(2026, 3, 1))
    _send(customer, ("c1", utc(2026, 3, 5), "calls", 10))
    subscription_pause(subscription_id=subscription.pk, now=utc(2026, 3, 10))

    # Resumed on 20 Mar: a new period [20 Mar, 20 Apr) begins (a new billing anchor); the 10 calls
    # before the pause are billed now, at A's price: 10 × 1.00 = 10.00.
    result = subscription_resume(subscription_id=subscription.pk, now=utc(2026, 3, 20))
    assert _lines(result.invoice) == [
        ("usage", "API — Metered A: Calls (usage)", utc(2026, 3, 1), utc(2026, 3, 10), D(10), D("10.00")),
    ]
    _send(customer, ("c2", utc(2026, 3, 25), "calls", 3))

    # 20 Apr: the first period after the pause: 3 × 1.00 = 3.00.
    bill_due_subscriptions(now=utc(2026, 4, 20, 1))
    renewal = Invoice.objects.exclude(pk=result.invoice.pk).get()
    assert _lines(renewal) == [
        ("usage", "API — Metered A: Calls (usage)", utc(2026, 3, 20), utc(2026, 4, 20), D(3), D("3.00")),
    ]
    subscription.refresh_from_db()
    assert subscription.next_billing_at == utc(2026, 5, 20)
    assert Subscription.objects.get().status == "active"


def test_a_quantity_change_bills_a_per_seat_fee_in_arrears_per_stretch(catalog):
    seats = _plan(
        catalog, "seats", "Seats",
        ChargeInput(name=SIMPLE_CHARGE_NAME, price_model=PriceModelChoice.PER_UNIT,
                    billing_timing=BillingTiming.IN_ARREARS, prices=[PriceInput(currency="USD", amount=D("31.00"))]),
    )  # fmt: skip
    customer = _customer()
    subscription = subscription_start(customer=customer, plan=seats, quantity=2, now=utc(2026, 3, 1))
    subscription_change(subscription_id=subscription.pk, quantity=4, now=utc(2026, 3, 11))

    bill_due_subscriptions(now=utc(2026, 4, 1, 1))

    # 2 seats × 31.00 for 10 of March's 31 days = 20.00; 4 seats × 31.00 for 21 days = 84.00.
    invoice = Invoice.objects.get()
    assert [(line[2], line[3], line[4], line[5]) for line in _lines(invoice)] == [
        (utc(2026, 3, 1), utc(2026, 3, 11), D(2), D("20.00")),
        (utc(2026, 3, 11), utc(2026, 4, 1), D(4), D("84.00")),
    ]
    assert invoice.total.amount == D("104.00")
    # April is billed at 4 seats, whole: 4 × 31.00 = 124.00 (on the 1 May invoice).
    bill_due_subscriptions(now=utc(2026, 5, 1, 1))
    may = Invoice.objects.get(period_start_at=utc(2026, 4, 1))
    assert [(line[4], line[5]) for line in _lines(may)] == [(D(4), D("124.00"))]


def test_a_change_during_a_trial_closes_out_nothing(catalog):
    metered_a, metered_b = _metered_a(catalog), _metered_b(catalog)
    customer = _customer()
    subscription = subscription_start(customer=customer, plan=metered_a, trial_days=14, now=utc(2026, 3, 1))
    subscription_change(subscription_id=subscription.pk, plan=metered_b, now=utc(2026, 3, 5))
    assert not SubscriptionSegment.objects.exists()


def test_two_changes_in_a_period_bill_three_stretches_each_at_its_own_price(catalog):
    metered_a, metered_b = _metered_a(catalog), _metered_b(catalog)
    customer = _customer()
    subscription = subscription_start(customer=customer, plan=metered_a, now=utc(2026, 3, 1))
    _send(customer, ("c1", utc(2026, 3, 5), "calls", 1))
    subscription_change(subscription_id=subscription.pk, plan=metered_b, now=utc(2026, 3, 11))
    _send(customer, ("c2", utc(2026, 3, 15), "calls", 2))
    subscription_change(subscription_id=subscription.pk, plan=metered_a, now=utc(2026, 3, 21))
    _send(customer, ("c3", utc(2026, 3, 25), "calls", 4))

    bill_due_subscriptions(now=utc(2026, 4, 1, 1))

    # A: 1 × 1.00 = 1.00; B: 2 × 2.00 = 4.00; A again: 4 × 1.00 = 4.00. Total 9.00.
    invoice = Invoice.objects.get()
    assert [(line[1], line[2], line[3], line[5]) for line in _lines(invoice)] == [
        ("API — Metered A: Calls (usage)", utc(2026, 3, 1), utc(2026, 3, 11), D("1.00")),
        ("API — Metered B: Calls (usage)", utc(2026, 3, 11), utc(2026, 3, 21), D("4.00")),
        ("API — Metered A: Calls (usage)", utc(2026, 3, 21), utc(2026, 4, 1), D("4.00")),
    ]
    assert invoice.total.amount == D("9.00")


def test_a_grouped_invoice_leaves_out_a_subscription_whose_period_comes_to_nothing(catalog):
    metered_a = _metered_a(catalog)
    hosting = _plan(catalog, "hosting", "Hosting", _fee("25.00", BillingTiming.IN_ADVANCE))
    customer = _customer()
    customer.invoice_grouping = "per_customer"
    customer.save(update_fields=["invoice_grouping"])
    metered = subscription_start(customer=customer, plan=metered_a, now=utc(2026, 3, 1))
    subscription_start(customer=customer, plan=hosting, now=utc(2026, 3, 1))

    run = bill_due_subscriptions(now=utc(2026, 4, 1, 1))

    # One invoice for April: Hosting's 25.00; the metered subscription had no usage in March.
    assert (run.invoiced_count, run.failed_count) == (1, 0)
    april = Invoice.objects.get(period_start_at=utc(2026, 4, 1))
    assert [(line[1], line[5]) for line in _lines(april)] == [("API — Hosting (monthly)", D("25.00"))]
    metered.refresh_from_db()
    assert metered.next_billing_at == utc(2026, 5, 1)
    assert InvoicedPeriod.objects.get(subscription=metered, period_start_at=utc(2026, 4, 1)).invoice is None


# --- Late usage on a usage-only plan: the invoice keeps the name of the period just ended -----------


def _send_late(customer, transaction_id: str, moment, calls: int, *, received):
    result = usage_events_ingest(
        events=[{"transaction_id": transaction_id, "external_customer_id": customer.external_id,
                 "metric_code": "calls", "timestamp": moment.isoformat(), "properties": {"n": calls}}],
        now=received,
    )  # fmt: skip
    assert result.rejected == [], result.rejected


@pytest.mark.parametrize("april_calls", [5, 0], ids=["with April usage", "late usage only"])
def test_late_usage_on_a_usage_only_plan_goes_on_an_invoice_named_after_the_period_just_ended(catalog, april_calls):
    """March is invoiced on 1 Apr (12 calls). 3 more March calls arrive on 2 Apr, within the 3-day
    lateness window; April has `april_calls` calls. The 1 May invoice bills April's usage and March's
    difference (3 × 1.00 = 3.00) and names April: named after March (the span of its lines) it would
    take March's invoice's name, which is unique per subscription, and the subscription would never
    bill again."""
    plan = _metered_a(catalog)
    customer = _customer()
    subscription = subscription_start(customer=customer, plan=plan, now=utc(2026, 3, 1))
    _send(customer, ("m1", utc(2026, 3, 5), "calls", 12))
    bill_due_subscriptions(now=utc(2026, 4, 1, 1))
    march = Invoice.objects.get()
    assert (march.period_start_at, march.total.amount) == (utc(2026, 3, 1), D("12.00"))
    _send_late(customer, "late-1", utc(2026, 3, 31, 23), 3, received=utc(2026, 4, 2))
    if april_calls:
        _send(customer, ("a1", utc(2026, 4, 10), "calls", april_calls))

    run = bill_due_subscriptions(now=utc(2026, 5, 1, 1))

    assert (run.invoiced_count, run.failed_count, run.errors) == (1, 0, [])
    april = Invoice.objects.exclude(pk=march.pk).get()
    assert (april.period_start_at, april.period_end_at) == (utc(2026, 4, 1), utc(2026, 5, 1))
    periods = sorted((line.period_start_at, line.amount.amount) for line in april.lines.all())
    expected = [(utc(2026, 3, 1), D("3.00"))] + ([(utc(2026, 4, 1), D("5.00"))] if april_calls else [])
    assert periods == expected
    assert april.total.amount == D("3.00") + april_calls * D("1.00")
    subscription.refresh_from_db()
    assert subscription.next_billing_at == utc(2026, 6, 1)
    # And June bills May like any month.
    _send(customer, ("y1", utc(2026, 5, 7), "calls", 2))
    run = bill_due_subscriptions(now=utc(2026, 6, 1, 1))
    assert (run.invoiced_count, run.failed_count) == (1, 0)
    may = Invoice.objects.order_by("-id").first()
    assert (may.period_start_at, may.period_end_at, may.total.amount) == (utc(2026, 5, 1), utc(2026, 6, 1), D("2.00"))
