"""Buying credits: an invoice for the credits (a prepayment: no tax until they are consumed) that
grants them once it is paid, and automatic top-ups charged to the customer's default card."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils.translation import gettext
from djmoney.money import Money

from apps.accounts.constants import CollectionMethod
from apps.accounts.selectors import customer_now
from apps.core.errors import ValidationFailed
from apps.core.events import acting_user
from apps.core.money import zero
from apps.invoices.constants import BillingReason, InvoiceEventType, InvoiceLineKind, InvoiceStatus
from apps.invoices.events import invoice_event_record
from apps.invoices.models import Invoice, InvoiceLine
from apps.invoices.services.lifecycle import (
    TOTALS_FIELDS,
    bill_language,
    invoice_finalize,
    invoice_recompute_totals,
)

from ..constants import PurchaseStatus, PurchaseTrigger, WalletEntryKind
from ..models import CreditPurchase, Wallet, WalletEntry
from ..selectors import wallet_balance
from .consumption import _credits_text
from .ledger import _check_credits, _check_expiry, credits_worth, lot_create, wallet_lock
from .status import customer_prepaid_status_update


def _purchase_invoice(
    *, wallet: Wallet, credits: Decimal, amount: Decimal, now: datetime, actor: Any, collection_method: str | None
) -> Invoice:
    currency = wallet.currency
    invoice = Invoice.objects.create(
        customer=wallet.customer, subscription=None, billing_reason=BillingReason.CREDIT_PURCHASE,
        status=InvoiceStatus.DRAFT, subtotal=zero(currency), tax_total=zero(currency), total=zero(currency),
    )  # fmt: skip
    with bill_language(wallet.customer):
        description = gettext("Prepaid credits: %(credits)s credits (%(wallet)s)") % {
            "credits": _credits_text(credits), "wallet": wallet.name,
        }  # fmt: skip
        explanation = [
            gettext("Granted to the wallet once this invoice is paid."),
        ]
    InvoiceLine.objects.create(
        invoice=invoice, position=1, kind=InvoiceLineKind.CREDIT_PURCHASE, description=description, quantity=credits,
        unit_amount=Money(wallet.rate, currency), amount=Money(amount, currency), explanation=explanation,
    )  # fmt: skip
    invoice_recompute_totals(invoice)
    invoice.save(update_fields=TOTALS_FIELDS)
    invoice_event_record(
        invoice=invoice, type=InvoiceEventType.CREATED, actor=actor, occurred_at=now,
        data={"reason": BillingReason.CREDIT_PURCHASE, "wallet": wallet.pk, "credits": str(credits)},
    )  # fmt: skip
    return invoice_finalize(invoice_id=invoice.pk, actor=actor, now=now, collection_method=collection_method)


def _purchase_create(
    *, wallet: Wallet, credits: Decimal, expires_on: date | None, trigger: str, now: datetime, actor: Any
) -> CreditPurchase:
    amount = credits_worth(credits=credits, wallet=wallet)
    if amount <= 0:
        raise ValidationFailed(
            gettext("These credits are worth nothing: buy more."),
            fields={"credits": [gettext("Worth less than the smallest coin.")]},
        )
    collection = CollectionMethod.CHARGE_AUTOMATICALLY if trigger == PurchaseTrigger.AUTO_TOP_UP else None
    invoice = _purchase_invoice(
        wallet=wallet, credits=credits, amount=amount, now=now, actor=actor, collection_method=collection
    )
    return CreditPurchase.objects.create(
        wallet=wallet, invoice=invoice, credits=credits, expires_on=expires_on, trigger=trigger,
        actor=acting_user(actor),
    )  # fmt: skip


@transaction.atomic
def wallet_purchase(
    *,
    wallet_id: int,
    credits: Any,
    trigger: str = PurchaseTrigger.STAFF,
    expires_on: date | None = None,
    actor: Any = None,
    now: datetime | None = None,
) -> CreditPurchase:
    """Buy credits: an invoice for them (issued at once, collected like every invoice: by card or by
    bank transfer); the credits are granted when it is paid (`credit_purchase_grant`)."""
    wallet = wallet_lock(wallet_id)
    now = now or customer_now(wallet.customer)
    errors: dict[str, list[str]] = {}
    amount = _check_credits(credits, errors)
    _check_expiry(expires_on, now.date(), errors)
    if trigger not in PurchaseTrigger.values:
        errors["trigger"] = [gettext("Unknown trigger.")]
    if errors:
        raise ValidationFailed(gettext("The purchase is not valid."), fields=errors)
    assert amount is not None
    return _purchase_create(wallet=wallet, credits=amount, expires_on=expires_on, trigger=trigger, now=now, actor=actor)


def credit_purchase_grant(*, invoice: Invoice, now: datetime, actor: Any = None) -> WalletEntry | None:
    """The invoice has just been paid (called by payments in the transaction that marks it paid): if it
    bought credits, grant them — a purchase lot worth what was paid, before tax. Exactly once: the
    purchase row is locked and must still be pending, and the database refuses a second purchase
    entry for the invoice."""
    if invoice.billing_reason != BillingReason.CREDIT_PURCHASE:
        return None
    purchase = CreditPurchase.objects.select_for_update().filter(invoice=invoice).first()
    if purchase is None or purchase.status != PurchaseStatus.PENDING:
        return None
    wallet = wallet_lock(purchase.wallet_id)
    entry = lot_create(
        wallet=wallet, kind=WalletEntryKind.PURCHASE, credits=purchase.credits, expires_on=purchase.expires_on,
        reason=f"Invoice {invoice.number} paid", now=now, actor=actor, invoice=invoice,
    )  # fmt: skip
    purchase.status = PurchaseStatus.GRANTED
    purchase.save(update_fields=["status", "updated_at"])
    customer_prepaid_status_update(customer_id=wallet.customer_id, now=now, entry=entry)
    return entry


@transaction.atomic
def wallet_top_up(*, wallet_id: int, now: datetime | None = None) -> CreditPurchase | None:
    """An automatic top-up of a wallet under its threshold: a purchase of its top-up credits whose
    invoice is charged to the customer's default card. None when the wallet is not under its threshold
    or a top-up already waits for payment (two racing top-ups leave one: the wallet row is locked, and
    the database allows one waiting top-up per wallet)."""
    wallet = wallet_lock(wallet_id)
    now = now or customer_now(wallet.customer)
    if wallet.top_up_threshold is None or wallet.top_up_credits is None:
        return None
    if wallet_balance(wallet=wallet) >= wallet.top_up_threshold:
        return None
    waiting = CreditPurchase.objects.filter(
        wallet=wallet, trigger=PurchaseTrigger.AUTO_TOP_UP, status=PurchaseStatus.PENDING
    ).select_related("invoice")
    for purchase in waiting:
        if purchase.invoice.status != InvoiceStatus.VOID:
            return None
        purchase.status = PurchaseStatus.CANCELED  # its invoice was voided: a new top-up may start
        purchase.save(update_fields=["status", "updated_at"])
    expires_on = (now + timedelta(days=wallet.top_up_valid_days)).date() if wallet.top_up_valid_days else None
    return _purchase_create(
        wallet=wallet, credits=wallet.top_up_credits, expires_on=expires_on, trigger=PurchaseTrigger.AUTO_TOP_UP,
        now=now, actor=None,
    )  # fmt: skip
