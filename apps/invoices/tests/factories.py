from datetime import datetime
from decimal import Decimal

from django.test import override_settings
from djmoney.money import Money

from apps.accounts.models import Customer
from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import subscription_bill_next_period
from apps.core import clock
from apps.core.money import zero
from apps.invoices.constants import BillingReason, InvoiceLineKind
from apps.invoices.models import Invoice, InvoiceLine
from apps.invoices.services import invoice_finalize
from apps.invoices.services.lifecycle import TOTALS_FIELDS, invoice_recompute_totals
from apps.subscriptions.models import Subscription
from apps.subscriptions.periods import utc
from apps.subscriptions.tests.factories import make_subscription

DEFAULT_START = utc(2026, 1, 15, 9)


def make_draft_invoice(*, subscription: Subscription | None = None, now: datetime | None = None) -> Invoice:
    """The draft the billing run makes for the subscription's next period (review period on)."""
    subscription = subscription or make_subscription(started_at=DEFAULT_START)
    now = now or subscription.next_billing_at
    with override_settings(INVOICE_DRAFT_GRACE_HOURS=24), clock.frozen_at(now):
        invoice = subscription_bill_next_period(subscription_id=subscription.pk, now=now)
    assert invoice is not None, "the subscription was not due"
    return invoice


def make_open_invoice(*, subscription: Subscription | None = None) -> Invoice:
    """A finalized (open, numbered) invoice."""
    draft = make_draft_invoice(subscription=subscription)
    return invoice_finalize(invoice_id=draft.pk, now=draft.period_start_at)


def make_manual_invoice(
    *,
    customer: Customer | None = None,
    lines: list[tuple[str, str, str]] = (("Consulting", "1", "100.00"),),
    now: datetime = DEFAULT_START,
    finalize: bool = True,
) -> Invoice:
    """An invoice of hand-made lines (description, quantity, amount; a negative amount is a discount),
    taxed for the customer like any invoice, and finalized (open, numbered) unless told otherwise."""
    customer = customer or CustomerFactory()
    currency = customer.currency
    invoice = Invoice.objects.create(
        customer=customer, billing_reason=BillingReason.MANUAL, subtotal=zero(currency), tax_total=zero(currency),
        total=zero(currency),
    )  # fmt: skip
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice=invoice,
            position=position,
            description=description,
            quantity=Decimal(quantity),
            kind=InvoiceLineKind.DISCOUNT if Decimal(amount) < 0 else InvoiceLineKind.MANUAL,
            amount=Money(Decimal(amount), currency),
        )  # fmt: skip
        for position, (description, quantity, amount) in enumerate(lines, start=1)
    )
    if finalize:
        return invoice_finalize(invoice_id=invoice.pk, now=now)
    invoice_recompute_totals(invoice)
    invoice.save(update_fields=TOTALS_FIELDS)
    return invoice
