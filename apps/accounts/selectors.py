from django.db.models import QuerySet

from .models import Customer


def customer_list() -> QuerySet[Customer]:
    """Every customer (staff scope)."""
    return Customer.objects.all()
