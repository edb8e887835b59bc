"""Dunning walked on a test clock, with exact moments: reminders, overdue, retries, final notice and
the end action; recovery mid-way; exclusion; a customer's own campaign; a changed campaign."""

from decimal import Decimal

import pytest
from django.core import mail
from djmoney.money import Money

from apps.billing.services.simulated_clocks import simulated_clock_advance
from apps.payments.dunning.constants import DunningStatus
from apps.payments.dunning.models import InvoiceDunning
from apps.payments.dunning.services import (
    customer_dunning_set,
    dunning_campaign_create,
    dunning_campaign_update,
)
from apps.payments.services import payment_record_manual
from apps.subscriptions.constants import SubscriptionEventType, SubscriptionStatus
from apps.subscriptions.periods import utc

pytestmark = pytest.mark.django_db


def _history(dunning):
    return [
        (event.type, event.step, event.action_kind, event.occurred_at, event.data.get("reason", ""))
        for event in dunning.events.order_by("id")
    ]


def _subjects():
    return [(message.subject, tuple(message.to)) for message in mail.outbox]


def test_an_unpaid_transfer_invoice_walks_the_whole_campaign_to_cancellation(
    campaign, test_clock, invoice, subscription
):
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 2, 5))

    dunning = InvoiceDunning.objects.get(invoice=invoice)
    assert (dunning.status, dunning.start_reason, dunning.started_at) == ("exhausted", "schedule", utc(2026, 1, 12, 9))
    assert (dunning.amount_due_at_start, dunning.amount_recovered) == (Money("10", "USD"), Money("0", "USD"))
    assert (dunning.next_action_at, dunning.ended_at) == (None, utc(2026, 1, 29, 9))
    assert _history(dunning) == [
        ("started", None, "", utc(2026, 1, 12, 9), "schedule"),
        ("action_done", 0, "reminder_before_due", utc(2026, 1, 12, 9), ""),
        ("action_done", 1, "overdue", utc(2026, 1, 16, 9), ""),
        ("action_done", 2, "reminder_after_due", utc(2026, 1, 16, 9), ""),
        ("action_skipped", 3, "retry", utc(2026, 1, 18, 9), "the invoice is paid by transfer, not by card"),
        ("action_skipped", 4, "retry", utc(2026, 1, 20, 9), "the invoice is paid by transfer, not by card"),
        ("action_skipped", 5, "retry", utc(2026, 1, 22, 9), "the invoice is paid by transfer, not by card"),
        ("action_done", 6, "final_notice", utc(2026, 1, 25, 9), ""),
        ("action_done", 7, "end_action", utc(2026, 1, 29, 9), ""),
        ("exhausted", None, "", utc(2026, 1, 29, 9), ""),
    ]
    number = invoice.number
    assert _subjects() == [
        (f"Reminder: invoice {number} from Acme Cloud Ltd. is due soon", ("ap@customer.example",)),
        (f"Overdue: invoice {number} from Acme Cloud Ltd.", ("ap@customer.example",)),
        (f"Final notice: invoice {number} from Acme Cloud Ltd.", ("ap@customer.example",)),
    ]
    final = mail.outbox[2]
    assert "Unless it is paid by 29 Jan 2026, your subscription will be canceled." in final.body
    assert "10.00" in final.body and final.alternatives[0][1] == "text/html"
    subscription.refresh_from_db()
    assert (subscription.status, subscription.ended_at) == (SubscriptionStatus.CANCELED, utc(2026, 1, 29, 9))
    events = list(subscription.events.order_by("id").values_list("type", "occurred_at"))
    assert events[1:] == [
        (SubscriptionEventType.PAST_DUE, utc(2026, 1, 16, 9)),
        (SubscriptionEventType.CANCELED, utc(2026, 1, 29, 9)),
    ]
    invoice.refresh_from_db()
    assert invoice.status == "open"  # canceling the subscription leaves the debt on record


def test_a_payment_mid_way_recovers_the_dunning_and_stops_it(
    campaign, test_clock, invoice, subscription, django_capture_on_commit_callbacks
):
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 1, 17))
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.PAST_DUE

    with django_capture_on_commit_callbacks(execute=True):
        payment_record_manual(
            customer_id=invoice.customer_id, amount=Decimal("10.00"), currency="USD", method="bank_transfer",
            reference="TRF-1", received_at=utc(2026, 1, 17), allocations=[(invoice.pk, Decimal("10.00"))],
        )  # fmt: skip
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 1, 31, 12))

    dunning = InvoiceDunning.objects.get(invoice=invoice)
    assert (dunning.status, dunning.amount_recovered, dunning.ended_at) == (
        DunningStatus.RECOVERED,
        Money("10", "USD"),
        utc(2026, 1, 17),
    )
    assert [event[0] for event in _history(dunning)][-1] == "recovered"
    assert len(mail.outbox) == 2  # the reminders before and after the due date; no final notice
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert list(subscription.events.filter(type=SubscriptionEventType.PAYMENT_RECOVERED).values_list(
        "occurred_at", flat=True)) == [utc(2026, 1, 17)]  # fmt: skip


def test_an_excluded_customer_gets_no_reminder_and_resumes_without_late_emails(
    campaign, test_clock, invoice, subscription
):
    customer_dunning_set(customer_id=invoice.customer_id, excluded=True, note="Pays by arrangement")

    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 1, 20))

    dunning = InvoiceDunning.objects.get(invoice=invoice)
    assert dunning.status == DunningStatus.EXCLUDED
    assert mail.outbox == []
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE

    customer_dunning_set(customer_id=invoice.customer_id, excluded=False)
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 1, 26))

    dunning.refresh_from_db()
    assert _history(dunning) == [
        ("started", None, "", utc(2026, 1, 12, 9), "schedule"),
        ("excluded", None, "", utc(2026, 1, 12, 9), "customer excluded from dunning"),
        ("resumed", None, "", utc(2026, 1, 20), ""),
        ("action_skipped", 0, "reminder_before_due", utc(2026, 1, 20), "a later step was due already"),
        ("action_done", 1, "overdue", utc(2026, 1, 20), ""),  # late, but it runs: the subscription is past due
        ("action_skipped", 2, "reminder_after_due", utc(2026, 1, 20), "a later step was due already"),
        ("action_skipped", 3, "retry", utc(2026, 1, 20), "the invoice is paid by transfer, not by card"),
        ("action_skipped", 4, "retry", utc(2026, 1, 20, 9), "the invoice is paid by transfer, not by card"),
        ("action_skipped", 5, "retry", utc(2026, 1, 22, 9), "the invoice is paid by transfer, not by card"),
        ("action_done", 6, "final_notice", utc(2026, 1, 25, 9), ""),
    ]
    assert [subject for subject, _ in _subjects()] == [f"Final notice: invoice {invoice.number} from Acme Cloud Ltd."]
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.PAST_DUE


def test_a_customers_own_campaign_overrides_the_default(campaign, test_clock, invoice, subscription):
    gentle = dunning_campaign_create(
        name="Gentle", reminder_days_before_due=[5], reminder_days_after_due=[2, 9], final_notice_day=None,
        end_action="mark_uncollectible", end_action_day=30,
    )  # fmt: skip
    customer_dunning_set(customer_id=invoice.customer_id, campaign_id=gentle.pk)

    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 1, 31))

    dunning = InvoiceDunning.objects.get(invoice=invoice)
    assert (dunning.campaign, dunning.started_at) == (gentle, utc(2026, 1, 10, 9))
    assert [(kind, at) for _, _, kind, at, _ in _history(dunning)[1:]] == [
        ("reminder_before_due", utc(2026, 1, 10, 9)),
        ("overdue", utc(2026, 1, 16, 9)),
        ("reminder_after_due", utc(2026, 1, 17, 9)),
        ("reminder_after_due", utc(2026, 1, 24, 9)),
    ]
    assert (dunning.next_action_kind, dunning.next_action_at) == ("end_action", utc(2026, 2, 14, 9))


def test_changing_the_campaign_leaves_a_running_dunning_as_it_started(campaign, test_clock, invoice, subscription):
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 1, 17))
    dunning = InvoiceDunning.objects.get(invoice=invoice)
    plan_before = dunning.plan

    dunning_campaign_update(
        campaign_id=campaign.pk, final_notice_day=20, end_action="mark_uncollectible", end_action_day=40
    )
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 1, 30))

    dunning.refresh_from_db()
    assert dunning.plan == plan_before
    assert dunning.campaign_rules["end_action"] == "cancel_subscription"
    assert [(kind, at) for type_, _, kind, at, _ in _history(dunning) if type_ == "action_done"][-2:] == [
        ("final_notice", utc(2026, 1, 25, 9)),
        ("end_action", utc(2026, 1, 29, 9)),
    ]
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.CANCELED
