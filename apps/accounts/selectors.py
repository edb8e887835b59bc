from datetime import datetime

from django.db.models import QuerySet

from apps.core import clock

from .models import Customer, TestClock


def customer_list() -> QuerySet[Customer]:
    """Every customer (staff scope)."""
    return Customer.objects.all()


def customer_now(customer: Customer) -> datetime:
    """The current time for a customer: its test clock's time if it has one, else the real clock's."""
    if customer.test_clock_id is not None:
        return TestClock.objects.values_list("frozen_at", flat=True).get(pk=customer.test_clock_id)
    return clock.now()


def test_clock_list():
    return TestClock.objects.all()


test_clock_list.__test__ = False  # type: ignore[attr-defined]
