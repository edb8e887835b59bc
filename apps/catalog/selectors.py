from django.db.models import QuerySet

from .models import Plan, Product


def product_list() -> QuerySet[Product]:
    return Product.objects.all()


def plan_list() -> QuerySet[Plan]:
    """Plans with their product and prices loaded (one query each, whatever the page size)."""
    return Plan.objects.select_related("product").prefetch_related("prices")
