"""An invoice that comes to below zero (a credit for unused seats or a dearer plan larger than what
follows) is issued with its lines as they are and nothing due; what it came to below zero goes to
the customer's credit balance, once, and comes off their next invoices after tax."""

from datetime import date
from decimal import Decimal

import pytest
from django.template.loader import render_to_string
from django.test import override_settings
from django.utils import translation
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import (
    bill_due_subscriptions,
    subscription_change,
    subscription_start,
    subscription_upcoming_invoice,
)
from apps.billing.services.billing_chunk import billing_chunk_bill
from apps.catalog.tests.factories import PlanFactory
from apps.invoices.constants import BillingReason, InvoiceEventType, InvoiceLineKind, InvoiceStatus
from apps.invoices.models import Invoice, InvoiceItem, TaxRate
from apps.invoices.selectors import customer_balance
from apps.invoices.services.pdf import invoice_pdf_context
from apps.reports.models import CashMonth
from apps.reports.services import cash_months_rebuild
from apps.subscriptions.api.serializers import UpcomingInvoiceOutputSerializer
from apps.subscriptions.periods import utc

pytestmark = pytest.mark.django_db


def _lines(invoice):
    return [(line.kind, line.description, line.amount.amount) for line in invoice.lines.order_by("position")]


def _cycle_invoices(subscription):
    return list(
        Invoice.objects.filter(subscription=subscription, billing_reason=BillingReason.SUBSCRIPTION_CYCLE).order_by(
            "period_start_at"
        )
    )


def _state():
    """Everything a billing run writes, to compare before and after a retried run."""
    invoices = list(Invoice.objects.order_by("id").values_list("id", "number", "status", "total", "amount_paid"))
    items = list(InvoiceItem.objects.order_by("id").values_list("id", "invoice_id", "amount"))
    return invoices, items


@pytest.mark.parametrize("grace_hours", [0, 24], ids=["issued-at-once", "after-review"])
def test_three_to_one_seats_on_5_january_credits_the_balance_and_the_next_invoice_takes_it(grace_hours):
    TaxRate.objects.create(name="VAT", percentage=Decimal("19"), country="DE")
    seats = PlanFactory(name="Team", product__name="Chat", prices=[Money("10.00", "USD")])  # per seat, monthly
    customer = CustomerFactory(currency="USD", country="DE")
    subscription = subscription_start(customer=customer, plan=seats, quantity=3, now=utc(2026, 1, 1))
    subscription_change(subscription_id=subscription.pk, quantity=1, now=utc(2026, 1, 5))

    upcoming = subscription_upcoming_invoice(subscription_id=subscription.pk, now=utc(2026, 1, 20))
    assert [line.amount for line in upcoming.lines] == [Decimal("-26.13"), Decimal("8.71"), Decimal("10.00")]
    assert (upcoming.subtotal, upcoming.tax_total, upcoming.total) == (
        Decimal("-7.42"), Decimal("-1.41"), Decimal("-8.83"),
    )  # fmt: skip
    assert (upcoming.amount_due, upcoming.credited_to_balance) == (Decimal("0"), Decimal("8.83"))
    shown = UpcomingInvoiceOutputSerializer(upcoming).data
    assert (shown["total"], shown["amount_due"], shown["credited_to_balance"]) == (
        {"amount": "-8.83", "currency": "USD"}, {"amount": "0.00", "currency": "USD"},
        {"amount": "8.83", "currency": "USD"},
    )  # fmt: skip
    # The bulk path leaves it (waiting prorations) to the one-by-one path, which issues it.
    assert billing_chunk_bill(subscription_ids=[subscription.pk], now=utc(2026, 2, 1, 1)).one_by_one_ids == [
        subscription.pk
    ]

    with override_settings(INVOICE_DRAFT_GRACE_HOURS=grace_hours):
        run = bill_due_subscriptions(now=utc(2026, 2, 1, 1))
        if grace_hours:
            assert _cycle_invoices(subscription)[1].status == InvoiceStatus.DRAFT
            run = bill_due_subscriptions(now=utc(2026, 2, 2, 2))  # the next day's run issues it

    assert (run.failed_count, run.errors) == (0, [])
    february = _cycle_invoices(subscription)[1]
    assert _lines(february) == [
        ("proration", "Unused time on Chat — Team ×3", Decimal("-26.13")),  # 30.00 × 27/31
        ("proration", "Remaining time on Chat — Team ×1", Decimal("8.71")),  # 10.00 × 27/31
        ("recurring", "Chat — Team (monthly)", Decimal("10.00")),
    ]
    assert (february.subtotal, february.tax_total, february.total) == (
        Money("-7.42", "USD"), Money("-1.41", "USD"), Money("-8.83", "USD"),
    )  # fmt: skip
    assert [(tax.taxable_amount.amount, tax.tax_amount.amount) for tax in february.taxes.all()] == [
        (Decimal("-7.42"), Decimal("-1.41"))
    ]
    assert february.status == InvoiceStatus.PAID and february.number
    assert february.amount_due == Money("0.00", "USD")
    assert february.amount_paid == Money("0.00", "USD")
    credit = InvoiceItem.objects.get(kind=InvoiceLineKind.INVOICE_CREDIT)
    assert (credit.customer, credit.subscription, credit.invoice, credit.amount) == (
        customer, None, None, Money("-8.83", "USD"),
    )  # fmt: skip
    assert credit.description == f"Credit from invoice {february.number}"
    assert customer_balance(customer=customer) == Money(Decimal("8.83"), "USD")
    paid_event = february.events.get(type=InvoiceEventType.PAID)
    assert paid_event.data["credited_to_balance"] == "8.83"

    # A retried run the same day changes nothing: no second invoice, no second credit.
    before = _state()
    with override_settings(INVOICE_DRAFT_GRACE_HOURS=grace_hours):
        retried = bill_due_subscriptions(now=utc(2026, 2, 2, 3))
    assert (retried.invoiced_count, retried.finalized_count, retried.failed_count) == (0, 0, 0)
    assert _state() == before

    # March: the bulk path leaves the customer with a balance to the one-by-one path, which takes it.
    assert billing_chunk_bill(subscription_ids=[subscription.pk], now=utc(2026, 3, 1, 1)).one_by_one_ids == [
        subscription.pk
    ]
    bill_due_subscriptions(now=utc(2026, 3, 1, 1))
    march = _cycle_invoices(subscription)[2]
    assert _lines(march) == [
        ("recurring", "Chat — Team (monthly)", Decimal("10.00")),
        ("invoice_credit", f"Credit from invoice {february.number}", Decimal("-8.83")),  # after tax
    ]
    assert (march.subtotal, march.tax_total, march.total) == (
        Money("1.17", "USD"), Money("1.90", "USD"), Money("3.07", "USD"),
    )  # fmt: skip
    assert march.status == InvoiceStatus.OPEN and march.amount_due == Money("3.07", "USD")
    credit.refresh_from_db()
    assert credit.invoice == march
    assert customer_balance(customer=customer) == Money(Decimal("0"), "USD")
    assert int(march.number[-6:]) == int(february.number[-6:]) + 1  # numbering stays gapless


def test_a_plan_downgrade_prorated_now_credits_what_the_next_invoice_cannot_take():
    basic = PlanFactory(name="Basic", product__name="Hosting", prices=[Money("10.00", "USD")])
    pro = PlanFactory(name="Pro", product=basic.product, prices=[Money("60.00", "USD")])
    customer = CustomerFactory(currency="USD")
    subscription = subscription_start(customer=customer, plan=pro, now=utc(2026, 4, 1))
    subscription_change(subscription_id=subscription.pk, plan=basic, now=utc(2026, 4, 2))

    bill_due_subscriptions(now=utc(2026, 5, 1, 1))

    may = _cycle_invoices(subscription)[1]
    assert _lines(may) == [
        ("proration", "Unused time on Hosting — Pro ×1", Decimal("-58.00")),  # 60.00 × 29/30
        ("proration", "Remaining time on Hosting — Basic ×1", Decimal("9.67")),
        ("recurring", "Hosting — Basic (monthly)", Decimal("10.00")),
    ]
    assert (may.total, may.status, may.amount_due) == (
        Money("-38.33", "USD"), InvoiceStatus.PAID, Money("0.00", "USD"),
    )  # fmt: skip
    assert customer_balance(customer=customer) == Money(Decimal("38.33"), "USD")

    bill_due_subscriptions(now=utc(2026, 6, 1, 1))

    june = _cycle_invoices(subscription)[2]
    assert [line.amount.amount for line in june.lines.order_by("position")] == [Decimal("10.00"), Decimal("-10.00")]
    assert (june.total, june.status) == (Money("0.00", "USD"), InvoiceStatus.PAID)
    assert customer_balance(customer=customer) == Money(Decimal("28.33"), "USD")  # the rest waits


def test_a_downgrade_invoiced_now_is_issued_below_zero_and_credits_the_balance():
    basic = PlanFactory(name="Basic", product__name="Hosting", prices=[Money("30.00", "USD")])
    pro = PlanFactory(name="Pro", product=basic.product, prices=[Money("60.00", "USD")])
    customer = CustomerFactory(currency="USD")
    subscription = subscription_start(customer=customer, plan=pro, now=utc(2026, 4, 1))

    result = subscription_change(
        subscription_id=subscription.pk, plan=basic, proration="invoice_now", now=utc(2026, 4, 10)
    )

    invoice = result.invoice
    assert [line.amount.amount for line in invoice.lines.order_by("position")] == [
        Decimal("-42.00"), Decimal("21.00"),
    ]  # fmt: skip
    assert (invoice.billing_reason, invoice.status, invoice.total, invoice.amount_due) == (
        BillingReason.SUBSCRIPTION_UPDATE, InvoiceStatus.PAID, Money("-21.00", "USD"), Money("0.00", "USD"),
    )  # fmt: skip
    assert invoice.number
    assert customer_balance(customer=customer) == Money(Decimal("21.00"), "USD")
    bill_due_subscriptions(now=utc(2026, 5, 1, 1))
    may = _cycle_invoices(subscription)[1]
    assert (may.total, customer_balance(customer=customer)) == (Money("9.00", "USD"), Money(Decimal("0"), "USD"))


def test_the_bill_of_an_invoice_below_zero_says_what_went_to_the_balance_and_that_nothing_is_due():
    basic = PlanFactory(name="Basic", product__name="Hosting", prices=[Money("30.00", "USD")])
    pro = PlanFactory(name="Pro", product=basic.product, prices=[Money("60.00", "USD")])
    customer = CustomerFactory(currency="USD")
    subscription = subscription_start(customer=customer, plan=pro, now=utc(2026, 4, 1))
    invoice = subscription_change(
        subscription_id=subscription.pk, plan=basic, proration="invoice_now", now=utc(2026, 4, 10)
    ).invoice

    html = " ".join(render_to_string("invoices/invoice_pdf.html", invoice_pdf_context(invoice)).split())

    assert "Credited to your balance</th><td>21.00 USD</td>" in html
    assert "Amount due</th><td>0.00 USD</td>" in html
    assert "Nothing to pay" in html
    assert "21.00 USD has been credited to your account balance" in html
    assert "Payment received" not in html
    with translation.override("zh-hans"):
        chinese = render_to_string("invoices/invoice_pdf.html", invoice_pdf_context(invoice))
    assert "已记入您的余额" in chinese
    assert "无需付款" in chinese


def test_the_invoiced_figure_counts_an_invoice_below_zero_once():
    seats = PlanFactory(name="Team", product__name="Chat", prices=[Money("10.00", "USD")])
    customer = CustomerFactory(currency="USD")
    subscription = subscription_start(customer=customer, plan=seats, quantity=3, now=utc(2026, 1, 1))
    subscription_change(subscription_id=subscription.pk, quantity=1, now=utc(2026, 1, 5))
    for month in (2, 3):
        bill_due_subscriptions(now=utc(2026, month, 1, 1))
    february, march = _cycle_invoices(subscription)[1:3]
    assert (february.total, march.total) == (Money("-7.42", "USD"), Money("2.58", "USD"))  # 10.00 − 7.42

    cash_months_rebuild(from_month=None)

    invoiced = dict(CashMonth.objects.filter(currency="USD").values_list("month", "invoiced"))
    # February as issued; March as billed (10.00), its 7.42 settled by February's credit.
    assert (invoiced[date(2026, 2, 1)], invoiced[date(2026, 3, 1)]) == (Decimal("-7.42"), Decimal("10.00"))
    assert sum(invoiced.values()) == Decimal("32.58")  # January 30.00, February −7.42, March 10.00
