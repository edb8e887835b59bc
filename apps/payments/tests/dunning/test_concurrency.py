"""Two dunning runs at once never run an action twice (PostgreSQL row locks)."""

import pytest
from django.core import mail
from django.db import connection
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import subscription_start
from apps.catalog.tests.factories import PlanFactory
from apps.core.tests.concurrency import run_in_threads
from apps.payments.dunning.models import InvoiceDunning, InvoiceDunningEvent
from apps.payments.dunning.services import dunning_campaign_create, dunning_run_due
from apps.subscriptions.periods import utc

from .conftest import CAMPAIGN

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row-lock concurrency is a PostgreSQL property"),
]


def test_two_workers_at_once_send_each_reminder_exactly_once():
    dunning_campaign_create(**CAMPAIGN, is_default=True)
    plan = PlanFactory(prices=[Money("10.00", "USD")])
    for index in range(12):
        subscription_start(customer=CustomerFactory(currency="USD"), plan=plan, now=utc(2026, 1, 1, index))
    mail.outbox.clear()

    # 12 Jan 09:30 (the hourly run): the dunnings start and their reminders before the due date are due.
    first = run_in_threads(lambda _: dunning_run_due(now=utc(2026, 1, 12, 9, 30)), count=3)
    # 16 Jan 09:30: the overdue step and the reminder after the due date.
    second = run_in_threads(lambda _: dunning_run_due(now=utc(2026, 1, 16, 9, 30)), count=3)

    assert InvoiceDunning.objects.count() == 12
    assert (sum(first), sum(second)) == (12, 24)
    steps = list(InvoiceDunningEvent.objects.filter(step__isnull=False).values_list("dunning_id", "step"))
    assert len(steps) == len(set(steps)) == 36
    subjects = sorted(message.subject for message in mail.outbox)
    assert len(subjects) == 24 == len(set(subjects))  # two reminders per invoice, each sent once
    assert set(InvoiceDunning.objects.values_list("step", "next_action_kind")) == {(3, "retry")}
