"""Regressions found by review: waiting items settled when a subscription ends, changes and version
migrations that do not undo each other, locked versions, minimums in prorations, credits as invoiced,
voided drafts giving back what they took."""

import dataclasses
from decimal import Decimal

import pytest
from django.test import override_settings
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import (
    bill_due_subscriptions,
    subscription_change,
    subscription_start,
    subscription_upcoming_invoice,
)
from apps.billing.services.changes import subscription_cancel_with_credit, subscription_pause
from apps.catalog import services as catalog_services
from apps.catalog.models import Charge, PlanVersion, Price
from apps.catalog.tests.factories import CouponFactory, PlanFactory, add_charge
from apps.core.errors import InvalidTransition, NotEditable, ValidationFailed
from apps.invoices.constants import BillingReason
from apps.invoices.models import Invoice, InvoiceItem
from apps.invoices.services.lifecycle import invoice_void
from apps.subscriptions.periods import utc
from apps.subscriptions.services import coupon_redeem, subscription_cancel, subscription_migrate_version

pytestmark = pytest.mark.django_db
APRIL_1 = utc(2026, 4, 1)


def _start(plan, quantity=1, customer=None):
    return subscription_start(
        customer=customer or CustomerFactory(currency="USD"),
        plan=plan,
        quantity=quantity,
        started_at=APRIL_1,
        now=APRIL_1,
    )


def _v2(plan, amount):
    v2 = PlanVersion.objects.create(plan=plan, number=2)
    c = Charge.objects.create(plan_version=v2, position=1, name="Subscription fee")
    Price.objects.create(charge=c, currency="USD", amount=Decimal(amount))
    return v2


def _may(sub):
    return Invoice.objects.get(
        subscription=sub, billing_reason=BillingReason.SUBSCRIPTION_CYCLE, period_start_at=utc(2026, 5, 1)
    )


def test_a_quantity_change_now_keeps_a_scheduled_version_migration():
    plan = PlanFactory(prices=[Money("10.00", "USD")])
    sub = _start(plan)
    v2 = _v2(plan, "20.00")
    subscription_migrate_version(subscription_id=sub.pk, version=v2, timing="next_period", now=utc(2026, 4, 5))
    subscription_change(subscription_id=sub.pk, quantity=2, proration="none", now=utc(2026, 4, 10))
    sub.refresh_from_db()
    bill_due_subscriptions(now=utc(2026, 5, 1, 1))
    sub.refresh_from_db()
    assert sub.plan_version_id == v2.pk, "scheduled migration to v2 silently dropped"


def test_a_scheduled_quantity_change_keeps_a_migration_made_since():
    plan = PlanFactory(prices=[Money("10.00", "USD")])
    sub = _start(plan)
    subscription_change(subscription_id=sub.pk, quantity=3, timing="period_end", now=utc(2026, 4, 5))
    v2 = _v2(plan, "20.00")
    subscription_migrate_version(subscription_id=sub.pk, version=v2, timing="now", now=utc(2026, 4, 6))
    subscription_upcoming_invoice(subscription_id=sub.pk, now=utc(2026, 4, 7))  # reads only
    bill_due_subscriptions(now=utc(2026, 5, 1, 1))
    sub.refresh_from_db()
    assert sub.plan_version_id == v2.pk, "migration to v2 reverted to v1 by the scheduled change"


def test_a_scheduled_quantity_change_and_a_migration_both_apply():
    plan = PlanFactory(prices=[Money("10.00", "USD")])
    sub = _start(plan)
    subscription_change(subscription_id=sub.pk, quantity=3, timing="period_end", now=utc(2026, 4, 5))
    v2 = _v2(plan, "20.00")
    subscription_migrate_version(subscription_id=sub.pk, version=v2, timing="next_period", now=utc(2026, 4, 6))
    bill_due_subscriptions(now=utc(2026, 5, 1, 1))
    sub.refresh_from_db()
    assert sub.plan_version_id == v2.pk


def test_prorations_waiting_when_a_subscription_ends_are_invoiced():
    basic = PlanFactory(prices=[Money("30.00", "USD")])
    pro = PlanFactory(product=basic.product, prices=[Money("60.00", "USD")])
    sub = _start(basic)
    subscription_change(subscription_id=sub.pk, plan=pro, now=utc(2026, 4, 16))  # -15, +30
    subscription_cancel(subscription_id=sub.pk, at_period_end=True, now=utc(2026, 4, 17))
    bill_due_subscriptions(now=utc(2026, 6, 1))
    waiting = list(InvoiceItem.objects.filter(invoice=None).values_list("amount", flat=True))
    assert not waiting, "upgrade proration never billed"


def test_a_pause_credit_goes_to_the_customer_when_the_paused_subscription_is_canceled():
    plan = PlanFactory(prices=[Money("30.00", "USD")])
    sub = _start(plan)
    subscription_pause(subscription_id=sub.pk, now=utc(2026, 4, 11))  # -20 credit waits for resume
    subscription_cancel(subscription_id=sub.pk, at_period_end=False, now=utc(2026, 4, 12))
    bill_due_subscriptions(now=utc(2026, 6, 1))
    waiting = list(InvoiceItem.objects.filter(invoice=None).values_list("amount", "subscription_id"))
    assert not [w for w in waiting if w[1] is not None], "pause credit stranded on canceled subscription"


def test_cancel_with_credit_after_an_upgrade_nets_the_waiting_prorations():
    basic = PlanFactory(prices=[Money("30.00", "USD")])
    pro = PlanFactory(product=basic.product, prices=[Money("60.00", "USD")])
    cust = CustomerFactory(currency="USD")
    sub = _start(basic, customer=cust)
    subscription_change(subscription_id=sub.pk, plan=pro, now=utc(2026, 4, 16))  # -15, +30 waiting
    subscription_cancel_with_credit(subscription_id=sub.pk, now=utc(2026, 4, 16))
    items = list(InvoiceItem.objects.filter(invoice=None).values_list("amount", "subscription_id"))
    # Customer paid 30 for April, used half of Basic: fair net = -15.
    customer_side = sum(a for a, s in items if s is None)
    assert customer_side == Decimal("-15.00")
    assert [a for a, s in items if s is not None] == []  # nothing stranded on the ended subscription


def test_proration_respects_the_minimum_charge():
    plan = PlanFactory(prices=[])
    v = PlanVersion.objects.create(plan=plan, number=1)
    add_charge(v, name="Seats", price_model="per_unit", amount=Decimal("1.00"), minimum_amount=Decimal("100.00"))
    sub = _start(plan, quantity=10)
    assert Invoice.objects.get(subscription=sub).total == Money("100.00", "USD")  # the minimum
    r = subscription_change(subscription_id=sub.pk, quantity=50, now=utc(2026, 4, 16))
    # Both 10 and 50 seats cost the 100.00 minimum: nothing should be owed for the rest of April.
    assert r.preview.total == 0


@override_settings(INVOICE_DRAFT_GRACE_HOURS=24)
def test_a_voided_draft_gives_back_the_credit_it_took():
    cust = CustomerFactory(currency="USD")
    p1 = PlanFactory(prices=[Money("30.00", "USD")])
    p2 = PlanFactory(prices=[Money("30.00", "USD")])
    s1 = _start(p1, customer=cust)
    s2 = _start(p2, customer=cust)
    subscription_cancel_with_credit(subscription_id=s1.pk, now=utc(2026, 4, 16))  # -15 credit
    bill_due_subscriptions(now=utc(2026, 5, 1, 1))
    may = Invoice.objects.get(subscription=s2, period_start_at=utc(2026, 5, 1))
    invoice_void(invoice_id=may.pk, now=utc(2026, 5, 1, 2))
    left = list(InvoiceItem.objects.filter(customer=cust, invoice=None).values_list("amount", flat=True))
    assert left == [Decimal("-15.00")]


def test_a_cancel_credit_is_what_was_invoiced_after_discounts():
    cust = CustomerFactory(currency="USD")
    plan = PlanFactory(prices=[Money("30.00", "USD")])
    sub = subscription_start(customer=cust, plan=plan, started_at=utc(2026, 5, 1), now=utc(2026, 4, 30))
    coupon_redeem(
        coupon=CouponFactory(percent_off=Decimal("50"), duration="forever"), subscription=sub, now=utc(2026, 4, 30)
    )
    bill_due_subscriptions(now=utc(2026, 5, 1, 1))
    may = Invoice.objects.get(subscription=sub)
    r = subscription_cancel_with_credit(subscription_id=sub.pk, now=utc(2026, 5, 16, 12))
    assert -r.preview.total <= may.total.amount / 2


def test_a_version_stays_locked_after_everyone_migrates_off():
    plan = PlanFactory(prices=[Money("10.00", "USD")])
    sub = subscription_start(
        customer=CustomerFactory(currency="USD"), plan=plan, started_at=utc(2026, 4, 1), now=utc(2026, 4, 1)
    )
    v1 = plan.versions.get()
    v2 = PlanVersion.objects.create(plan=plan, number=2)
    Price.objects.create(
        charge=Charge.objects.create(plan_version=v2, position=1, name="Subscription fee"), currency="USD", amount=20
    )
    subscription_migrate_version(subscription_id=sub.pk, version=v2, timing="now", now=utc(2026, 4, 2))
    assert catalog_services.plan_version_is_locked(v1)  # its prices are on an invoice
    with pytest.raises(NotEditable):
        catalog_services.plan_version_replace_charges(
            version=v1, charges=catalog_services.plan_version_charge_inputs(v1)
        )


def test_a_version_a_change_is_scheduled_to_is_locked():
    pro = PlanFactory(prices=[Money("60.00", "USD")])
    basic = PlanFactory(product=pro.product, prices=[Money("30.00", "USD")])
    sub = _start(pro)
    subscription_change(subscription_id=sub.pk, plan=basic, timing="period_end", now=utc(2026, 4, 5))
    version = basic.versions.get()
    inputs = catalog_services.plan_version_charge_inputs(version)
    inputs[0] = dataclasses.replace(inputs[0], prices=[dataclasses.replace(inputs[0].prices[0], amount=Decimal("300"))])

    with pytest.raises(NotEditable):
        catalog_services.plan_version_replace_charges(version=version, charges=inputs)

    bill_due_subscriptions(now=utc(2026, 5, 1, 1))
    assert _may(sub).total == Money("30.00", "USD")


def test_a_change_cannot_be_dated_before_the_last_change_of_the_period():
    basic = PlanFactory(prices=[Money("30.00", "USD")])
    pro = PlanFactory(product=basic.product, prices=[Money("60.00", "USD")])
    enterprise = PlanFactory(product=basic.product, prices=[Money("90.00", "USD")])
    sub = _start(basic)
    subscription_change(subscription_id=sub.pk, plan=pro, now=utc(2026, 4, 21))

    with pytest.raises(ValidationFailed, match="before the subscription's last change"):
        subscription_change(
            subscription_id=sub.pk, plan=enterprise, effective_at=utc(2026, 4, 11), now=utc(2026, 4, 22)
        )
    assert InvoiceItem.objects.count() == 2


def test_a_change_now_under_a_scheduled_change_is_refused_until_it_is_withdrawn():
    basic = PlanFactory(prices=[Money("30.00", "USD")])
    pro = PlanFactory(product=basic.product, prices=[Money("60.00", "USD")])
    sub = _start(pro)
    subscription_change(subscription_id=sub.pk, plan=basic, timing="period_end", now=utc(2026, 4, 5))

    with pytest.raises(InvalidTransition, match="withdraw it"):
        subscription_change(subscription_id=sub.pk, quantity=5, now=utc(2026, 4, 10))
    sub.refresh_from_db()
    assert sub.quantity == 1
