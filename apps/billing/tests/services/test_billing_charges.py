"""The billing run prices every recurring charge of the subscription's plan version through the
pricing engine, one invoice line per charge (plus a minimum true-up line), each rounded once."""

from decimal import Decimal

import pytest
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import bill_due_subscriptions
from apps.catalog.constants import VersionMigrationTiming
from apps.catalog.models import PlanVersion
from apps.catalog.tests.factories import PlanFactory, add_charge
from apps.core.errors import InvalidTransition, ValidationFailed
from apps.invoices.constants import InvoiceLineKind
from apps.invoices.models import Invoice
from apps.subscriptions.constants import SubscriptionEventType
from apps.subscriptions.periods import utc
from apps.subscriptions.services import subscription_cancel, subscription_migrate_version
from apps.subscriptions.tests.factories import make_subscription

pytestmark = pytest.mark.django_db


def hybrid_plan():
    """Platform fee 99 flat; seats graduated (1–5 at 10.00, 6+ at 8.00); support 2.00 per seat with a
    25.00 minimum; API calls a usage charge (billed in arrears by the usage run, not here)."""
    plan = PlanFactory(prices=[], name="Team", product__name="Workspace")
    version = PlanVersion.objects.create(plan=plan, number=1)
    add_charge(version, name="Platform fee", price_model="flat", amount=Decimal("99"))
    add_charge(version, name="Seats", price_model="graduated", tiers=[("5", "10", "0"), (None, "8", "0")])
    add_charge(version, name="Support", price_model="per_unit", amount=Decimal("2"), minimum_amount=Decimal("25"))
    add_charge(
        version, name="API calls", kind="usage", metric_code="api_calls", price_model="per_unit",
        amount=Decimal("0.0001"),
    )  # fmt: skip
    return plan


def _lines(invoice):
    return [
        (line.kind, line.description, line.quantity, line.unit_amount, line.amount, line.explanation)
        for line in invoice.lines.order_by("position")
    ]


def test_each_recurring_charge_is_a_line_priced_by_its_model():
    subscription = make_subscription(plan=hybrid_plan(), quantity=7, started_at=utc(2026, 3, 1))

    bill_due_subscriptions(now=utc(2026, 3, 1, 1))

    invoice = Invoice.objects.get(subscription=subscription)
    assert _lines(invoice) == [
        ("recurring", "Workspace — Team: Platform fee (monthly)", Decimal(1), Money("99", "USD"),
         Money("99.00", "USD"), []),
        ("recurring", "Workspace — Team: Seats (monthly)", Decimal(7), None, Money("66.00", "USD"),
         ["Units 1–5: 5 × 10.00 USD", "Units 6–7: 2 × 8.00 USD"]),
        ("recurring", "Workspace — Team: Support (monthly)", Decimal(7), Money("2", "USD"), Money("14.00", "USD"), []),
        ("minimum", "Workspace — Team: Support: minimum charge true-up", Decimal(1), Money("11.00", "USD"),
         Money("11.00", "USD"), ["Minimum charge per period 25.00 USD; this charge came to 14.00 USD."]),
    ]  # fmt: skip
    assert (invoice.subtotal, invoice.total) == (Money("190.00", "USD"), Money("190.00", "USD"))


def test_a_scheduled_version_migration_applies_when_the_next_period_begins():
    plan = PlanFactory(prices=[Money("10.00", "USD")])
    subscription = make_subscription(plan=plan, quantity=2, started_at=utc(2026, 1, 15))
    bill_due_subscriptions(now=utc(2026, 1, 15, 1))
    version_2 = PlanVersion.objects.create(plan=plan, number=2)
    add_charge(version_2, name="Subscription fee", amount=Decimal("12.50"), price_model="per_unit")

    subscription_migrate_version(
        subscription_id=subscription.pk, version=version_2, timing=VersionMigrationTiming.NEXT_PERIOD,
        now=utc(2026, 1, 20),
    )  # fmt: skip
    subscription.refresh_from_db()
    assert (subscription.plan_version.number, subscription.pending_plan_version) == (1, version_2)

    bill_due_subscriptions(now=utc(2026, 2, 15, 1))

    january, february = Invoice.objects.filter(subscription=subscription).order_by("period_start_at")
    assert (january.total, february.total) == (Money("20.00", "USD"), Money("25.00", "USD"))
    subscription.refresh_from_db()
    assert (subscription.plan_version, subscription.pending_plan_version) == (version_2, None)
    assert list(subscription.events.order_by("id").values_list("type", "data__to_version")) == [
        (SubscriptionEventType.CREATED, None),
        (SubscriptionEventType.VERSION_MIGRATION_SCHEDULED, 2),
        (SubscriptionEventType.VERSION_MIGRATED, 2),
    ]


def test_migrating_now_prices_the_next_invoice_and_leaves_the_billed_period_alone():
    plan = PlanFactory(prices=[Money("10.00", "USD")])
    subscription = make_subscription(plan=plan, started_at=utc(2026, 1, 15))
    bill_due_subscriptions(now=utc(2026, 1, 15, 1))
    version_2 = PlanVersion.objects.create(plan=plan, number=2)
    add_charge(version_2, name="Base", price_model="flat", amount=Decimal("30"))

    subscription_migrate_version(
        subscription_id=subscription.pk, version=version_2, timing=VersionMigrationTiming.NOW, now=utc(2026, 1, 20)
    )
    again = subscription_migrate_version(
        subscription_id=subscription.pk, version=version_2, timing=VersionMigrationTiming.NOW, now=utc(2026, 1, 21)
    )
    bill_due_subscriptions(now=utc(2026, 2, 15, 1))

    totals = list(Invoice.objects.filter(subscription=subscription).order_by("period_start_at").values_list("total"))
    assert totals == [(Decimal("10.00"),), (Decimal("30.00"),)]
    assert again.plan_version == version_2
    assert subscription.events.filter(type=SubscriptionEventType.VERSION_MIGRATED).count() == 1  # asked twice


def test_version_migration_refusals_change_nothing():
    plan = PlanFactory(prices=[Money("10.00", "USD")])
    subscription = make_subscription(plan=plan, customer=CustomerFactory(currency="USD"))
    other_plan_version = PlanFactory(prices=[Money("5.00", "USD")]).current_version
    euro_only = PlanVersion.objects.create(plan=plan, number=2)
    add_charge(euro_only, name="Fee", currency="EUR", amount=Decimal("9"), price_model="flat")

    with pytest.raises(ValidationFailed, match="is not a version of"):
        subscription_migrate_version(subscription_id=subscription.pk, version=other_plan_version)
    with pytest.raises(ValidationFailed, match="has no price in USD"):
        subscription_migrate_version(subscription_id=subscription.pk, version=euro_only)
    subscription_cancel(subscription_id=subscription.pk, at_period_end=False)
    version_3 = PlanVersion.objects.create(plan=plan, number=3)
    add_charge(version_3, name="Fee", amount=Decimal("9"), price_model="flat")
    with pytest.raises(InvalidTransition, match="canceled"):
        subscription_migrate_version(subscription_id=subscription.pk, version=version_3)

    subscription.refresh_from_db()
    assert (subscription.plan_version.number, subscription.pending_plan_version) == (1, None)
    assert not subscription.events.filter(type__startswith="version").exists()


def test_invoice_lines_carry_their_kind_and_explanation_in_the_api(api_client, superuser):
    subscription = make_subscription(plan=hybrid_plan(), quantity=7, started_at=utc(2026, 3, 1))
    bill_due_subscriptions(now=utc(2026, 3, 1, 1))
    invoice = Invoice.objects.get(subscription=subscription)
    api_client.force_authenticate(superuser)

    lines = api_client.get(f"/api/v1/invoices/{invoice.pk}").json()["lines"]

    assert [(line["kind"], line["unit_amount"], line["amount"]["amount"]) for line in lines] == [
        (InvoiceLineKind.RECURRING, {"amount": "99.00", "currency": "USD"}, "99.00"),
        (InvoiceLineKind.RECURRING, None, "66.00"),
        (InvoiceLineKind.RECURRING, {"amount": "2.00", "currency": "USD"}, "14.00"),
        (InvoiceLineKind.MINIMUM, {"amount": "11.00", "currency": "USD"}, "11.00"),
    ]
    assert lines[1]["explanation"] == ["Units 1–5: 5 × 10.00 USD", "Units 6–7: 2 × 8.00 USD"]
