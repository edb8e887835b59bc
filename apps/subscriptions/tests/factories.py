from datetime import datetime

from apps.accounts.models import Customer
from apps.accounts.tests.factories import CustomerFactory
from apps.catalog.models import Plan
from apps.catalog.tests.factories import PlanFactory
from apps.subscriptions.models import Subscription
from apps.subscriptions.services import subscription_create


def make_subscription(
    *, customer: Customer | None = None, plan: Plan | None = None, quantity: int = 1, started_at: datetime | None = None
) -> Subscription:
    """A subscription created the way the product creates them (through the service)."""
    return subscription_create(
        customer=customer or CustomerFactory(),
        plan=plan or PlanFactory(),
        quantity=quantity,
        started_at=started_at,
    )
