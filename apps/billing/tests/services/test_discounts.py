"""Discounts on invoices: their own negative lines, exact, for as many invoices as the coupon says."""

from decimal import Decimal

import pytest
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import bill_due_subscriptions, subscription_start, subscription_upcoming_invoice
from apps.catalog.tests.factories import CouponFactory, FixedCouponFactory, PlanFactory
from apps.invoices.models import Invoice
from apps.subscriptions.periods import utc
from apps.subscriptions.services import coupon_redeem

pytestmark = pytest.mark.django_db


def _lines(invoice):
    return [(line.kind, line.description, line.amount.amount) for line in invoice.lines.order_by("position")]


def _subscribe(plan, *, quantity=1):
    """Subscribed on 30 April to start on 1 May (so that coupons redeemed on 30 April apply at once)."""
    return subscription_start(
        customer=CustomerFactory(currency="USD"),
        plan=plan,
        quantity=quantity,
        started_at=utc(2026, 5, 1),
        now=utc(2026, 4, 30),
    )


def test_a_repeating_percentage_discount_on_a_subscription_discounts_three_invoices():
    plan = PlanFactory(name="Pro", product__name="Hosting", prices=[Money("99.00", "USD")])
    subscription = _subscribe(plan)
    coupon = CouponFactory(name="Launch", code="launch", percent_off=Decimal("15"), duration="repeating",
                           duration_in_periods=3)  # fmt: skip
    coupon_redeem(coupon=coupon, subscription=subscription, now=utc(2026, 4, 30))

    bill_due_subscriptions(now=utc(2026, 8, 1, 1))

    invoices = list(Invoice.objects.filter(subscription=subscription).order_by("period_start_at"))
    assert [invoice.total for invoice in invoices] == [Money("84.15", "USD")] * 3 + [Money("99.00", "USD")]
    assert _lines(invoices[0]) == [
        ("recurring", "Hosting — Pro (monthly)", Decimal("99.00")),
        ("discount", "Discount: Launch (15 % off)", Decimal("-14.85")),  # 99.00 × 15 % = 14.85
    ]
    assert invoices[2].lines.get(kind="discount").explanation == [
        "15 % off of 99.00 USD; coupon launch, invoice 3 of 3."
    ]


def test_a_fixed_discount_on_the_customer_never_takes_an_invoice_below_zero():
    plan = PlanFactory(prices=[Money("8.00", "USD")])
    subscription = _subscribe(plan)
    coupon_redeem(coupon=FixedCouponFactory(name="Welcome"), customer=subscription.customer, now=utc(2026, 4, 30))

    bill_due_subscriptions(now=utc(2026, 6, 1, 1))

    first, second = Invoice.objects.filter(subscription=subscription).order_by("period_start_at")
    assert first.total == Money("0.00", "USD")  # 10.00 off an 8.00 invoice takes 8.00
    assert first.lines.get(kind="discount").amount == Money("-8.00", "USD")
    assert second.total == Money("8.00", "USD")  # once


def test_a_product_restricted_coupon_discounts_only_that_product():
    plan = PlanFactory(name="Pro", prices=[Money("100.00", "USD")])
    other = PlanFactory(name="DB", prices=[Money("50.00", "USD")])
    subscription = _subscribe(plan)
    coupon = CouponFactory(percent_off=Decimal("50"), duration="forever")
    coupon.products.set([other.product])
    coupon_redeem(coupon=coupon, customer=subscription.customer, now=utc(2026, 4, 30))
    database = subscription_start(customer=subscription.customer, plan=other, now=utc(2026, 5, 1))
    bill_due_subscriptions(now=utc(2026, 5, 1, 1))

    assert Invoice.objects.get(subscription=subscription).total == Money("100.00", "USD")
    assert Invoice.objects.get(subscription=database).total == Money("25.00", "USD")


def test_the_upcoming_invoice_shows_the_discount_without_using_it():
    plan = PlanFactory(prices=[Money("40.00", "USD")])
    subscription = _subscribe(plan)
    discount = coupon_redeem(
        coupon=CouponFactory(percent_off=Decimal("10"), duration="once"), subscription=subscription,
        now=utc(2026, 5, 2),
    )  # fmt: skip

    upcoming = subscription_upcoming_invoice(subscription_id=subscription.pk, now=utc(2026, 5, 3))

    assert [(line.kind, line.amount) for line in upcoming.lines] == [
        ("recurring", Decimal("40.00")),
        ("discount", Decimal("-4.00")),
    ]
    assert upcoming.total == Decimal("36.00")
    discount.refresh_from_db()
    assert discount.periods_applied == 0
