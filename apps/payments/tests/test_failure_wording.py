"""Card payment failures and Stripe statuses read as words in the reader's language; Stripe's raw code
stays in `failure_code`, where an API returns it."""

import pytest
from django.urls import reverse
from django.utils import translation

from apps.core.errors import InvalidTransition
from apps.invoices.services import invoice_void
from apps.payments.constants import PaymentMethod, PaymentProvider
from apps.payments.failures import payment_failure_text, stripe_status_text
from apps.payments.services import payment_create_pending, payment_mark_failed
from apps.payments.stripe.collection import CardPaymentNotCompleted, invoice_collectable_check, payment_outcome_check
from apps.payments.tests.factories import make_customer, make_invoice

pytestmark = pytest.mark.django_db

CHINESE = {"HTTP_ACCEPT_LANGUAGE": "zh-Hans"}


def _failed(failure_code: str, failure_message: str):
    customer = make_customer()
    invoice = make_invoice(customer, "100.00")
    payment = payment_create_pending(
        customer_id=customer.pk,
        invoice_ids=[invoice.pk],
        amount=None,
        provider=PaymentProvider.STRIPE,
        method=PaymentMethod.CARD,
        idempotency_key="invoice-attempt-1",
    )
    return payment_mark_failed(payment_id=payment.pk, failure_code=failure_code, failure_message=failure_message)


def test_the_staff_api_says_why_a_card_payment_failed_in_words_and_keeps_stripes_code(api_client, superuser):
    payment = _failed("insufficient_funds", "Your card has insufficient funds.")
    api_client.force_authenticate(superuser)
    url = reverse("api:payment-detail", args=[payment.pk])

    english = api_client.get(url).json()
    chinese = api_client.get(url, **CHINESE).json()

    assert (english["failure_code"], english["failure_message"]) == (
        "insufficient_funds",
        "The card has insufficient funds.",
    )
    assert (chinese["failure_code"], chinese["failure_message"]) == ("insufficient_funds", "银行卡余额不足。")


def test_a_code_without_words_shows_stripes_sentence_in_english_and_a_general_one_in_chinese():
    payment = _failed("rare_issuer_code", "Your bank says no.")

    assert payment.failure_text == "Your bank says no."
    with translation.override("zh-hans"):
        assert payment.failure_text == "银行卡付款失败。"


def test_the_outcome_of_a_declined_payment_is_said_in_the_readers_language():
    payment = _failed("expired_card", "Your card has expired.")

    with translation.override("zh-hans"), pytest.raises(CardPaymentNotCompleted) as refused:
        payment_outcome_check(payment)

    assert (refused.value.message, refused.value.code) == ("银行卡未扣款：银行卡已过期。", "expired_card")


def test_an_invoice_that_cannot_be_collected_names_its_status_in_words():
    invoice = make_invoice(make_customer(), "100.00")
    invoice_void(invoice_id=invoice.pk)

    with translation.override("zh-hans"), pytest.raises(InvalidTransition) as refused:
        invoice_collectable_check(invoice_id=invoice.pk)

    assert "void" not in refused.value.message
    assert "作废" in refused.value.message
    assert "void" not in refused.value.fields["invoice"][0]


@pytest.mark.parametrize(
    ("status", "english", "chinese"),
    [
        ("requires_payment_method", "waiting for a card", "等待银行卡"),
        ("requires_action", "waiting for the cardholder to confirm (3-D Secure)", "等待持卡人确认（3-D Secure）"),
        ("processing", "being processed", "处理中"),
        ("something_new", "in an unexpected state", "处于意外状态"),
    ],
)
def test_stripe_statuses_in_words(status, english, chinese):
    assert stripe_status_text(status) == english
    with translation.override("zh-hans"):
        assert stripe_status_text(status) == chinese


def test_a_failed_refund_in_words():
    with translation.override("zh-hans"):
        assert payment_failure_text(failure_code="lost_or_stolen_card") == "退款失败：银行卡已挂失或报告被盗。"
        assert payment_failure_text(failure_code="") == ""
