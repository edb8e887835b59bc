"""Credits consumed by an invoice at its finalization.

When a draft is finalized (`apps.invoices.services.lifecycle.invoice_finalize`), after its lines —
the customer's money balance included, which is taken when the draft is built — the customer's
credits in the invoice's currency pay what is left of its total, tax included: soonest expiry first
across wallets, then the wallet's priority, then the oldest lot. Each wallet used makes one line of
its own (kind `prepaid_credits`, after tax) and one consumption entry per lot drawn on. Never below
zero, never twice: the customer's wallets are locked for the whole finalization, and the database
refuses a second consumption of a lot by the same invoice."""

from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils.translation import gettext
from djmoney.money import Money

from apps.core.money import quantize_amount
from apps.core.money_format import money_text
from apps.core.queue import enqueue
from apps.invoices.constants import BillingReason, InvoiceLineKind
from apps.invoices.models import Invoice, InvoiceLine

from ..constants import WalletEntryKind
from ..models import Wallet, WalletEntry
from ..selectors import lots_usable, wallet_balance
from .ledger import CREDIT_QUANTUM, credits_quantize, draw_create
from .status import customer_prepaid_status_update


def _credits_text(credits: Decimal) -> str:
    text = f"{credits:,f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def invoice_wallet_credits_apply(*, invoice: Invoice, now: datetime) -> list[WalletEntry]:
    """Pay what is due on a locked draft (its `total`, computed) with the customer's credits: adds the
    lines and writes the consumption entries; the caller recomputes the totals. Credit purchases are
    never paid with credits."""
    if invoice.billing_reason == BillingReason.CREDIT_PURCHASE:
        return []
    due = invoice.total.amount
    if due <= 0:
        return []
    currency = invoice.currency
    wallets = list(
        Wallet.objects.select_for_update().filter(customer_id=invoice.customer_id, currency=currency).order_by("pk")
    )
    if not wallets:
        return []
    entries: list[WalletEntry] = []
    by_wallet: dict[int, list[WalletEntry]] = defaultdict(list)
    for lot in lots_usable(wallets=wallets, on=now.date()):
        if due <= 0:
            break
        wallet = next(w for w in wallets if w.pk == lot.wallet_id)
        lot.wallet = wallet
        available = Decimal(lot.remaining_amount)
        if available <= 0:
            continue
        if available <= due:  # the whole lot
            credits, money = Decimal(lot.remaining), available
        else:
            money = due
            # Credits to 4 decimals, at least the smallest (a cent of a very dear credit).
            credits = min(max(credits_quantize(money / wallet.rate), CREDIT_QUANTUM), Decimal(lot.remaining))
        entry = draw_create(
            lot=lot, kind=WalletEntryKind.CONSUMPTION, credits=credits, now=now, invoice=invoice, amount=money,
            reason=f"Invoice {invoice.pk}",
        )  # fmt: skip
        due -= money
        entries.append(entry)
        by_wallet[wallet.pk].append(entry)
    position = invoice.lines.count()
    lines = []
    for wallet in wallets:
        used = by_wallet.get(wallet.pk)
        if not used:
            continue
        credits = -sum((entry.credits for entry in used), Decimal(0))
        money = -sum((entry.amount.amount for entry in used), Decimal(0))
        rate = money_text(wallet.rate, currency)
        explanation = [
            gettext("%(credits)s credits at %(rate)s a credit, taken off the total after tax.")
            % {"credits": _credits_text(credits), "rate": rate}
        ]
        for entry in used:
            lot_of_entry = entry.lot
            assert lot_of_entry is not None
            expiry = lot_of_entry.expires_on.isoformat() if lot_of_entry.expires_on else gettext("never")
            explanation.append(
                gettext("%(credits)s credits from the %(kind)s of %(day)s (expiring: %(expiry)s).")
                % {"credits": _credits_text(-entry.credits), "kind": lot_of_entry.get_kind_display().lower(),
                   "day": lot_of_entry.occurred_at.date().isoformat(), "expiry": expiry}
            )  # fmt: skip
        position += 1
        lines.append(
            InvoiceLine(
                invoice=invoice,
                position=position,
                kind=InvoiceLineKind.PREPAID_CREDITS,
                description=gettext("Prepaid credits: %(wallet)s") % {"wallet": wallet.name},
                quantity=credits,
                unit_amount=None,
                amount=Money(-quantize_amount(money, currency), currency),
                explanation=explanation,
            )  # fmt: skip
        )
    InvoiceLine.objects.bulk_create(lines)
    if entries:
        customer_prepaid_status_update(customer_id=invoice.customer_id, now=now, entry=entries[-1])
    for wallet in wallets:
        if wallet.pk in by_wallet:
            wallet_top_up_check_on_commit(wallet)
    return entries


def wallet_top_up_check_on_commit(wallet: Wallet) -> None:
    """After commit, queue an automatic top-up of a wallet that has fallen under its threshold."""
    if wallet.top_up_threshold is None:
        return
    if wallet_balance(wallet=wallet) >= wallet.top_up_threshold:
        return
    from ..tasks import wallet_top_up_task

    wallet_id = wallet.pk
    transaction.on_commit(lambda: enqueue(wallet_top_up_task, wallet_id))
