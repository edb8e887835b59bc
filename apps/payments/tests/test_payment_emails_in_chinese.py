"""The emails of card collection (the pay link of a `send_invoice` invoice) are written in the customer's
language, like their bills, whatever language the task runs in."""

import pytest
from django.core import mail
from django.utils import translation

from apps.payments.stripe.collection import invoice_pay_link_email_send
from apps.payments.tests.factories import make_customer, make_invoice

pytestmark = pytest.mark.django_db


def test_the_pay_link_email_of_a_chinese_customer_is_chinese(settings):
    settings.PORTAL_BASE_URL = "https://billing.example/"
    customer = make_customer(
        collection_method="send_invoice", email="ap@lin.example", name="林氏贸易", preferred_language="zh-hans"
    )
    invoice = make_invoice(customer, "20.00")

    with translation.override("en"):
        assert invoice_pay_link_email_send(invoice_id=invoice.pk) is True

    [message] = mail.outbox
    assert message.subject == f"在线支付发票 {invoice.number}"
    assert message.body.startswith("林氏贸易，您好：")
    assert f"发票 {invoice.number} 的应付金额为 US$20.00，到期日 " in message.body
    assert f"https://billing.example/portal/invoices/{invoice.pk}/pay/" in message.body
    assert "Hello" not in message.body and "is due" not in message.body


def test_the_pay_link_email_of_an_english_customer_stays_english_under_chinese(settings):
    customer = make_customer(collection_method="send_invoice", email="ap@kiez.example")
    invoice = make_invoice(customer, "20.00")

    with translation.override("zh-hans"):
        invoice_pay_link_email_send(invoice_id=invoice.pk)

    [message] = mail.outbox
    assert message.subject == f"Pay invoice {invoice.number} online"
    assert "20.00 USD" in message.body and "您好" not in message.body
