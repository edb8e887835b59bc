from decimal import Decimal

import pytest
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import bill_due_subscriptions, subscription_change, subscription_start
from apps.catalog.tests.factories import PlanFactory
from apps.core.errors import ValidationFailed
from apps.invoices.models import Invoice
from apps.subscriptions.constants import SubscriptionEventType, SubscriptionStatus
from apps.subscriptions.models import Subscription
from apps.subscriptions.periods import utc
from apps.subscriptions.services import subscription_cancel

pytestmark = pytest.mark.django_db


def test_a_14_day_trial_started_20_january_bills_from_3_february():
    plan = PlanFactory(name="Pro", product__name="Hosting", trial_days=14, prices=[Money("49.00", "USD")])

    subscription = subscription_start(
        customer=CustomerFactory(currency="USD"), plan=plan, started_at=utc(2026, 1, 20, 9), now=utc(2026, 1, 20, 9)
    )

    assert subscription.status == SubscriptionStatus.TRIALING
    assert (subscription.trial_end_at, subscription.next_billing_at) == (utc(2026, 2, 3, 9), utc(2026, 2, 3, 9))
    assert not Invoice.objects.exists()  # nothing is billed during the trial
    assert bill_due_subscriptions(now=utc(2026, 2, 3, 8, 59)).invoiced_count == 0

    bill_due_subscriptions(now=utc(2026, 3, 3, 9))

    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    invoices = Invoice.objects.filter(subscription=subscription).order_by("period_start_at")
    assert [(i.period_start_at, i.period_end_at, i.total) for i in invoices] == [
        (utc(2026, 2, 3, 9), utc(2026, 3, 3, 9), Money("49.00", "USD")),
        (utc(2026, 3, 3, 9), utc(2026, 4, 3, 9), Money("49.00", "USD")),
    ]
    assert list(subscription.events.order_by("id").values_list("type", flat=True)) == [
        SubscriptionEventType.CREATED,
        SubscriptionEventType.TRIAL_ENDED,
    ]


def test_the_trial_can_be_overridden_per_subscription():
    plan = PlanFactory(trial_days=30, prices=[Money("10.00", "USD")])
    no_trial = subscription_start(customer=CustomerFactory(), plan=plan, trial_days=0, now=utc(2026, 1, 1))
    short = subscription_start(customer=CustomerFactory(), plan=plan, trial_days=7, now=utc(2026, 1, 1))

    assert (no_trial.status, no_trial.invoices.count()) == (SubscriptionStatus.ACTIVE, 1)
    assert (short.status, short.trial_end_at) == (SubscriptionStatus.TRIALING, utc(2026, 1, 8))


@pytest.mark.parametrize("days", [-1, 731, "7"])
def test_bad_trial_lengths_are_refused(days):
    with pytest.raises(ValidationFailed) as excinfo:
        subscription_start(customer=CustomerFactory(), plan=PlanFactory(), trial_days=days, now=utc(2026, 1, 1))
    assert list(excinfo.value.fields) == ["trial_days"]
    assert not Subscription.objects.exists()


def test_canceling_at_the_end_of_the_trial_bills_nothing():
    plan = PlanFactory(trial_days=14, prices=[Money("10.00", "USD")])
    subscription = subscription_start(customer=CustomerFactory(), plan=plan, now=utc(2026, 1, 1))
    subscription_cancel(subscription_id=subscription.pk, at_period_end=True, now=utc(2026, 1, 5))

    run = bill_due_subscriptions(now=utc(2026, 2, 1))

    subscription.refresh_from_db()
    assert (run.ended_count, subscription.status, subscription.ended_at) == (
        1, SubscriptionStatus.CANCELED, utc(2026, 1, 15),
    )  # fmt: skip
    assert not Invoice.objects.exists()


def test_changes_during_a_trial_are_not_prorated():
    plan = PlanFactory(trial_days=14, prices=[Money("10.00", "USD")])
    subscription = subscription_start(customer=CustomerFactory(), plan=plan, now=utc(2026, 1, 1))

    result = subscription_change(subscription_id=subscription.pk, quantity=3, now=utc(2026, 1, 5))

    assert result.preview.lines == []
    bill_due_subscriptions(now=utc(2026, 1, 15))
    assert Invoice.objects.get().total == Money(Decimal("30.00"), "USD")
