from django.urls import include, path
from rest_framework.routers import SimpleRouter

from .views import (
    BillableMetricViewSet,
    CouponViewSet,
    DiscountViewSet,
    FeatureViewSet,
    PlanVersionViewSet,
    PlanViewSet,
    PriceViewSet,
    ProductViewSet,
)

router = SimpleRouter(trailing_slash=False)
router.register("products", ProductViewSet, basename="product")
router.register("plans", PlanViewSet, basename="plan")
router.register("plan-versions", PlanVersionViewSet, basename="plan-version")
router.register("prices", PriceViewSet, basename="price")
router.register("billable-metrics", BillableMetricViewSet, basename="billable-metric")
router.register("features", FeatureViewSet, basename="feature")
router.register("coupons", CouponViewSet, basename="coupon")
router.register("discounts", DiscountViewSet, basename="discount")

urlpatterns = [path("", include(router.urls))]
