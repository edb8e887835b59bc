"""Fixtures of the dunning tests: a default campaign and a customer on a test clock with a monthly
subscription whose first invoice is open, due 15 Jan 2026."""

import pytest
from django.core import mail
from djmoney.money import Money

from apps.accounts.services import simulated_clock_create
from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import subscription_start
from apps.catalog.tests.factories import PlanFactory
from apps.invoices.models import Invoice
from apps.payments.dunning.services import dunning_campaign_create
from apps.payments.tests.stripe.conftest import localstripe, localstripe_url  # noqa: F401 - localstripe for the card tests
from apps.subscriptions.periods import utc

CAMPAIGN = {
    "name": "Standard",
    "retry_days": [3, 5, 7],
    "reminder_days_before_due": [3],
    "reminder_days_after_due": [1],
    "final_notice_day": 10,
    "end_action": "cancel_subscription",
    "end_action_day": 14,
}


@pytest.fixture(autouse=True)
def _dunning_settings(settings):
    settings.DUNNING_ACTION_HOUR = 9
    settings.INVOICE_DRAFT_GRACE_HOURS = 0
    settings.INVOICE_PAYMENT_TERMS_DAYS = 14


@pytest.fixture
def campaign(db):
    return dunning_campaign_create(**CAMPAIGN, is_default=True)


@pytest.fixture
def test_clock(db):
    return simulated_clock_create(name="Dunning", frozen_at=utc(2026, 1, 1))


@pytest.fixture
def customer(test_clock):
    return CustomerFactory(currency="USD", test_clock=test_clock, email="ap@customer.example", name="Acme Corp")


@pytest.fixture
def subscription(customer):
    plan = PlanFactory(prices=[Money("10.00", "USD")])
    return subscription_start(customer=customer, plan=plan)  # invoiced at once, due 15 Jan


@pytest.fixture
def invoice(subscription):
    invoice = Invoice.objects.get(subscription=subscription)
    assert (invoice.status, invoice.due_on.isoformat(), invoice.total) == ("open", "2026-01-15", Money("10", "USD"))
    mail.outbox.clear()  # the bill itself is emailed by the PDF task, not here
    return invoice
