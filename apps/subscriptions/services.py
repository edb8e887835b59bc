from datetime import datetime

from django.db import transaction

from apps.accounts.models import Customer
from apps.catalog.models import Plan
from apps.core import clock
from apps.core.errors import ValidationFailed
from apps.core.validation import validate_instance

from .constants import SubscriptionStatus
from .models import Subscription
from .periods import period_containing


@transaction.atomic
def subscription_create(
    *,
    customer: Customer,
    plan: Plan,
    quantity: int = 1,
    started_at: datetime | None = None,
) -> Subscription:
    """Subscribe a customer to a plan, in the customer's billing currency.

    The first period starts at `started_at` (default: now) and is invoiced by the next billing run,
    or at once by the caller (see `apps.invoices.services.subscription_bill_due`).
    """
    started_at = clock.ensure_aware(started_at or clock.now())
    if plan.is_archived:
        raise ValidationFailed(
            "This plan is archived.", fields={"plan": ["This plan is archived and takes no new subscriptions."]}
        )
    if plan.price_for(customer.currency) is None:
        available = ", ".join(sorted(str(price.amount.currency) for price in plan.prices.all())) or "none"
        raise ValidationFailed(
            f"Plan {plan.code!r} has no price in {customer.currency}, the customer's billing currency.",
            fields={"plan": [f"This plan has no price in {customer.currency} (it is priced in: {available})."]},
        )
    if not isinstance(quantity, int) or quantity < 1:
        raise ValidationFailed(
            "Quantity must be a whole number of at least 1.", fields={"quantity": ["Must be at least 1."]}
        )
    period = period_containing(started_at, plan.interval, plan.interval_count, started_at)
    subscription = Subscription(
        customer=customer,
        plan=plan,
        quantity=quantity,
        currency=customer.currency,
        status=SubscriptionStatus.ACTIVE,
        billing_anchor_at=started_at,
        started_at=started_at,
        current_period_start_at=period.start,
        current_period_end_at=period.end,
        next_billing_at=period.start,
    )
    validate_instance(subscription)
    subscription.save()
    return subscription
