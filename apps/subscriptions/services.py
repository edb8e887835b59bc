from datetime import datetime
from typing import Any

from django.db import transaction

from apps.accounts.models import Customer
from apps.catalog.models import Plan
from apps.core import clock
from apps.core.errors import InvalidTransition, NotFound, ValidationFailed
from apps.core.validation import validate_instance

from .constants import SUBSCRIPTION_TRANSITIONS, SubscriptionEventType, SubscriptionStatus
from .events import subscription_event_record
from .models import Subscription
from .periods import period_containing


@transaction.atomic
def subscription_create(
    *,
    customer: Customer,
    plan: Plan,
    quantity: int = 1,
    started_at: datetime | None = None,
    actor: Any = None,
    now: datetime | None = None,
) -> Subscription:
    """Subscribe a customer to a plan, in the customer's billing currency.

    The first period starts at `started_at` (default: now) and is invoiced by the next billing run,
    or at once by the caller (see `apps.invoices.services.subscription_bill_due`).
    """
    now = now or clock.now()
    started_at = clock.ensure_aware(started_at or now)
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
    subscription_event_record(
        subscription=subscription,
        type=SubscriptionEventType.CREATED,
        actor=actor,
        occurred_at=now,
        data={"plan": plan.code, "quantity": quantity, "started_at": started_at.isoformat()},
    )
    return subscription


def subscription_lock(subscription_id: int) -> Subscription:
    subscription = Subscription.objects.select_for_update(of=("self",)).filter(pk=subscription_id).first()
    if subscription is None:
        raise NotFound(f"Subscription {subscription_id} does not exist.")
    return subscription


def subscription_ensure_transition(subscription: Subscription, target: str) -> None:
    if target not in SUBSCRIPTION_TRANSITIONS[subscription.status]:
        raise InvalidTransition(
            f"Subscription #{subscription.pk} is {subscription.get_status_display().lower()} and cannot become "
            f"{SubscriptionStatus(target).label.lower()}.",
            fields={"status": [f"Not allowed from {subscription.status} to {target}."]},
        )


@transaction.atomic
def subscription_cancel(
    *,
    subscription_id: int,
    at_period_end: bool,
    actor: Any = None,
    reason: str = "",
    now: datetime | None = None,
) -> Subscription:
    """Cancel at once (nothing more is billed) or at the end of the current period (it does not renew;
    undo with `subscription_cancel_undo` until then). Credits for unused time come with credit notes."""
    now = now or clock.now()
    subscription = subscription_lock(subscription_id)
    subscription_ensure_transition(subscription, SubscriptionStatus.CANCELED)
    if at_period_end:
        if subscription.cancel_at_period_end:
            return subscription  # already scheduled: asking twice changes nothing
        subscription.cancel_at_period_end = True
        subscription.canceled_at = now
        subscription.cancellation_reason = reason
        subscription.save(update_fields=["cancel_at_period_end", "canceled_at", "cancellation_reason", "updated_at"])
        subscription_event_record(
            subscription=subscription, type=SubscriptionEventType.CANCELLATION_SCHEDULED, actor=actor,
            occurred_at=now, data={"ends_at": subscription.current_period_end_at.isoformat(), "reason": reason},
        )  # fmt: skip
        return subscription
    subscription.status = SubscriptionStatus.CANCELED
    subscription.cancel_at_period_end = False
    subscription.canceled_at = now
    subscription.ended_at = now
    subscription.next_billing_at = None
    subscription.cancellation_reason = reason
    subscription.save(
        update_fields=[
            "status", "cancel_at_period_end", "canceled_at", "ended_at", "next_billing_at",
            "cancellation_reason", "updated_at",
        ]
    )  # fmt: skip
    subscription_event_record(
        subscription=subscription, type=SubscriptionEventType.CANCELED, actor=actor, occurred_at=now,
        data={"immediately": True, "reason": reason},
    )  # fmt: skip
    return subscription


@transaction.atomic
def subscription_cancel_undo(*, subscription_id: int, actor: Any = None, now: datetime | None = None) -> Subscription:
    """Keep a subscription whose cancellation at period end is scheduled: it renews as usual."""
    subscription = subscription_lock(subscription_id)
    if subscription.status == SubscriptionStatus.CANCELED or not subscription.cancel_at_period_end:
        raise InvalidTransition(
            f"Subscription #{subscription.pk} has no scheduled cancellation to undo.",
            fields={"cancel_at_period_end": ["No cancellation is scheduled."]},
        )
    subscription.cancel_at_period_end = False
    subscription.canceled_at = None
    subscription.cancellation_reason = ""
    subscription.save(update_fields=["cancel_at_period_end", "canceled_at", "cancellation_reason", "updated_at"])
    subscription_event_record(
        subscription=subscription, type=SubscriptionEventType.CANCELLATION_UNDONE, actor=actor, occurred_at=now
    )
    return subscription


def subscription_end_if_due(*, subscription_id: int, now: datetime) -> bool:
    """End a subscription canceled at period end once that period is over. Returns whether it ended
    (False when it is not due, or another transaction holds it)."""
    with transaction.atomic():
        subscription = (
            Subscription.objects.select_for_update(skip_locked=True, of=("self",))
            .due_to_end(now)
            .filter(pk=subscription_id)
            .first()
        )
        if subscription is None:
            return False
        ended_at = subscription.next_billing_at
        subscription.status = SubscriptionStatus.CANCELED
        subscription.ended_at = ended_at
        subscription.next_billing_at = None
        subscription.save(update_fields=["status", "ended_at", "next_billing_at", "updated_at"])
        subscription_event_record(
            subscription=subscription, type=SubscriptionEventType.CANCELED, occurred_at=now,
            data={"at_period_end": True, "ended_at": ended_at.isoformat() if ended_at else None},
        )  # fmt: skip
        return True
