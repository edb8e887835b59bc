"""An invoice that comes to below zero credits the customer's balance with a line written in the
customer's language (like every text on their bills), whoever or whatever issued it: a Chinese
customer's next bill (PDF, pdftotext) carries the Chinese credit line."""

import subprocess
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils import translation
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import bill_due_subscriptions, subscription_change, subscription_start
from apps.catalog.tests.factories import PlanFactory
from apps.invoices.constants import BillingReason, InvoiceLineKind, InvoiceStatus
from apps.invoices.models import Invoice, InvoiceItem
from apps.invoices.services import invoice_render_pdf
from apps.subscriptions.periods import utc

pytestmark = pytest.mark.django_db


def _pdf_text(invoice, tmp_path) -> str:
    invoice_render_pdf(invoice_id=invoice.pk)
    invoice.refresh_from_db()
    path = tmp_path / f"{invoice.number}.pdf"
    with invoice.pdf.open("rb") as stored:
        path.write_bytes(stored.read())
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout


@override_settings(INVOICE_DRAFT_GRACE_HOURS=0)
def test_a_chinese_customers_invoice_below_zero_credits_the_balance_in_chinese(tmp_path):
    seats = PlanFactory(name="Team", product__name="Chat", prices=[Money("10.00", "USD")])  # per seat, monthly
    customer = CustomerFactory(currency="USD", country="US", state="", preferred_language="zh-hans")
    subscription = subscription_start(customer=customer, plan=seats, quantity=3, now=utc(2026, 1, 1))
    subscription_change(subscription_id=subscription.pk, quantity=1, now=utc(2026, 1, 5))

    with translation.override("en"):  # the billing run works in no customer's language
        bill_due_subscriptions(now=utc(2026, 2, 1, 1))

    february = Invoice.objects.get(
        subscription=subscription, billing_reason=BillingReason.SUBSCRIPTION_CYCLE, period_start_at=utc(2026, 2, 1)
    )
    # 30.00 × 27/31 = 26.13 back, 10.00 × 27/31 = 8.71 and 10.00 charged: −26.13 + 8.71 + 10.00 = −7.42 (no tax)
    assert february.total == Money("-7.42", "USD") and february.status == InvoiceStatus.PAID
    credit = InvoiceItem.objects.get(kind=InvoiceLineKind.INVOICE_CREDIT)
    assert (credit.amount, credit.description, credit.explanation) == (
        Money("-7.42", "USD"),
        f"发票 {february.number} 余额抵扣",
        [f"发票 {february.number} 含税合计低于零 US$7.42，已记入余额。"],
    )

    # March's invoice (10.00) takes the credit: the bill prints it in Chinese, no English.
    bill_due_subscriptions(now=utc(2026, 3, 1, 1))
    march = Invoice.objects.get(subscription=subscription, period_start_at=utc(2026, 3, 1))
    assert [(line.kind, line.amount.amount) for line in march.lines.order_by("position")] == [
        (InvoiceLineKind.RECURRING, Decimal("10.00")),
        (InvoiceLineKind.INVOICE_CREDIT, Decimal("-7.42")),
    ]
    assert march.total == Money("2.58", "USD")  # 10.00 − 7.42
    text = _pdf_text(march, tmp_path)
    assert f"发票 {february.number} 余额抵扣" in text
    assert "Credit from invoice" not in text and "below zero" not in text


@override_settings(INVOICE_DRAFT_GRACE_HOURS=0)
def test_an_english_customers_credit_stays_english_when_issued_in_chinese():
    seats = PlanFactory(prices=[Money("10.00", "USD")])
    customer = CustomerFactory(currency="USD", country="US", state="")
    subscription = subscription_start(customer=customer, plan=seats, quantity=3, now=utc(2026, 1, 1))
    subscription_change(subscription_id=subscription.pk, quantity=1, now=utc(2026, 1, 5))
    with translation.override("zh-hans"):
        bill_due_subscriptions(now=utc(2026, 2, 1, 1))
    february = Invoice.objects.get(subscription=subscription, period_start_at=utc(2026, 2, 1))
    credit = InvoiceItem.objects.get(kind=InvoiceLineKind.INVOICE_CREDIT)
    assert (credit.description, credit.explanation) == (
        f"Credit from invoice {february.number}",
        [f"Invoice {february.number} came to 7.42 USD below zero, tax included; credited to the balance."],
    )
