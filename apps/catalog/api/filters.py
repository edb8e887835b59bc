import django_filters

from apps.catalog.models import Plan, PlanVersion, Price, Product


class ProductFilter(django_filters.FilterSet):
    class Meta:
        model = Product
        fields = ["is_archived"]


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
