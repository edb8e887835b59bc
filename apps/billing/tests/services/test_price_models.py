"""The price models on invoices: a package rounded down, a graduated percentage, and a plan's minimum
commitment with its true-up line (docs/pricing.md). Every amount is computed by hand in the comments."""

from datetime import timedelta
from decimal import Decimal

import pytest
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import (
    bill_due_subscriptions,
    subscription_bill_due,
    subscription_cancel,
    subscription_start,
    subscription_upcoming_invoice,
)
from apps.billing.services.billing_chunk import billing_chunk_bill
from apps.catalog.services import ChargeInput, PriceInput, TierInput, billable_metric_create, plan_create
from apps.catalog.tests.factories import CouponFactory, ProductFactory
from apps.invoices.models import Invoice
from apps.subscriptions.periods import utc
from apps.subscriptions.services import coupon_redeem
from apps.usage.services import usage_events_ingest

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture(autouse=True)
def metrics():
    billable_metric_create(code="rental_minutes", name="Rental minutes", aggregation="sum", field_name="minutes")
    billable_metric_create(code="payment_volume", name="Payment volume", aggregation="sum", field_name="amount")
    billable_metric_create(code="storage_gb", name="Storage", aggregation="sum", field_name="gb")


def _fee(amount: str) -> ChargeInput:
    return ChargeInput(name="Platform fee", price_model="flat", prices=[PriceInput(currency="USD", amount=D(amount))])


CAR_RENTAL = ChargeInput(
    name="Car rental",
    kind="usage",
    metric_code="rental_minutes",
    price_model="package",
    prices=[PriceInput(currency="USD", amount=D(10), package_size=60, package_rounding="down")],
)
# Lago's graduated percentage: up to 1,000 at 1 % + 200, up to 10,000 at 2 % + 300, above at 3 % + 400.
PAYMENT_FEES = ChargeInput(
    name="Payment fees",
    kind="usage",
    metric_code="payment_volume",
    price_model="graduated_percentage",
    prices=[
        PriceInput(
            currency="USD",
            tiers=[
                TierInput(up_to=D(1000), flat_amount=D(200), percentage=D(1)),
                TierInput(up_to=D(10000), flat_amount=D(300), percentage=D(2)),
                TierInput(up_to=None, flat_amount=D(400), percentage=D(3)),
            ],
        )
    ],
)
STORAGE = ChargeInput(
    name="Storage",
    kind="usage",
    metric_code="storage_gb",
    price_model="per_unit",
    prices=[PriceInput(currency="USD", amount=D("1.00"))],
)


def _plan(*charges: ChargeInput, commitment: str | None = None, code: str = "plan"):
    return plan_create(
        product=ProductFactory(name="Cloud"),
        code=code,
        name=code.title(),
        charges=list(charges),
        minimum_commitments=[Money(commitment, "USD")] if commitment else [],
    )


def _send(customer, metric_code: str, field: str, *values: str, day: int = 10) -> None:
    result = usage_events_ingest(
        events=[
            {
                "transaction_id": f"{customer.external_id}-{metric_code}-{index}",
                "external_customer_id": customer.external_id,
                "metric_code": metric_code,
                "timestamp": (utc(2026, 4, day) + timedelta(minutes=index)).isoformat(),
                "properties": {field: value},
            }
            for index, value in enumerate(values)
        ],
        now=utc(2026, 4, 20),
    )
    assert result.rejected == [], result.rejected


def _subscribe(plan, external_id: str):
    customer = CustomerFactory(currency="USD", external_id=external_id)
    return subscription_start(customer=customer, plan=plan, now=utc(2026, 4, 1))


def _lines(invoice):
    return [
        (line.kind, line.description, line.quantity, line.amount.amount) for line in invoice.lines.order_by("position")
    ]


def _may_invoice(subscription):
    return Invoice.objects.get(subscription=subscription, period_start_at=utc(2026, 5, 1))


# --- package rounded down and graduated percentage, in bulk and one by one ---------------------------


def test_a_package_rounded_down_and_a_graduated_percentage_on_an_invoice_in_bulk_and_one_by_one():
    plan = _plan(_fee("10"), CAR_RENTAL, PAYMENT_FEES)
    in_bulk, one_by_one = _subscribe(plan, "bulk"), _subscribe(plan, "single")
    for subscription in (in_bulk, one_by_one):
        _send(subscription.customer, "rental_minutes", "minutes", "100", "50")  # 150 minutes
        _send(subscription.customer, "payment_volume", "amount", "500.00", "550.00", "4000.00", day=12)  # 5,050

    outcome = billing_chunk_bill(subscription_ids=[in_bulk.pk], now=utc(2026, 5, 1, 1))
    subscription_bill_due(subscription_id=one_by_one.pk, now=utc(2026, 5, 1, 1))

    assert (len(outcome.invoice_ids), outcome.one_by_one_ids, outcome.errors) == (1, [], [])  # priced in bulk
    expected = [
        # 150 minutes ÷ 60 = 2.5 → 2 whole hours × 10.00 (rounded down: the half hour is free)
        ("usage", "Cloud — Plan: Car rental (usage)", D(150), D("20.00")),
        # 1,000.00 × 1 % + 200 = 210.00; 4,050.00 × 2 % + 300 = 381.00; Lago: 205 + 306 + 80 = 591
        ("usage", "Cloud — Plan: Payment fees (usage)", D("5050.00"), D("591.00")),
        ("recurring", "Cloud — Plan: Platform fee (monthly)", D(1), D("10.00")),
    ]
    for subscription in (in_bulk, one_by_one):
        may = _may_invoice(subscription)
        assert _lines(may) == expected
        assert may.total == Money("621.00", "USD")
    rental = _may_invoice(in_bulk).lines.get(description__endswith="Car rental (usage)")
    assert rental.explanation == [
        "Rental minutes: 150 (Sum of a property)",
        "150 units in packages of 60: 2 × 10.00 USD (a partial package is free)",
    ]
    fees = _may_invoice(one_by_one).lines.get(description__endswith="Payment fees (usage)")
    assert fees.explanation == [
        "Payment volume: 5,050 (Sum of a property)",
        "First 1,000.00 USD: 1 % of 1,000.00 USD + 200.00 USD flat fee",
        "Above 1,000.00 USD up to 5,050.00 USD: 2 % of 4,050.00 USD + 300.00 USD flat fee",
    ]


def test_the_upcoming_invoice_prices_the_new_models_on_the_usage_so_far():
    plan = _plan(_fee("10"), CAR_RENTAL, PAYMENT_FEES)
    subscription = _subscribe(plan, "acme")
    _send(subscription.customer, "rental_minutes", "minutes", "59")  # under an hour: free
    _send(subscription.customer, "payment_volume", "amount", "1000.50", day=12)

    upcoming = subscription_upcoming_invoice(subscription_id=subscription.pk, now=utc(2026, 4, 20))

    # 59 minutes → 0 hours; 1,000.00 × 1 % + 200 + 0.50 × 2 % + 300 = 510.01
    assert [(line.description, line.amount) for line in upcoming.lines] == [
        ("Cloud — Plan: Car rental (usage)", D("0.00")),
        ("Cloud — Plan: Payment fees (usage)", D("510.01")),
        ("Cloud — Plan: Platform fee (monthly)", D("10.00")),
    ]


# --- the plan's minimum commitment (docs/pricing.md, "Worked example: Lago's 1,000 USD monthly commitment")


def _true_up_lines(invoice):
    return [line for line in invoice.lines.order_by("position") if line.kind == "minimum" and line.charge is None]


def test_doc_minimum_commitment_usage_below_the_commitment_gets_a_true_up_line():
    # Lago: "With $800 of eligible usage, Lago adds a $200 true-up to reach the minimum."
    subscription = _subscribe(_plan(_fee("0"), STORAGE, commitment="1000"), "acme")
    _send(subscription.customer, "storage_gb", "gb", "800")

    bill_due_subscriptions(now=utc(2026, 5, 1, 1))

    may = _may_invoice(subscription)
    assert _lines(may) == [
        ("usage", "Cloud — Plan: Storage (usage)", D(800), D("800.00")),
        ("minimum", "Cloud — Plan: minimum commitment true-up", D(1), D("200.00")),
        ("recurring", "Cloud — Plan: Platform fee (monthly)", D(1), D("0.00")),
    ]
    (true_up,) = _true_up_lines(may)
    assert (true_up.period_start_at, true_up.period_end_at) == (utc(2026, 4, 1), utc(2026, 5, 1))  # April's
    assert true_up.explanation == [
        "Minimum commitment per period: 1,000.00 USD.",
        "The period's charges before tax and discounts: 800.00 USD (fees 0.00 USD, usage 800.00 USD).",
        "True-up: 1,000.00 USD − 800.00 USD = 200.00 USD.",
    ]
    assert may.total == Money("1000.00", "USD")


def test_doc_minimum_commitment_usage_above_the_commitment_adds_nothing():
    # Lago: "With $1,300 of eligible usage, it bills $1,300 and adds no true-up."
    subscription = _subscribe(_plan(_fee("0"), STORAGE, commitment="1000"), "acme")
    _send(subscription.customer, "storage_gb", "gb", "1000", "300")

    bill_due_subscriptions(now=utc(2026, 5, 1, 1))

    may = _may_invoice(subscription)
    assert _true_up_lines(may) == []
    assert may.total == Money("1300.00", "USD")


def test_doc_minimum_commitment_counts_the_fee_billed_in_advance_on_the_earlier_invoice():
    subscription = _subscribe(_plan(_fee("100"), STORAGE, commitment="1000"), "acme")
    _send(subscription.customer, "storage_gb", "gb", "600")

    bill_due_subscriptions(now=utc(2026, 5, 1, 1))

    # April: fee 100.00 (on April's invoice) + usage 600.00 = 700.00 → true-up 300.00, on May's invoice.
    may = _may_invoice(subscription)
    assert _lines(may) == [
        ("usage", "Cloud — Plan: Storage (usage)", D(600), D("600.00")),
        ("minimum", "Cloud — Plan: minimum commitment true-up", D(1), D("300.00")),
        ("recurring", "Cloud — Plan: Platform fee (monthly)", D(1), D("100.00")),
    ]
    assert _true_up_lines(may)[0].explanation[1] == (
        "The period's charges before tax and discounts: 700.00 USD (fees 100.00 USD, usage 600.00 USD)."
    )


@pytest.mark.parametrize(("gigabytes", "true_up"), [("600", None), ("200", D("250.00"))])
def test_doc_minimum_commitment_of_a_period_ended_early_is_prorated_by_the_second(gigabytes, true_up):
    subscription = _subscribe(_plan(_fee("100"), STORAGE, commitment="1000"), "acme")
    _send(subscription.customer, "storage_gb", "gb", gigabytes)

    subscription_cancel(subscription_id=subscription.pk, when="now", prorate=True, now=utc(2026, 4, 16))

    # 15 of April's 30 days: the commitment is 1,000.00 × 15/30 = 500.00; the fee counts 100.00 less
    # the 50.00 credited for the unused half. 600 GB: 650.00 ≥ 500.00, nothing; 200 GB: 250.00 → 250.00.
    final = Invoice.objects.get(subscription=subscription, billing_reason="subscription_update")
    lines = _true_up_lines(final)
    assert [line.amount.amount for line in lines] == ([true_up] if true_up else [])
    if true_up:
        assert (lines[0].period_start_at, lines[0].period_end_at) == (utc(2026, 4, 1), utc(2026, 4, 16))
        assert lines[0].explanation == [
            "Minimum commitment per period: 1,000.00 USD × 50.00 % of the period billed (1/2 of its seconds) = "
            "500.00 USD.",
            "The period's charges before tax and discounts: 250.00 USD (fees 50.00 USD, usage 200.00 USD).",
            "True-up: 500.00 USD − 250.00 USD = 250.00 USD.",
        ]


def test_a_commitment_is_measured_before_discounts_and_the_true_up_is_discounted_like_any_charge():
    subscription = _subscribe(_plan(_fee("100"), STORAGE, commitment="1000"), "acme")
    coupon = CouponFactory(name="Partner", code="partner", percent_off=D(20), duration="forever")
    coupon_redeem(coupon=coupon, subscription=subscription, now=utc(2026, 4, 2))
    _send(subscription.customer, "storage_gb", "gb", "600")

    bill_due_subscriptions(now=utc(2026, 5, 1, 1))

    # April's charges before discounts: 100.00 + 600.00 = 700.00 → true-up 300.00 (not 1,000.00 − 560.00).
    # May's invoice: 600.00 + 300.00 + 100.00 = 1,000.00, less 20 % = 800.00.
    may = _may_invoice(subscription)
    assert [(line.kind, line.amount.amount) for line in may.lines.order_by("position")] == [
        ("usage", D("600.00")),
        ("minimum", D("300.00")),
        ("recurring", D("100.00")),
        ("discount", D("-200.00")),
    ]
    assert may.total == Money("800.00", "USD")


def test_the_bulk_path_leaves_a_committed_subscription_to_the_one_by_one_path_which_bills_the_true_up():
    committed = _subscribe(_plan(_fee("100"), STORAGE, commitment="1000", code="committed"), "committed")
    plain = _subscribe(_plan(_fee("100"), STORAGE, code="plain"), "plain")
    for subscription in (committed, plain):
        _send(subscription.customer, "storage_gb", "gb", "600")

    outcome = billing_chunk_bill(subscription_ids=[committed.pk, plain.pk], now=utc(2026, 5, 1, 1))

    assert (len(outcome.invoice_ids), outcome.one_by_one_ids) == (1, [committed.pk])
    assert _may_invoice(plain).total == Money("700.00", "USD")
    run = bill_due_subscriptions(now=utc(2026, 5, 1, 1))
    assert (run.invoiced_count, run.failed_count) == (1, 0)
    assert [line.amount.amount for line in _true_up_lines(_may_invoice(committed))] == [D("300.00")]


def test_the_upcoming_invoice_shows_the_true_up_the_period_would_get_with_its_charges_so_far():
    subscription = _subscribe(_plan(_fee("100"), STORAGE, commitment="1000"), "acme")
    _send(subscription.customer, "storage_gb", "gb", "250")

    upcoming = subscription_upcoming_invoice(subscription_id=subscription.pk, now=utc(2026, 4, 20))

    # The commitment is for the whole of April (billed on 1 May): 1,000.00 − (100.00 + 250.00) = 650.00.
    assert [(line.kind, line.amount) for line in upcoming.lines] == [
        ("usage", D("250.00")),
        ("minimum", D("650.00")),
        ("recurring", D("100.00")),
    ]
    assert upcoming.total == D("1000.00")


def test_no_true_up_for_a_free_trial_and_the_first_paid_period_is_measured():
    plan = _plan(_fee("100"), STORAGE, commitment="1000")
    plan.trial_days = 30
    plan.save(update_fields=["trial_days"])
    customer = CustomerFactory(currency="USD", external_id="acme")
    subscription = subscription_start(customer=customer, plan=plan, now=utc(2026, 4, 1))

    bill_due_subscriptions(now=utc(2026, 6, 1, 1))

    # The trial [1 April, 1 May) costs nothing and commits to nothing; May (fee 100.00, no usage) is
    # trued up to 1,000.00 on June's invoice.
    first = _may_invoice(subscription)
    assert _true_up_lines(first) == []
    june = Invoice.objects.get(subscription=subscription, period_start_at=utc(2026, 6, 1))
    assert [line.amount.amount for line in _true_up_lines(june)] == [D("900.00")]


def test_the_upcoming_invoice_api_shows_the_true_up_line_with_its_explanation(api_client, superuser):
    from django.urls import reverse

    from apps.core import clock

    subscription = _subscribe(_plan(_fee("100"), STORAGE, commitment="1000"), "acme")
    _send(subscription.customer, "storage_gb", "gb", "250")
    api_client.force_authenticate(superuser)

    with clock.frozen_at(utc(2026, 4, 20)):
        response = api_client.get(reverse("api:subscription-upcoming-invoice", args=[subscription.pk]))

    assert response.status_code == 200, response.data
    true_up = response.json()["lines"][1]
    assert (true_up["kind"], true_up["description"], true_up["amount"]) == (
        "minimum",
        "Cloud — Plan: minimum commitment true-up",
        {"amount": "650.00", "currency": "USD"},
    )
    assert (true_up["period_start_at"], true_up["period_end_at"]) == ("2026-04-01T00:00:00Z", "2026-05-01T00:00:00Z")
    assert true_up["explanation"][2] == "True-up: 1,000.00 USD − 350.00 USD = 650.00 USD."


def test_a_partial_first_period_of_calendar_billing_commits_to_its_share_of_the_minimum():
    plan = _plan(_fee("31"), STORAGE, commitment="744")
    subscription = subscription_start(
        customer=CustomerFactory(currency="USD", external_id="acme"), plan=plan, billing_cycle_day=1,
        started_at=utc(2026, 3, 17, 10), now=utc(2026, 3, 17, 10),
    )  # fmt: skip

    bill_due_subscriptions(now=utc(2026, 4, 1, 0, 30))

    # 17 Mar 10:00 → 1 Apr is 350 of March's 744 hours (175/372): the fee is 31.00 × 175/372 = 14.58,
    # the commitment 744.00 × 175/372 = 350.00, so the true-up is 350.00 − 14.58 = 335.42.
    april = Invoice.objects.get(subscription=subscription, period_start_at=utc(2026, 4, 1))
    (true_up,) = _true_up_lines(april)
    assert true_up.amount.amount == D("335.42")
    assert (true_up.period_start_at, true_up.period_end_at) == (utc(2026, 3, 17, 10), utc(2026, 4, 1))
    assert true_up.explanation[0] == (
        "Minimum commitment per period: 744.00 USD × 47.04 % of the period billed (175/372 of its seconds) = "
        "350.00 USD."
    )
