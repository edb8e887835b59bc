from django.db.models import Count, Prefetch, QuerySet

from .models import BillableMetric, Coupon, Plan, PlanVersion, Price, Product


def product_list() -> QuerySet[Product]:
    return Product.objects.all()


def billable_metric_list() -> QuerySet[BillableMetric]:
    return BillableMetric.objects.all()


def plan_version_list() -> QuerySet[PlanVersion]:
    """Versions with their charges, prices and tiers loaded (a fixed number of queries per page)."""
    return PlanVersion.objects.select_related("plan").prefetch_related("charges__prices__tiers", "minimum_commitments")


def plan_list() -> QuerySet[Plan]:
    """Plans with their product and every version's charges and prices loaded."""
    return Plan.objects.select_related("product").prefetch_related(
        Prefetch(
            "versions", queryset=PlanVersion.objects.prefetch_related("charges__prices__tiers", "minimum_commitments")
        )
    )


def price_list() -> QuerySet[Price]:
    return Price.objects.select_related("charge__plan_version__plan").prefetch_related("tiers")


def coupon_list() -> QuerySet[Coupon]:
    """Coupons with their amounts and products loaded and `redemption_count` annotated."""
    return Coupon.objects.annotate(redemption_count=Count("discounts", distinct=True)).prefetch_related(
        "amounts", "products"
    )
