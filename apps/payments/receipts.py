"""Payment receipts: a PDF per succeeded payment, in the look of the bills (the bill's stylesheet,
masthead and parties), written in the customer's language.

A receipt is rendered when asked for, from the payment as recorded (amount, date, the card charged,
the invoices it paid): nothing is stored. The seller is as printed on the first invoice it paid (the
current seller details for a payment that paid none); the buyer is the customer as it is now.
"""

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext
from djmoney.money import Money

from apps.core.errors import Conflict
from apps.core.money import quantize_amount
from apps.core.pdf import render_pdf, static_url
from apps.invoices.services.lifecycle import customer_snapshot
from apps.invoices.services.pdf import DEFAULT_LOGO, INVOICE_PDF_STYLESHEETS

from .constants import PaymentStatus
from .models import Payment

RECEIPT_PDF_TEMPLATE = "payments/receipt_pdf.html"


class ReceiptNotAvailable(Conflict):
    code = "receipt_not_available"


def receipt_number(payment: Payment) -> str:
    return f"R-{payment.pk:06d}"


def payment_receipt_context(payment: Payment) -> dict[str, Any]:
    allocations = list(payment.allocations.select_related("invoice").order_by("pk"))
    seller = allocations[0].invoice.seller_details if allocations else dict(settings.SELLER)
    allocated = sum((allocation.amount.amount for allocation in allocations), Decimal(0))
    to_balance = quantize_amount(payment.amount.amount - allocated, payment.currency)
    return {
        "payment": payment,
        "number": receipt_number(payment),
        "seller": seller,
        "buyer": customer_snapshot(payment.customer),
        "logo_url": static_url(seller.get("logo") or settings.SELLER.get("logo") or DEFAULT_LOGO),
        "allocations": allocations,
        "to_balance": Money(to_balance, payment.currency) if to_balance > 0 else None,
        "currency": payment.currency,
    }


def payment_receipt_pdf(payment: Payment) -> bytes:
    """The receipt of a succeeded payment as PDF bytes, in the customer's language; a payment that has
    not succeeded has none (`ReceiptNotAvailable`)."""
    if payment.status != PaymentStatus.SUCCEEDED:
        raise ReceiptNotAvailable(gettext("Only a payment received has a receipt."))
    with translation.override(payment.customer.preferred_language or settings.LANGUAGE_CODE):
        return render_pdf(
            template_name=RECEIPT_PDF_TEMPLATE,
            context=payment_receipt_context(payment),
            stylesheets=INVOICE_PDF_STYLESHEETS,
        )
