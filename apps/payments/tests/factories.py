from datetime import datetime
from decimal import Decimal

from apps.accounts.models import Customer
from apps.accounts.tests.factories import CustomerFactory
from apps.invoices.models import Invoice
from apps.invoices.tests.factories import make_manual_invoice
from apps.subscriptions.periods import utc

# Manual invoices of the tests are issued then; payments arrive later (the real clock is after it).
ISSUED_AT = utc(2026, 1, 15, 9)
RECEIVED_AT = utc(2026, 2, 1, 12)


def make_customer(**kwargs) -> Customer:
    """A US customer (no tax on its invoices), paying in USD unless told otherwise."""
    kwargs.setdefault("country", "US")
    kwargs.setdefault("state", "")
    return CustomerFactory(**kwargs)


def make_invoice(customer: Customer, amount: str, *, now: datetime = ISSUED_AT) -> Invoice:
    """An open invoice of one untaxed line of `amount`."""
    invoice = make_manual_invoice(customer=customer, lines=[("Consulting", "1", amount)], now=now)
    assert invoice.total.amount == Decimal(amount), invoice.total
    return invoice
