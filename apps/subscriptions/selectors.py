from django.db.models import QuerySet

from apps.core.errors import NotFound

from .models import Subscription


def subscription_list() -> QuerySet[Subscription]:
    return Subscription.objects.select_related("plan_version")


def subscription_list_for_customer(*, customer_id: int) -> QuerySet[Subscription]:
    """The customer's subscriptions (the portal and the customer API), live ones first by start."""
    return (
        Subscription.objects.filter(customer_id=customer_id)
        .select_related("plan__product", "plan_version")
        .prefetch_related("scheduled_changes__plan")
        .order_by("ended_at", "-started_at", "-id")
    )


def subscription_get_for_customer(*, customer_id: int, subscription_id: int | str) -> Subscription:
    """One of the customer's subscriptions; `NotFound` for anybody else's (or an id that is no number)."""
    try:
        pk = int(subscription_id)
    except (TypeError, ValueError):
        raise NotFound("No such subscription.") from None
    subscription = subscription_list_for_customer(customer_id=customer_id).filter(pk=pk).first()
    if subscription is None:
        raise NotFound("No such subscription.")
    return subscription
