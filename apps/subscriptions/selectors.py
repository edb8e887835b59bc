from django.db.models import F, Prefetch, Q, QuerySet
from django.utils.translation import gettext

from apps.catalog.constants import CouponDuration
from apps.catalog.progressive import ThresholdSchedule
from apps.core.errors import NotFound

from .models import Discount, Subscription, SubscriptionPriceOverride, SubscriptionProgressiveBilling


def subscription_list() -> QuerySet[Subscription]:
    return Subscription.objects.select_related("plan_version", "progressive_billing").prefetch_related(
        "plan_version__progressive_billing",
        Prefetch(
            "price_overrides",
            queryset=SubscriptionPriceOverride.objects.select_related("charge").prefetch_related("charge__prices"),
        ),
    )


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
        raise NotFound(gettext("No such subscription.")) from None
    subscription = subscription_list_for_customer(customer_id=customer_id).filter(pk=pk).first()
    if subscription is None:
        raise NotFound(gettext("No such subscription."))
    return subscription


def discount_list() -> QuerySet[Discount]:
    return Discount.objects.select_related("coupon", "customer", "subscription")


def active_discounts() -> QuerySet[Discount]:
    """Not ended, and for once/repeating coupons not yet used up."""
    return Discount.objects.filter(ended_at__isnull=True).exclude(
        Q(coupon__duration=CouponDuration.ONCE, periods_applied__gte=1)
        | Q(coupon__duration=CouponDuration.REPEATING, periods_applied__gte=F("coupon__duration_in_periods"))
    )


def discounts_applicable(*, subscription: Subscription) -> list[Discount]:
    """The active discounts on a subscription's invoices: its own and its customer's, oldest first,
    with their coupon, the coupon's products and amounts loaded. Whether a discount covers a given
    line (product restriction) or currency is for the caller to check on the loaded coupon."""
    return list(
        active_discounts()
        .filter(Q(subscription_id=subscription.pk) | Q(customer_id=subscription.customer_id))
        .select_related("coupon")
        .prefetch_related("coupon__products", "coupon__amounts")
        .order_by("starts_at", "id")
    )


def subscription_progressive_schedule(subscription: Subscription) -> tuple[ThresholdSchedule, bool]:
    """The progressive billing thresholds in force for the subscription and whether they are its own:
    its own when it has them (empty: off), else its plan version's in its currency, else none."""
    try:
        own = subscription.progressive_billing
    except SubscriptionProgressiveBilling.DoesNotExist:
        own = None
    if own is not None:
        return own.schedule, True
    row = subscription.plan_version.progressive_billing_for(subscription.currency)
    return (row.schedule if row is not None else ThresholdSchedule()), False
