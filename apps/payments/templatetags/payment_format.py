"""Payments as a customer reads them (portal pages and receipts), in the reader's language: how a
payment was made ("Visa •••• 4242, expires 12/2034", "Bank transfer") and its status. The models'
labels stay in English for staff."""

from typing import Any

from django import template
from django.utils.translation import gettext, gettext_noop

from apps.invoices.templatetags.invoice_format import bill_date
from apps.payments.models import Payment
from apps.payments.receipts import receipt_number as _receipt_number

register = template.Library()

METHOD_LABELS = {
    "card": gettext_noop("Card"),
    "bank_transfer": gettext_noop("Bank transfer"),
    "cheque": gettext_noop("Cheque"),
    "cash": gettext_noop("Cash"),
    "other": gettext_noop("Other"),
}

STATUS_LABELS = {
    "requires_action": gettext_noop("Waiting for your confirmation"),
    "processing": gettext_noop("Processing"),
    "succeeded": gettext_noop("Succeeded"),
    "failed": gettext_noop("Failed"),
    "reversed": gettext_noop("Reversed"),
}


def card_label(card: dict[str, Any]) -> str:
    """ "Visa •••• 4242, expires 12/2034" for a card summary (brand, last4, exp_month, exp_year)."""
    name = f"{str(card.get('brand') or gettext('Card')).title()} •••• {card.get('last4', '')}"
    if card.get("exp_month") and card.get("exp_year"):
        return gettext("%(card)s, expires %(month)02d/%(year)d") % {
            "card": name,
            "month": int(card["exp_month"]),
            "year": int(card["exp_year"]),
        }
    return name


@register.filter
def payment_method(payment: Payment) -> str:
    """How a payment was made: the card charged, or the manual method (with its reference)."""
    if payment.method == "card" and payment.card:
        return card_label(payment.card)
    label = gettext(METHOD_LABELS.get(payment.method, payment.method))
    if payment.method == "card" and payment.reference:
        return str(payment.reference)
    return label


@register.filter
def payment_status(payment: Payment) -> str:
    return gettext(STATUS_LABELS.get(payment.status, payment.status))


@register.filter
def receipt_number(payment: Payment) -> str:
    return _receipt_number(payment)


@register.filter
def saved_card(card: Any) -> str:
    """A saved card told apart from another of the same brand and last 4 digits: "Visa •••• 4242,
    expires 12/2034, added 7 Dec 2026" (a `CardSummary`)."""
    label = card_label(
        {"brand": card.brand, "last4": card.last4, "exp_month": card.exp_month, "exp_year": card.exp_year}
    )
    if card.created_at is None:
        return label
    return gettext("%(card)s, added %(day)s") % {"card": label, "day": bill_date(card.created_at)}
