"""The periodic dunning task: declared in the beat schedule, runs real-clock customers only (test clock
customers are left to their clocks), reconciles invoices settled elsewhere."""

import pytest
from django.conf import settings
from django.core import mail
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import subscription_start
from apps.catalog.tests.factories import PlanFactory
from apps.invoices.models import Invoice
from apps.invoices.services import invoice_void
from apps.payments.dunning.models import InvoiceDunning
from apps.payments.dunning.tasks import dunning_run_task
from apps.subscriptions.periods import utc

pytestmark = pytest.mark.django_db


def test_the_task_is_scheduled_hourly():
    entry = settings.CELERY_BEAT_SCHEDULE["dunning-run-hourly"]
    assert entry["task"] == dunning_run_task.name == "apps.payments.dunning.tasks.dunning_run_task"
    assert (entry["schedule"].minute, len(entry["schedule"].hour)) == ({30}, 24)


def test_the_task_runs_real_clock_customers_and_leaves_test_clock_customers_alone(campaign, invoice):
    real = subscription_start(
        customer=CustomerFactory(currency="USD", email="real@customer.example"),
        plan=PlanFactory(prices=[Money("30.00", "USD")]),
        now=utc(2026, 1, 1),
    )
    real_invoice = Invoice.objects.get(subscription=real)
    mail.outbox.clear()

    ran = dunning_run_task(as_of="2026-01-12T09:30:00+00:00")

    assert ran == 1
    assert list(InvoiceDunning.objects.values_list("invoice_id", "started_at", "step")) == [
        (real_invoice.pk, utc(2026, 1, 12, 9, 30), 1)
    ]
    assert [message.to for message in mail.outbox] == [["real@customer.example"]]
    assert dunning_run_task(as_of="2026-01-12T10:30:00+00:00") == 0  # nothing twice


def test_a_voided_invoice_closes_its_dunning(campaign):
    subscription = subscription_start(
        customer=CustomerFactory(currency="USD"), plan=PlanFactory(prices=[Money("30.00", "USD")]), now=utc(2026, 1, 1)
    )
    invoice = Invoice.objects.get(subscription=subscription)
    dunning_run_task(as_of="2026-01-12T09:30:00+00:00")
    invoice_void(invoice_id=invoice.pk, reason="Billed by mistake", now=utc(2026, 1, 13))
    mail.outbox.clear()

    dunning_run_task(as_of="2026-01-20T09:30:00+00:00")

    dunning = InvoiceDunning.objects.get(invoice=invoice)
    assert (dunning.status, dunning.ended_at, dunning.next_action_at) == ("closed", utc(2026, 1, 20, 9, 30), None)
    assert mail.outbox == []
