"""Revenue: credits bought are not revenue when bought (they are recognized through the invoices they
pay); granted credits are a discount, taken off revenue when an invoice consumes them."""

from collections import defaultdict
from datetime import date
from decimal import Decimal

import pytest
from django.test import override_settings

from apps.core import clock
from apps.invoices.tests.factories import make_manual_invoice
from apps.payments.services import invoice_mark_paid
from apps.payments.tests.factories import make_customer
from apps.reports.models import RevenueMonth
from apps.reports.services import revenue_months_rebuild
from apps.subscriptions.periods import utc
from apps.wallets.services.expiry import wallet_credits_expire
from apps.wallets.services.ledger import wallet_grant
from apps.wallets.services.purchases import wallet_purchase

from .factories import make_wallet

pytestmark = [pytest.mark.django_db]


@override_settings(INVOICE_DRAFT_GRACE_HOURS=0)
def test_purchased_credits_are_recognized_on_consumption_and_granted_credits_are_a_discount():
    customer = make_customer(currency="USD")
    wallet = make_wallet(customer, rate="1.00")
    purchase = wallet_purchase(wallet_id=wallet.pk, credits="50", now=utc(2026, 1, 5))
    with clock.frozen_at(utc(2026, 1, 6)):  # the credits are granted when the payment is recorded
        invoice_mark_paid(invoice_id=purchase.invoice_id, reference="BANK-7", now=utc(2026, 1, 6))
    wallet_grant(wallet_id=wallet.pk, credits="30", category="promotion", reason="Offer",
                 expires_on=date(2026, 3, 1), now=utc(2026, 1, 7))  # fmt: skip

    # February: 100.00 of work; 30 granted credits (expiring first), then 50 bought ones: 20.00 due.
    invoice = make_manual_invoice(customer=customer, lines=[("Consulting", "1", "100.00")], now=utc(2026, 2, 10))
    assert invoice.total.amount == Decimal("20.00")

    revenue_months_rebuild(from_month=None, as_of=utc(2026, 2, 28))

    recognized, deferred = defaultdict(Decimal), defaultdict(Decimal)
    for row in RevenueMonth.objects.filter(currency="USD"):
        recognized[row.month] += row.recognized
        deferred[row.month] += row.deferred
    # January: the 50.00 purchase is money received in advance, not revenue: deferred at the month's end.
    # February: 100.00 of work less the 30.00 granted (a discount); the 50.00 of bought credits is
    # the revenue recognized now, inside the 100.00, and nothing is deferred any more.
    assert (recognized[date(2026, 1, 1)], deferred[date(2026, 1, 1)]) == (Decimal(0), Decimal("50.00"))
    assert (recognized[date(2026, 2, 1)], deferred[date(2026, 2, 1)]) == (Decimal("70.00"), Decimal(0))


@override_settings(INVOICE_DRAFT_GRACE_HOURS=0)
def test_credits_bought_that_expire_unused_are_recognized_when_they_expire():
    customer = make_customer(currency="USD")
    wallet = make_wallet(customer, rate="0.10")
    purchase = wallet_purchase(wallet_id=wallet.pk, credits="400", expires_on=date(2026, 3, 1), now=utc(2026, 1, 5))
    with clock.frozen_at(utc(2026, 1, 6)):
        invoice_mark_paid(invoice_id=purchase.invoice_id, reference="BANK-8", now=utc(2026, 1, 6))
    # 10.00 of work in February takes 100 credits (10.00); 300 credits (30.00) expire on 1 March.
    make_manual_invoice(customer=customer, lines=[("Consulting", "1", "10.00")], now=utc(2026, 2, 10))
    wallet_credits_expire(now=utc(2026, 3, 1, 0, 1))

    revenue_months_rebuild(from_month=None, as_of=utc(2026, 3, 31))

    rows = {(row.month, row.recognized, row.deferred) for row in RevenueMonth.objects.filter(plan=None)}
    assert rows == {
        (date(2026, 1, 1), Decimal(0), Decimal("40.00")),
        (date(2026, 2, 1), Decimal("10.00"), Decimal("30.00")),
        (date(2026, 3, 1), Decimal("30.00"), Decimal(0)),
    }
