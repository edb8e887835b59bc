"""Two customers, A and B, each with a user, a subscription (period begun and invoiced), an open
invoice, a credit note and some usage, all on a test clock so that every amount is exact."""

from dataclasses import dataclass
from decimal import Decimal

import pytest
from djmoney.money import Money

from apps.accounts.models import Customer, CustomerMembership
from apps.accounts.services import simulated_clock_create
from apps.accounts.tests.factories import CustomerFactory, UserFactory
from apps.billing.services import subscription_start
from apps.catalog.services import billable_metric_create
from apps.catalog.tests.factories import PlanFactory, ProductFactory, add_charge
from apps.invoices.models import CreditNote, Invoice
from apps.invoices.services import credit_note_issue
from apps.portal.selectors import portal_configuration
from apps.subscriptions.models import Subscription
from apps.subscriptions.periods import utc
from apps.usage.services import usage_events_ingest

STARTED_AT = utc(2026, 3, 1)
NOW = utc(2026, 3, 16)  # half of March gone: 15 of 31 days used
PASSWORD = "correct-horse-battery"


@dataclass
class Account:
    customer: Customer
    user: object
    subscription: Subscription
    invoice: Invoice
    credit_note: CreditNote


@dataclass
class World:
    a: Account
    b: Account
    starter: object
    pro: object


def _account(name: str, *, plan, test_clock, role=CustomerMembership.Role.OWNER) -> Account:
    customer = CustomerFactory(name=name, external_id=name.lower().replace(" ", "-"), test_clock=test_clock)
    user = UserFactory(username=f"{customer.external_id}-owner", email=f"owner@{customer.external_id}.example")
    CustomerMembership.objects.create(customer=customer, user=user, role=role)
    subscription = subscription_start(customer=customer, plan=plan, started_at=STARTED_AT, now=STARTED_AT)
    invoice = Invoice.objects.get(subscription=subscription)
    credit_note = credit_note_issue(
        invoice_id=invoice.pk, reason="other", amount=Decimal("10.00"), memo="Goodwill", now=STARTED_AT
    )
    usage_events_ingest(
        events=[
            {
                "transaction_id": f"{customer.external_id}-{day}-{n}",
                "external_customer_id": customer.external_id,
                "metric_code": "api_calls",
                "timestamp": utc(2026, 3, day, 10 + n).isoformat(),
                "properties": {},
            }
            for day, count in [(2, 3), (5, 1), (15, 2)]
            for n in range(count)
        ],
        now=NOW,
    )
    invoice.refresh_from_db()
    return Account(customer, user, subscription, invoice, credit_note)


@pytest.fixture
def world(db) -> World:
    test_clock = simulated_clock_create(name="Portal tests", frozen_at=NOW)
    billable_metric_create(code="api_calls", name="API calls", aggregation="count")
    product = ProductFactory(name="Cloud")
    starter = PlanFactory(product=product, name="Starter", prices=[Money("49.00", "USD")])
    add_charge(
        starter.versions.get(), name="API calls", price_model="per_unit", kind="usage", metric_code="api_calls",
        amount=Decimal("0.01"),
    )  # fmt: skip
    pro = PlanFactory(product=product, name="Pro", prices=[Money("99.00", "USD")])
    configuration = portal_configuration()
    configuration.subscription_pause_enabled = True
    configuration.save()
    configuration.allowed_plans.set([starter, pro])
    a = _account("Alpha Labs", plan=starter, test_clock=test_clock)
    b = _account("Beta Works", plan=starter, test_clock=test_clock)
    return World(a=a, b=b, starter=starter, pro=pro)


# The local fake Stripe (localstripe on a free port of 127.0.0.1) of the payments tests.
from apps.payments.tests.stripe.conftest import localstripe, localstripe_url  # noqa: E402, F401


@pytest.fixture
def eager_tasks(settings):
    """Run the Celery tasks queued on commit in-process (as in development), e.g. the portal's emails."""
    from billing_portal.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False
