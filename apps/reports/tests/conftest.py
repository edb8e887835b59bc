"""The hand-computed fixture every report figure is checked against.

Four months of 2026 (January to April), built through the services exactly as the product would have
made them (the clock frozen at each moment, the billing run on the 1st of each month at 00:00):

Catalog (no tax anywhere: the customers are in a US state without a tax rate on file)
  Hosting  / basic   10.00 USD, 9.00 EUR a month
  Hosting  / pro     30.00 USD a month (per unit: quantity × 30.00)
  Hosting  / annual  1,200.00 USD a year              → MRR 1,200.00 / 12 = 100.00
  Support  / support 20.00 USD a month

Customers and what happens to them
  A (USD)  basic ×1 from 1 Jan; upgraded to pro on 15 Feb (prorated: −5.00 and +15.00 on the
           1 Mar invoice)
  B (USD)  pro ×2 from 1 Jan with a 25 % coupon, forever  → 60.00 − 15.00 = 45.00 MRR;
           on 10 Feb schedules a change to pro ×1 at period end (1 Mar)  → 30.00 − 7.50 = 22.50
  C (USD)  annual from 1 Jan (100.00 MRR) and support from 1 Jan (20.00); on 20 Feb cancels
           support at period end (it ends 1 Mar)
  D (USD)  basic from 1 Jan; canceled at once on 10 Feb (churn); subscribes to basic again on
           1 Apr (reactivation)
  E (EUR)  basic from 1 Feb, 9.00 EUR (never added to the USD figures)

Payments (manual bank transfers, allocated to the invoice): the five January invoices on 10 Jan; A's
and B's February invoices on 10 Feb; A's March invoice on 5 Mar; 4.00 of D's February invoice (10.00)
on 20 Mar. Payment terms 14 days. Figures as of 20 Apr 2026.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from djmoney.money import Money

from apps.accounts.services import customer_create
from apps.billing.constants import ChangeTiming
from apps.billing.services import bill_due_subscriptions, subscription_change
from apps.catalog.models import Plan, Product
from apps.catalog.services import coupon_create, plan_create, product_create
from apps.core import clock
from apps.invoices.models import Invoice
from apps.payments.services import payment_record_manual
from apps.subscriptions.models import Subscription
from apps.subscriptions.services import coupon_redeem, subscription_cancel, subscription_create


def at(month: int, day: int, hour: int = 0) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


AS_OF = at(4, 20, 12)


@dataclass
class Story:
    products: dict[str, Product]
    plans: dict[str, Plan]
    customers: dict[str, object]
    subscriptions: dict[str, Subscription]


def _bill(moment: datetime) -> list[Invoice]:
    with clock.frozen_at(moment):
        bill_due_subscriptions(now=moment)
    return list(Invoice.objects.filter(issued_at=moment))


def _pay(invoice: Invoice, moment: datetime, amount: Decimal | None = None) -> None:
    amount = invoice.total.amount if amount is None else amount
    with clock.frozen_at(moment):
        payment_record_manual(
            customer_id=invoice.customer_id, amount=amount, currency=invoice.currency, method="bank_transfer",
            reference=f"Transfer for {invoice.number}", received_at=moment, allocations=[(invoice.pk, amount)],
        )  # fmt: skip


def _subscribe(customer, plan: Plan, moment: datetime, quantity: int = 1) -> Subscription:
    with clock.frozen_at(moment):
        return subscription_create(customer=customer, plan=plan, quantity=quantity, started_at=moment)


@pytest.fixture
def story(db, settings) -> Story:
    settings.INVOICE_DRAFT_GRACE_HOURS = 0
    settings.INVOICE_PAYMENT_TERMS_DAYS = 14
    settings.INVOICE_EMAIL_ON_FINALIZE = False
    hosting = product_create(code="hosting", name="Hosting")
    support = product_create(code="support", name="Support")
    plans = {
        "basic": plan_create(
            product=hosting, code="basic", name="Basic", prices=[Money("10.00", "USD"), Money("9.00", "EUR")]
        ),
        "pro": plan_create(product=hosting, code="pro", name="Pro", prices=[Money("30.00", "USD")]),
        "annual": plan_create(
            product=hosting, code="annual", name="Annual", interval="year", prices=[Money("1200.00", "USD")]
        ),
        "support": plan_create(product=support, code="support", name="Support", prices=[Money("20.00", "USD")]),
    }
    customers = {
        name: customer_create(
            name=f"Customer {name}", email=f"{name.lower()}@example.com", country="US", state="NV", currency=currency
        )
        for name, currency in (("A", "USD"), ("B", "USD"), ("C", "USD"), ("D", "USD"), ("E", "EUR"))
    }
    subs = {
        "A": _subscribe(customers["A"], plans["basic"], at(1, 1)),
        "B": _subscribe(customers["B"], plans["pro"], at(1, 1), quantity=2),
        "C-annual": _subscribe(customers["C"], plans["annual"], at(1, 1)),
        "C-support": _subscribe(customers["C"], plans["support"], at(1, 1)),
        "D": _subscribe(customers["D"], plans["basic"], at(1, 1)),
    }
    coupon = coupon_create(code="quarter-off", name="Quarter off", discount_type="percentage",
                           percent_off=Decimal(25), duration="forever")  # fmt: skip
    with clock.frozen_at(at(1, 1)):
        coupon_redeem(coupon=coupon, subscription=subs["B"], now=at(1, 1))

    january = _bill(at(1, 1))
    assert len(january) == 5
    for invoice in january:
        _pay(invoice, at(1, 10))

    subs["E"] = _subscribe(customers["E"], plans["basic"], at(2, 1))
    february = _bill(at(2, 1))
    assert len(february) == 5
    for invoice in february:
        if invoice.customer_id in (customers["A"].pk, customers["B"].pk):
            _pay(invoice, at(2, 10))

    with clock.frozen_at(at(2, 10)):
        subscription_change(subscription_id=subs["B"].pk, quantity=1, timing=ChangeTiming.PERIOD_END, now=at(2, 10))
        subscription_cancel(subscription_id=subs["D"].pk, at_period_end=False, now=at(2, 10))
    with clock.frozen_at(at(2, 15)):
        subscription_change(subscription_id=subs["A"].pk, plan=plans["pro"], now=at(2, 15))
    with clock.frozen_at(at(2, 20)):
        subscription_cancel(subscription_id=subs["C-support"].pk, at_period_end=True, now=at(2, 20))

    march = _bill(at(3, 1))
    assert len(march) == 3  # A, B and E; C's support ended, D is canceled
    _pay(next(invoice for invoice in march if invoice.customer_id == customers["A"].pk), at(3, 5))
    # D pays 4.00 of its open February invoice (10.00) on 20 Mar: 6.00 is still due.
    _pay(next(invoice for invoice in february if invoice.customer_id == customers["D"].pk), at(3, 20), Decimal("4.00"))

    subs["D-again"] = _subscribe(customers["D"], plans["basic"], at(4, 1))
    april = _bill(at(4, 1))
    assert len(april) == 4  # A, B, D and E

    return Story(products={"hosting": hosting, "support": support}, plans=plans, customers=customers,
                 subscriptions=subs)  # fmt: skip
