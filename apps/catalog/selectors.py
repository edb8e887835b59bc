from decimal import Decimal

from django.db.models import Count, Prefetch, QuerySet

from . import pricing
from .constants import ChargeKind
from .models import BillableMetric, Coupon, Feature, FeatureGrant, Plan, PlanVersion, Price, Product


def product_list() -> QuerySet[Product]:
    return Product.objects.all()


def billable_metric_list() -> QuerySet[BillableMetric]:
    return BillableMetric.objects.all()


def feature_list() -> QuerySet[Feature]:
    return Feature.objects.all()


def _grants() -> Prefetch:
    return Prefetch("feature_grants", queryset=FeatureGrant.objects.select_related("feature"))


def plan_version_list() -> QuerySet[PlanVersion]:
    """Versions with their charges, prices, tiers and grants loaded (a fixed number of queries per page)."""
    return PlanVersion.objects.select_related("plan").prefetch_related(
        "charges__prices__tiers", "minimum_commitments", "progressive_billing", _grants()
    )


def plan_list() -> QuerySet[Plan]:
    """Plans with their product and every version's charges and prices loaded."""
    return Plan.objects.select_related("product").prefetch_related(
        Prefetch(
            "versions",
            queryset=PlanVersion.objects.prefetch_related(
                "charges__prices__tiers", "minimum_commitments", "progressive_billing", _grants()
            ),
        )
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
