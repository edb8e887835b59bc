import pytest
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory, UserFactory
from apps.billing.services import bill_due_subscriptions, subscription_start
from apps.catalog.tests.factories import PlanFactory
from apps.core.errors import InvalidTransition
from apps.invoices.models import Invoice
from apps.subscriptions.constants import SUBSCRIPTION_TRANSITIONS, SubscriptionEventType, SubscriptionStatus
from apps.subscriptions.models import Subscription
from apps.subscriptions.periods import utc
from apps.subscriptions.services import subscription_cancel, subscription_cancel_undo

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscription():
    """Started 15 Jan 2026 09:00 on a 49.00 USD monthly plan; its first period is invoiced."""
    return subscription_start(
        customer=CustomerFactory(),
        plan=PlanFactory(prices=[Money("49.00", "USD")]),
        started_at=utc(2026, 1, 15, 9),
        now=utc(2026, 1, 15, 9),
    )


def _state(subscription: Subscription) -> tuple:
    subscription.refresh_from_db()
    return (
        subscription.status, subscription.cancel_at_period_end, subscription.canceled_at,
        subscription.ended_at, subscription.next_billing_at,
    )  # fmt: skip


def _events(subscription: Subscription) -> list[str]:
    return list(subscription.events.values_list("type", flat=True))


def test_cancel_at_period_end_stops_renewal_and_ends_the_subscription_then(subscription):
    staff = UserFactory(is_staff=True)
    subscription_cancel(
        subscription_id=subscription.pk, at_period_end=True, actor=staff, reason="Too expensive", now=utc(2026, 2, 1)
    )
    assert _state(subscription) == (SubscriptionStatus.ACTIVE, True, utc(2026, 2, 1), None, utc(2026, 2, 15, 9))

    assert bill_due_subscriptions(now=utc(2026, 2, 15, 8, 59)).ended_count == 0
    run = bill_due_subscriptions(now=utc(2026, 2, 15, 9))

    assert (run.ended_count, run.invoiced_count, run.due_count) == (1, 0, 0)
    assert _state(subscription) == (SubscriptionStatus.CANCELED, True, utc(2026, 2, 1), utc(2026, 2, 15, 9), None)
    assert Invoice.objects.filter(subscription=subscription).count() == 1  # only the first period
    assert _events(subscription) == [
        SubscriptionEventType.CREATED, SubscriptionEventType.CANCELLATION_SCHEDULED, SubscriptionEventType.CANCELED,
    ]  # fmt: skip
    scheduled = subscription.events.get(type=SubscriptionEventType.CANCELLATION_SCHEDULED)
    assert (scheduled.actor, scheduled.data) == (
        staff,
        {"ends_at": "2026-02-15T09:00:00+00:00", "reason": "Too expensive"},
    )
    assert bill_due_subscriptions(now=utc(2026, 6, 1)).invoiced_count == 0


def test_undo_before_the_period_ends_keeps_the_subscription_renewing(subscription):
    subscription_cancel(subscription_id=subscription.pk, at_period_end=True, now=utc(2026, 2, 1))
    subscription_cancel_undo(subscription_id=subscription.pk, now=utc(2026, 2, 10))

    run = bill_due_subscriptions(now=utc(2026, 2, 15, 9))

    assert (run.ended_count, run.invoiced_count) == (0, 1)
    assert _state(subscription) == (SubscriptionStatus.ACTIVE, False, None, None, utc(2026, 3, 15, 9))
    assert _events(subscription)[-1] == SubscriptionEventType.CANCELLATION_UNDONE


def test_scheduling_twice_changes_nothing_the_second_time(subscription):
    subscription_cancel(subscription_id=subscription.pk, at_period_end=True, now=utc(2026, 2, 1))
    subscription_cancel(subscription_id=subscription.pk, at_period_end=True, now=utc(2026, 2, 2))
    assert _state(subscription)[2] == utc(2026, 2, 1)
    assert _events(subscription).count(SubscriptionEventType.CANCELLATION_SCHEDULED) == 1


def test_cancel_now_ends_at_once_and_nothing_more_is_billed(subscription):
    subscription_cancel(subscription_id=subscription.pk, at_period_end=False, reason="Fraud", now=utc(2026, 1, 20))
    assert _state(subscription) == (SubscriptionStatus.CANCELED, False, utc(2026, 1, 20), utc(2026, 1, 20), None)
    assert bill_due_subscriptions(now=utc(2026, 5, 1)).invoiced_count == 0
    assert Invoice.objects.filter(subscription=subscription).count() == 1


@pytest.mark.parametrize("at_period_end", [True, False])
def test_a_canceled_subscription_cannot_be_canceled_again_or_undone(subscription, at_period_end):
    subscription_cancel(subscription_id=subscription.pk, at_period_end=False, now=utc(2026, 1, 20))
    before, events = _state(subscription), _events(subscription)
    with pytest.raises(InvalidTransition, match="canceled and cannot become canceled"):
        subscription_cancel(subscription_id=subscription.pk, at_period_end=at_period_end)
    with pytest.raises(InvalidTransition, match="no scheduled cancellation"):
        subscription_cancel_undo(subscription_id=subscription.pk)
    assert (_state(subscription), _events(subscription)) == (before, events)


def test_undo_without_a_scheduled_cancellation_is_refused(subscription):
    with pytest.raises(InvalidTransition) as excinfo:
        subscription_cancel_undo(subscription_id=subscription.pk)
    assert excinfo.value.fields == {"cancel_at_period_end": ["No cancellation is scheduled."]}


def test_canceled_is_final_in_the_transition_table():
    assert SUBSCRIPTION_TRANSITIONS[SubscriptionStatus.CANCELED] == frozenset()
    assert all(
        SubscriptionStatus.CANCELED in targets
        for status, targets in SUBSCRIPTION_TRANSITIONS.items()
        if status != "canceled"
    )


def test_creation_is_recorded_with_its_actor():
    staff = UserFactory(is_staff=True)
    subscription = subscription_start(
        customer=CustomerFactory(), plan=PlanFactory(), started_at=utc(2026, 1, 1), now=utc(2026, 1, 1), actor=staff
    )
    created = subscription.events.get()
    assert (created.type, created.actor, created.data["quantity"]) == (SubscriptionEventType.CREATED, staff, 1)
