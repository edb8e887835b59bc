"""A Chinese customer's dunning emails (reminders, final notice) are written in Chinese, like their bills:
subject, plain text and HTML, the end action included."""

import pytest
from django.core import mail
from django.utils import translation

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services.simulated_clocks import simulated_clock_advance
from apps.subscriptions.periods import utc

pytestmark = pytest.mark.django_db

ENGLISH = ["Hello", "Invoice number", "Amount due", "How to pay", "Unless", "reminder", "disregard", "Due date",
           "Issued on", "Bank transfer", "your subscription"]  # fmt: skip


@pytest.fixture
def customer(test_clock):
    return CustomerFactory(
        currency="USD", test_clock=test_clock, email="ap@lin.example", name="林氏贸易", preferred_language="zh-hans"
    )


def test_a_chinese_customers_dunning_emails_are_chinese(campaign, test_clock, invoice, subscription):
    with translation.override("en"):  # the scheduler works in no customer's language
        simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 2, 5))

    number = invoice.number
    assert [message.subject for message in mail.outbox] == [
        f"提醒：Acme Cloud Ltd. 开具的发票 {number} 即将到期",
        f"逾期：Acme Cloud Ltd. 开具的发票 {number}",
        f"最后通知：Acme Cloud Ltd. 开具的发票 {number}",
    ]
    final = mail.outbox[2]
    html = final.alternatives[0][0]
    assert f"最后通知：Acme Cloud Ltd. 开具的发票 {number} 已于 2026年1月15日 到期，仍有 US$10.00 未付。" in final.body
    assert "如在 2026年1月29日 前仍未付款，您的订阅将被取消。" in final.body
    assert "林氏贸易，您好：" in final.body and "林氏贸易，您好：" in html
    assert "您的订阅将被取消" in html and 'lang="zh-hans"' in html
    for message in mail.outbox:
        for text in (message.body, message.alternatives[0][0]):
            assert [word for word in ENGLISH if word in text] == []
