import django_filters

from apps.catalog.models import BillableMetric, Coupon, Feature, Plan, PlanVersion, Price, Product
from apps.subscriptions.models import Discount


class ProductFilter(django_filters.FilterSet):
    class Meta:
        model = Product
        fields = ["is_archived"]


class FeatureFilter(django_filters.FilterSet):
    class Meta:
        model = Feature
        fields = ["kind"]


class PlanFilter(django_filters.FilterSet):
    class Meta:
        model = Plan
        fields = ["product", "interval", "is_archived"]


class PlanVersionFilter(django_filters.FilterSet):
    class Meta:
        model = PlanVersion
        fields = ["plan"]


class PriceFilter(django_filters.FilterSet):
    plan_version = django_filters.NumberFilter(field_name="charge__plan_version")
    price_model = django_filters.CharFilter(field_name="charge__price_model")

    class Meta:
        model = Price
        fields = ["currency", "charge", "plan_version", "price_model"]


class CouponFilter(django_filters.FilterSet):
    product = django_filters.NumberFilter(field_name="products", help_text="Coupons restricted to this product id.")

    class Meta:
        model = Coupon
        fields = ["discount_type", "duration", "is_archived", "product"]


class DiscountFilter(django_filters.FilterSet):
    is_active = django_filters.BooleanFilter(
        field_name="ended_at", lookup_expr="isnull", help_text="true: not ended; false: ended."
    )

    class Meta:
        model = Discount
        fields = ["coupon", "customer", "subscription", "is_active"]


class BillableMetricFilter(django_filters.FilterSet):
    class Meta:
        model = BillableMetric
        fields = ["aggregation", "is_archived"]
