from decimal import Decimal
from typing import TYPE_CHECKING

from django.db.models import Count, F, Prefetch, Q, QuerySet

from . import pricing
from .constants import ChargeKind, CouponDuration
from .models import BillableMetric, Coupon, Discount, Plan, PlanVersion, Price, Product

if TYPE_CHECKING:
    from apps.subscriptions.models import Subscription


def product_list() -> QuerySet[Product]:
    return Product.objects.all()


def billable_metric_list() -> QuerySet[BillableMetric]:
    return BillableMetric.objects.all()


def plan_version_list() -> QuerySet[PlanVersion]:
    """Versions with their charges, prices and tiers loaded (a fixed number of queries per page)."""
    return PlanVersion.objects.select_related("plan").prefetch_related("charges__prices__tiers")


def plan_list() -> QuerySet[Plan]:
    """Plans with their product and every version's charges and prices loaded."""
    return Plan.objects.select_related("product").prefetch_related(
        Prefetch("versions", queryset=PlanVersion.objects.prefetch_related("charges__prices__tiers"))
    )


def plan_version_recurring_price(*, version: PlanVersion, currency: str) -> Decimal | None:
    """What one period of the version's recurring charges costs for one unit, exact (before rounding);
    None when one of them has no price in `currency`. Uses the version's prefetched charges and prices."""
    total = Decimal(0)
    for charge in version.charges.all():
        if charge.kind != ChargeKind.RECURRING:
            continue
        price = charge.price_for(currency)
        if price is None:
            return None
        total += pricing.price_quote(price.to_spec(), quantity=Decimal(1)).exact_amount
    return total


def price_list() -> QuerySet[Price]:
    return Price.objects.select_related("charge__plan_version__plan").prefetch_related("tiers")


def coupon_list() -> QuerySet[Coupon]:
    """Coupons with their amounts and products loaded and `redemption_count` annotated."""
    return Coupon.objects.annotate(redemption_count=Count("discounts", distinct=True)).prefetch_related(
        "amounts", "products"
    )


def discount_list() -> QuerySet[Discount]:
    return Discount.objects.select_related("coupon", "customer", "subscription")


def active_discounts() -> QuerySet[Discount]:
    """Not ended, and for once/repeating coupons not yet used up."""
    return Discount.objects.filter(ended_at__isnull=True).exclude(
        Q(coupon__duration=CouponDuration.ONCE, periods_applied__gte=1)
        | Q(coupon__duration=CouponDuration.REPEATING, periods_applied__gte=F("coupon__duration_in_periods"))
    )


def discounts_applicable(*, subscription: "Subscription") -> list[Discount]:
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
