import pytest
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.catalog.tests.factories import PlanFactory
from apps.core.errors import ValidationFailed
from apps.subscriptions.constants import SubscriptionStatus
from apps.subscriptions.models import Subscription
from apps.subscriptions.periods import utc
from apps.subscriptions.services import subscription_create

pytestmark = pytest.mark.django_db


def test_subscription_starts_its_first_period_and_is_due_at_once():
    customer = CustomerFactory(currency="EUR")
    subscription = subscription_create(customer=customer, plan=PlanFactory(), quantity=2, started_at=utc(2026, 1, 31))
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert subscription.currency == "EUR"
    assert (subscription.current_period_start_at, subscription.current_period_end_at) == (
        utc(2026, 1, 31),
        utc(2026, 2, 28),
    )
    assert subscription.next_billing_at == utc(2026, 1, 31)


def test_a_currency_the_plan_is_not_priced_in_is_refused_and_nothing_is_written():
    customer = CustomerFactory(currency="GBP")
    plan = PlanFactory(prices=[Money("10", "USD"), Money("9", "EUR")])
    with pytest.raises(ValidationFailed) as excinfo:
        subscription_create(customer=customer, plan=plan)
    assert excinfo.value.fields == {"plan": ["This plan has no price in GBP (it is priced in: EUR, USD)."]}
    assert Subscription.objects.count() == 0


@pytest.mark.parametrize("quantity", [0, -1, 1.5])
def test_bad_quantities_are_refused(quantity):
    with pytest.raises(ValidationFailed) as excinfo:
        subscription_create(customer=CustomerFactory(), plan=PlanFactory(), quantity=quantity)
    assert "quantity" in excinfo.value.fields
    assert Subscription.objects.count() == 0


def test_archived_plans_take_no_new_subscriptions():
    plan = PlanFactory(is_archived=True)
    with pytest.raises(ValidationFailed, match="archived"):
        subscription_create(customer=CustomerFactory(), plan=plan)
