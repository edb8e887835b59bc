from datetime import datetime

from django.db.models import QuerySet

from apps.core import clock

from .models import Customer, TestClock


def customer_list() -> QuerySet[Customer]:
    """Every customer (staff scope), with its billing contacts."""
    return Customer.objects.prefetch_related("billing_contacts")


def customer_invoice_recipients(customer: Customer) -> list[str]:
    """Where the customer's bills are emailed: its own email, then each billing contact that receives
    invoices, in the order they were added, each address once (compared without case)."""
    contacts = customer.billing_contacts.filter(receives_invoices=True).order_by("id")
    recipients: list[str] = []
    for email in [customer.email, *(contact.email for contact in contacts)]:
        if email and email.lower() not in {known.lower() for known in recipients}:
            recipients.append(email)
    return recipients


def customer_now(customer: Customer) -> datetime:
    """The current time for a customer: its test clock's time if it has one, else the real clock's."""
    if customer.test_clock_id is not None:
        return TestClock.objects.values_list("frozen_at", flat=True).get(pk=customer.test_clock_id)
    return clock.now()


def test_clock_list():
    return TestClock.objects.all()


test_clock_list.__test__ = False  # type: ignore[attr-defined]
