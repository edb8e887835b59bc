"""Staff read why a card payment failed in words in their language (our translation of Stripe's decline
code) on the admin's payment page, with Stripe's own sentence kept beside it (and in the staff API)."""

import pytest
from django.urls import reverse

from apps.payments.constants import PaymentMethod, PaymentProvider
from apps.payments.services import payment_create_pending, payment_mark_failed
from apps.payments.tests.factories import make_customer, make_invoice

pytestmark = pytest.mark.django_db

STRIPE_SENTENCE = "Your card has insufficient funds."


@pytest.fixture
def failed_payment():
    customer = make_customer(preferred_language="zh-hans")
    invoice = make_invoice(customer, "100.00")
    payment = payment_create_pending(
        customer_id=customer.pk, invoice_ids=[invoice.pk], amount=None, provider=PaymentProvider.STRIPE,
        method=PaymentMethod.CARD, idempotency_key="invoice-attempt-1",
    )  # fmt: skip
    return payment_mark_failed(
        payment_id=payment.pk, failure_code="insufficient_funds", failure_message=STRIPE_SENTENCE
    )


def test_the_admin_payment_page_says_why_in_chinese_and_keeps_stripes_sentence(client, superuser, failed_payment):
    client.force_login(superuser)
    url = reverse("admin:payments_payment_change", args=[failed_payment.pk])

    chinese = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    english = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "失败原因" in chinese and "银行卡余额不足。" in chinese
    assert "支付服务商的原始消息（英文原文）" in chinese and STRIPE_SENTENCE in chinese
    assert f"付款 #{failed_payment.pk}" in chinese
    assert "why it failed" in english.lower() and "The card has insufficient funds." in english
    assert STRIPE_SENTENCE in english


def test_the_admin_payment_list_names_payments_in_chinese(client, superuser, failed_payment):
    client.force_login(superuser)
    page = client.get(reverse("admin:payments_payment_changelist"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert f"付款 #{failed_payment.pk}" in page and f"Payment #{failed_payment.pk}" not in page


def test_the_staff_api_keeps_stripes_sentence_beside_the_words(api_client, superuser, failed_payment):
    api_client.force_authenticate(superuser)
    body = api_client.get(
        reverse("api:payment-detail", args=[failed_payment.pk]), HTTP_ACCEPT_LANGUAGE="zh-hans"
    ).json()
    assert (body["failure_code"], body["failure_message"], body["provider_failure_message"]) == (
        "insufficient_funds", "银行卡余额不足。", STRIPE_SENTENCE,
    )  # fmt: skip
