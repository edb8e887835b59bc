import django_filters

from apps.catalog.models import Plan, Product


class ProductFilter(django_filters.FilterSet):
    class Meta:
        model = Product
        fields = ["is_archived"]


class PlanFilter(django_filters.FilterSet):
    class Meta:
        model = Plan
        fields = ["product", "interval", "is_archived"]
