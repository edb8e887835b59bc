"""Story 3: a customer who pays by bank transfer leaves an invoice unpaid, goes through the dunning
campaign's steps as a test clock moves on (reminders, the subscription past due, retries skipped
because nothing can be charged by card), pays by transfer, recovers, and is billed normally after.
Every invoice is asserted to the cent; every amount is worked out by hand from the plan price.

The cast (USD; a customer in New York State, which pays its sales tax, 8.875 %, added on top):
- Project Tracker — Team: 12.00 per seat per month; the customer has 5 seats.

The rules used (docs/billing-rules.md, docs/payments.md "Dunning"): invoices are due 14 days after
issue; a dunning starts at the campaign's first reminder before the due date; the invoice is overdue
(its subscription past due) the day after its due date; reminders and the final notice are counted
in days from the due date, at 09:00 UTC; retries are counted from the due date when no payment has
failed, and skipped for an invoice paid by transfer; a payment that settles the invoice ends the
dunning recovered and the subscription is active again; nothing more is sent.
"""

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from django.core import mail
from djmoney.money import Money

from apps.accounts.services import customer_create, simulated_clock_create
from apps.billing.services import subscription_start
from apps.billing.services.simulated_clocks import simulated_clock_advance
from apps.catalog.services import plan_create, product_create
from apps.invoices.services.taxes import tax_rate_create
from apps.payments.dunning.constants import DunningStatus
from apps.payments.dunning.models import InvoiceDunning
from apps.payments.dunning.services import dunning_campaign_create
from apps.payments.services import payment_record_manual
from apps.subscriptions.constants import SubscriptionEventType, SubscriptionStatus
from apps.subscriptions.periods import utc

from .helpers import Bill, Line, Tax, bills_of

pytestmark = pytest.mark.django_db

D = Decimal
SALES_TAX = "Sales tax"
FEE = "Project Tracker — Team (monthly)"


def _monthly(*, number, start, end, due_on):
    """A plain monthly invoice of the 5 seats for [start, end), issued when the period begins.
    5 × 12.00 = 60.00; sales tax 60.00 × 8.875 % = 5.325 → 5.33 (half up); total 65.33."""
    return Bill(
        number=number, status="open", billing_reason="subscription_cycle", period_start_at=start, period_end_at=end,
        issued_at=start, due_on=due_on, currency="USD",
        lines=[Line("recurring", FEE, start, end, D(5), D("60.00"))],
        subtotal=D("60.00"), taxes=[Tax(SALES_TAX, D("8.875"), D("60.00"), D("5.33"))], tax_total=D("5.33"),
        total=D("65.33"), amount_paid=D(0), amount_due=D("65.33"),
    )  # fmt: skip


def _pay(customer, bill: Bill, *, received_at, capture) -> Bill:
    """The customer's bank transfer, recorded by staff (the payment's signals run after commit, as in
    production); the same bill, paid."""
    with capture(execute=True):
        payment_record_manual(
            customer_id=customer.pk, amount=bill.total, currency="USD", method="bank_transfer",
            reference=bill.number, received_at=received_at,
        )  # fmt: skip
    return replace(bill, status="paid", amount_paid=bill.total, amount_due=D(0))


def _history(dunning):
    return [(event.type, event.action_kind, event.occurred_at) for event in dunning.events.order_by("id")]


def test_an_unpaid_invoice_is_dunned_then_paid_and_the_customer_recovers(django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    dunning_campaign_create(
        name="Standard", reminder_days_before_due=[3], reminder_days_after_due=[1, 7], retry_days=[3, 5],
        final_notice_day=10, end_action="cancel_subscription", end_action_day=21, is_default=True,
    )  # fmt: skip
    tax_rate_create(name=SALES_TAX, percentage=D("8.875"), country="US", region="NY")
    tracker = product_create(code="tracker", name="Project Tracker")
    team = plan_create(product=tracker, code="team", name="Team", prices=[Money("12.00", "USD")])
    test_clock = simulated_clock_create(name="Story 3", frozen_at=utc(2026, 3, 15, 10))
    customer = customer_create(
        name="Hudson Freight LLC", email="ap@hudson.example", country="US", state="NY", currency="USD",
        test_clock=test_clock,
    )  # fmt: skip

    # --- 15 Mar 10:00: 5 seats; the first month is billed at once and paid on time (20 Mar, before
    # the first reminder of 26 Mar): no dunning.
    subscription = subscription_start(customer=customer, plan=team, quantity=5)
    march = _monthly(
        number="INV-2026-000001", start=utc(2026, 3, 15, 10), end=utc(2026, 4, 15, 10), due_on=date(2026, 3, 29)
    )
    assert bills_of(customer) == [march]
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 3, 20))
    march = _pay(customer, march, received_at=utc(2026, 3, 20), capture=capture)

    # --- 15 Apr 10:00: the second month, due 29 Apr. Nobody pays it.
    # The campaign, counted from the due date 29 Apr (actions at 09:00 UTC):
    #   reminder 3 days before    → 26 Apr (the dunning starts then)
    #   overdue, the day after    → 30 Apr (the subscription goes past due)
    #   reminders 1 and 7 days after → 30 Apr, 6 May
    #   retries 3 and 5 days after   → 2 May, 4 May (skipped: the invoice is paid by transfer)
    #   final notice 10 days after   → 9 May;  end action (cancel) 21 days after → 20 May
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 5, 7, 12))
    april = _monthly(
        number="INV-2026-000002", start=utc(2026, 4, 15, 10), end=utc(2026, 5, 15, 10), due_on=date(2026, 4, 29)
    )
    assert bills_of(customer) == [march, april]
    [dunning] = InvoiceDunning.objects.filter(customer=customer).select_related("invoice")
    assert (dunning.invoice.number, dunning.status, dunning.amount_due_at_start) == (
        "INV-2026-000002", DunningStatus.ACTIVE, Money("65.33", "USD"),
    )  # fmt: skip
    assert _history(dunning) == [
        ("started", "", utc(2026, 4, 26, 9)),
        ("action_done", "reminder_before_due", utc(2026, 4, 26, 9)),
        ("action_done", "overdue", utc(2026, 4, 30, 9)),
        ("action_done", "reminder_after_due", utc(2026, 4, 30, 9)),
        ("action_skipped", "retry", utc(2026, 5, 2, 9)),
        ("action_skipped", "retry", utc(2026, 5, 4, 9)),
        ("action_done", "reminder_after_due", utc(2026, 5, 6, 9)),
    ]
    assert (dunning.next_action_kind, dunning.next_action_at) == ("final_notice", utc(2026, 5, 9, 9))
    assert [message.subject for message in mail.outbox] == [
        "Reminder: invoice INV-2026-000002 from Acme Cloud Ltd. is due soon",
        "Overdue: invoice INV-2026-000002 from Acme Cloud Ltd.",
        "Overdue: invoice INV-2026-000002 from Acme Cloud Ltd.",
    ]
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.PAST_DUE

    # --- 7 May 12:00: the customer's transfer of 65.33 (received 11:15) is recorded: the dunning ends
    # recovered, the subscription is active again, and the final notice and the end action never come.
    april = _pay(customer, april, received_at=utc(2026, 5, 7, 11, 15), capture=capture)
    dunning.refresh_from_db()
    assert (dunning.status, dunning.amount_recovered, dunning.ended_at, dunning.next_action_at) == (
        DunningStatus.RECOVERED, Money("65.33", "USD"), utc(2026, 5, 7, 12), None,
    )  # fmt: skip
    assert _history(dunning)[-1] == ("recovered", "", utc(2026, 5, 7, 12))
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert list(subscription.events.order_by("id").values_list("type", "occurred_at"))[1:] == [
        (SubscriptionEventType.PAST_DUE, utc(2026, 4, 30, 9)),
        (SubscriptionEventType.PAYMENT_RECOVERED, utc(2026, 5, 7, 12)),
    ]

    # --- 15 May and 15 Jun: normal months again, each paid a few days after it is issued.
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 5, 20))
    may = _monthly(
        number="INV-2026-000003", start=utc(2026, 5, 15, 10), end=utc(2026, 6, 15, 10), due_on=date(2026, 5, 29)
    )
    assert bills_of(customer) == [march, april, may]
    may = _pay(customer, may, received_at=utc(2026, 5, 20), capture=capture)
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 6, 17))
    june = _monthly(
        number="INV-2026-000004", start=utc(2026, 6, 15, 10), end=utc(2026, 7, 15, 10), due_on=date(2026, 6, 29)
    )
    assert bills_of(customer) == [march, april, may, june]
    june = _pay(customer, june, received_at=utc(2026, 6, 17), capture=capture)

    # --- 10 Jul: past every moment of the old campaign (the end action's 20 May) and of the paid
    # invoices' own (first reminders 26 May and 26 Jun): nothing more happened.
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 7, 10))
    assert bills_of(customer) == [march, april, may, june]
    assert [
        (d.invoice.number, d.status) for d in InvoiceDunning.objects.filter(customer=customer).select_related("invoice")
    ] == [("INV-2026-000002", DunningStatus.RECOVERED)]
    assert len(mail.outbox) == 3  # no final notice, nothing about May or June
    subscription.refresh_from_db()
    assert (subscription.status, subscription.current_period_start_at) == (
        SubscriptionStatus.ACTIVE, utc(2026, 6, 15, 10),
    )  # fmt: skip
