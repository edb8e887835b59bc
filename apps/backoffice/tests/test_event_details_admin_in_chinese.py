"""A paid invoice's and a payment's admin pages for a staff user who chose Simplified Chinese: the inline
row titles, the event type labels and the event details (labels, local times, money, choice labels, the
known stored reasons and notes) are Chinese; a staff user who chose English still reads English."""

import pytest
from django.urls import reverse

from apps.accounts.models import StaffPreference
from apps.invoices.constants import InvoiceEventType
from apps.invoices.models import Invoice, InvoiceEvent
from apps.invoices.tests.factories import make_open_invoice
from apps.payments.constants import PaymentEventType
from apps.payments.models import PaymentEvent
from apps.payments.services import invoice_mark_paid

pytestmark = pytest.mark.django_db


def _staff(client, superuser, language: str):
    StaffPreference.objects.create(user=superuser, language=language)
    client.force_login(superuser)
    return superuser


def _paid_invoice() -> Invoice:
    invoice = make_open_invoice()
    return invoice_mark_paid(invoice_id=invoice.pk, reference="REF-7")


def _invoice_page(client, invoice: Invoice) -> str:
    url = reverse("admin:invoices_invoice_change", args=[invoice.pk])
    return client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()


def _payment_page(client, payment_id: int) -> str:
    url = reverse("admin:payments_payment_change", args=[payment_id])
    return client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()


def test_a_paid_invoice_page_reads_chinese(client, superuser):
    _staff(client, superuser, "zh-hans")
    invoice = _paid_invoice()
    InvoiceEvent.objects.create(
        invoice=invoice,
        type=InvoiceEventType.CREATED,
        occurred_at=invoice.created_at,
        data={"subscription": 23, "period_start": "2026-11-06T00:00:00+00:00", "reason": "subscription_cycle"},
    )
    allocation = invoice.payment_allocations.get()

    page = _invoice_page(client, invoice)

    # Event type labels read as events, not as "creation time".
    assert "已创建" in page
    assert "已定稿" in page
    assert " at 20" not in page  # no English "<event> at <time>" row title
    # The payment allocation's row title is a Chinese sentence with the amount as money.
    assert "of payment #" not in page
    assert f"付款 #{allocation.payment_id} 中" in page
    # Event details: translated labels, the moment in the staff user's language, choice labels.
    assert "周期开始时间：2026年11月6日 00:00 UTC" in page
    assert "付款方式：银行转账" in page
    for raw in ("period_start:", "method: bank_transfer", "currency: "):
        assert raw not in page


def test_english_staff_still_read_english(client, superuser):
    _staff(client, superuser, "en")
    invoice = _paid_invoice()
    InvoiceEvent.objects.create(
        invoice=invoice,
        type=InvoiceEventType.CREATED,
        occurred_at=invoice.created_at,
        data={"period_start": "2026-11-06T00:00:00+00:00"},
    )

    page = _invoice_page(client, invoice)

    assert "Created" in page
    assert "Period start: 2026-11-06 00:00 UTC" in page
    assert "Payment method: Bank transfer" in page
    assert "已创建" not in page


def test_a_payment_page_shows_the_stored_english_notes_and_reasons_in_chinese(client, superuser):
    _staff(client, superuser, "zh-hans")
    invoice = _paid_invoice()
    payment = invoice.payment_allocations.get().payment
    stored = {"note": "The provider took the money after the payment was canceled here.", "amount": "32.13",
              "currency": "EUR"}  # fmt: skip
    PaymentEvent.objects.create(
        payment=payment, type=PaymentEventType.SUCCEEDED_AFTER_CANCEL, occurred_at=payment.created_at, data=stored
    )
    PaymentEvent.objects.create(
        payment=payment,
        type=PaymentEventType.CANCELED,
        occurred_at=payment.created_at,
        data={"reason": "PaymentIntent pi_123 was canceled."},
    )

    page = _payment_page(client, payment.pk)

    assert "此付款在本系统中已取消，但支付服务商之后仍扣了款。" in page
    assert "PaymentIntent pi_123 已取消。" in page
    assert "金额：€32.13" in page
    assert "The provider took the money" not in page
    # The stored data itself stays as written (the CSV export and the API read it raw).
    assert PaymentEvent.objects.get(type=PaymentEventType.CANCELED).data == {
        "reason": "PaymentIntent pi_123 was canceled."
    }


@pytest.mark.parametrize(
    ("language", "expected", "absent"),
    [
        ("zh-hans", ["按阈值检查每个用量和消费提醒。", "删除过期的任务结果", "每 15 分钟", "在每小时的 30 分"],
         ["apps.alerts.tasks.alerts_evaluate_all_task</td>", "Every 15 minutes", "every 15 minutes"]),
        ("en", ["Checks every usage and spending alert", "Deletes expired task results", "every 15 minutes",
                "At 30 minutes past the hour"], ["每 15 分钟"]),
    ],
)  # fmt: skip
def test_scheduled_work_reads_in_the_staff_language(client, superuser, language, expected, absent):
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    _staff(client, superuser, language)
    quarter = IntervalSchedule.objects.create(every=15, period=IntervalSchedule.MINUTES)
    half_past = CrontabSchedule.objects.create(minute="30", hour="*", timezone="UTC")
    PeriodicTask.objects.create(name="alerts-evaluate-all", task="apps.alerts.tasks.alerts_evaluate_all_task",
                                interval=quarter)  # fmt: skip
    PeriodicTask.objects.create(name="celery.backend_cleanup", task="celery.backend_cleanup", crontab=half_past)

    url = reverse("admin:django_celery_beat_periodictask_changelist")
    page = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()

    for text in expected:
        assert text in page
    for text in absent:
        assert text not in page


def test_the_audit_trail_page_shows_event_details_for_people_in_chinese(client, superuser):
    _staff(client, superuser, "zh-hans")
    invoice = _paid_invoice()
    InvoiceEvent.objects.create(
        invoice=invoice, type=InvoiceEventType.PAID, occurred_at=invoice.created_at, data={"reason": "zero amount"}
    )

    url = reverse("admin:auditlog_logentry_changelist")
    page = client.get(f"{url}?model=invoices.invoice&object_id={invoice.pk}", HTTP_ACCEPT_LANGUAGE="en")

    content = page.content.decode()
    assert "金额为零" in content
    assert "zero amount" not in content
