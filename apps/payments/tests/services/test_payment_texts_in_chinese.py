"""What a payment writes on a customer's balance (an overpayment's credit, the charge back of a reversed
payment's credit already used) is written in the customer's language, whatever language the staff who
recorded it read: a Chinese customer's next bill (PDF, pdftotext) carries the Chinese sentences."""

import subprocess
from decimal import Decimal

import pytest
from django.utils import translation
from djmoney.money import Money

from apps.catalog.tests.factories import PlanFactory
from apps.invoices.constants import InvoiceLineKind
from apps.invoices.models import InvoiceItem
from apps.invoices.selectors import customer_balance
from apps.invoices.services import invoice_render_pdf
from apps.invoices.tests.factories import make_open_invoice
from apps.payments.constants import PaymentMethod
from apps.payments.services import payment_record_manual, payment_reverse
from apps.payments.tests.factories import RECEIVED_AT, make_customer, make_invoice
from apps.subscriptions.periods import utc
from apps.subscriptions.tests.factories import make_subscription

pytestmark = pytest.mark.django_db


def _pay(customer, amount: str, reference: str):
    return payment_record_manual(
        customer_id=customer.pk, amount=Decimal(amount), currency=customer.currency,
        method=PaymentMethod.BANK_TRANSFER, reference=reference, received_at=RECEIVED_AT,
    )  # fmt: skip


def _pdf_text(invoice, tmp_path) -> str:
    invoice_render_pdf(invoice_id=invoice.pk)
    invoice.refresh_from_db()
    path = tmp_path / "bill.pdf"
    with invoice.pdf.open("rb") as stored:
        path.write_bytes(stored.read())
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout


def test_an_overpayment_of_a_chinese_customer_is_credited_in_chinese_and_printed_on_the_next_bill(tmp_path):
    customer = make_customer(preferred_language="zh-hans")
    make_invoice(customer, "100.00")
    with translation.override("en"):  # staff record it in English
        payment = _pay(customer, "130.00", reference="SEPA-7")  # 100.00 pays the invoice, 30.00 is left

    [credit] = InvoiceItem.objects.filter(customer=customer, kind=InvoiceLineKind.PAYMENT_CREDIT)
    assert (credit.amount, credit.description, credit.explanation) == (
        Money("-30.00", "USD"),
        f"付款 #{payment.pk} 余额抵扣（SEPA-7）",
        ["收到的款项比应付金额多 US$30.00，已记入余额。"],
    )
    assert customer_balance(customer=customer) == Money("30.00", "USD")

    # The next invoice (a 20.00 fee) takes 20.00 of the credit: its bill shows the credit in Chinese.
    plan = PlanFactory(prices=[Money("20.00", "USD")])
    following = make_open_invoice(
        subscription=make_subscription(customer=customer, plan=plan, started_at=utc(2026, 3, 1))
    )
    assert following.total == Money("0.00", "USD")  # 20.00 − 20.00
    text = _pdf_text(following, tmp_path)
    assert f"付款 #{payment.pk} 余额抵扣（SEPA-7）" in text
    assert "Credit from payment" not in text and "credited to the balance" not in text


def test_an_english_customer_keeps_english_sentences_when_staff_read_chinese():
    customer = make_customer()
    make_invoice(customer, "10.00")
    with translation.override("zh-hans"):
        payment = _pay(customer, "12.50", reference="R-1")
    [credit] = InvoiceItem.objects.filter(customer=customer, kind=InvoiceLineKind.PAYMENT_CREDIT)
    assert (credit.description, credit.explanation) == (
        f"Credit from payment #{payment.pk} (R-1)",
        ["Received 2.50 USD more than was due; credited to the balance."],
    )


def test_a_reversed_payment_whose_credit_was_used_is_charged_back_in_chinese(tmp_path):
    customer = make_customer(preferred_language="zh-hans")
    make_invoice(customer, "100.00")
    payment = _pay(customer, "130.00", reference="CHQ-1")  # 30.00 to the balance
    plan = PlanFactory(prices=[Money("20.00", "USD")])
    make_open_invoice(subscription=make_subscription(customer=customer, plan=plan, started_at=utc(2026, 3, 1)))
    # 20.00 of the credit used by that invoice, 10.00 still waiting

    with translation.override("en"):
        payment_reverse(payment_id=payment.pk, reason="cheque bounced")

    [debit] = InvoiceItem.objects.filter(customer=customer, invoice__isnull=True)
    assert (debit.amount, debit.description, debit.explanation) == (
        Money("20.00", "USD"),
        f"付款 #{payment.pk} 已冲回：其余额抵扣已被使用",
        [f"付款 #{payment.pk} 在其余额抵扣已使用 US$20.00 后被冲回。"],
    )
