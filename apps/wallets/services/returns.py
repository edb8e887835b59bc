"""Credits given back when the invoice that consumed them is credited or voided.

An invoice's consumption entries say which lots paid it. When a credit note credits the invoice's
charges, the same share of those credits goes back to the wallet — a `return` lot per lot drawn on,
pro rata on the cumulative share of the charges credited (`returned_share`), so that crediting
everything, in one credit note or several, returns exactly what was consumed. Voiding the invoice
returns everything. A returned lot expires on the day its credits first did (never later); credits
whose day has already come come back and expire at once (a `return` and an `expiry` entry). See
docs/credits.md, "Credit notes and voids give credits back"."""

from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from django.conf import settings
from django.db.models import Sum
from django.utils import translation
from django.utils.translation import gettext
from djmoney.money import Money

from apps.core.events import acting_user
from apps.core.money import quantize_fraction
from apps.invoices.constants import AFTER_TAX_LINE_KINDS, CreditNoteLineKind, CreditNoteStatus
from apps.invoices.models import CreditNote, CreditNoteLine, Invoice

from ..constants import CREDIT_DECIMALS, WalletEntryKind
from ..models import Wallet, WalletEntry
from ..selectors import lots_with_remaining
from .ledger import draw_create
from .status import customer_prepaid_status_update


def _language(customer) -> str:
    return customer.preferred_language or settings.LANGUAGE_CODE


def expired_reason(expires_on, customer) -> str:
    """Why credits left a wallet on their expiry day, in the customer's language."""
    with translation.override(_language(customer)):
        return gettext("Expired on %(day)s.") % {"day": expires_on.isoformat()}


def _voided_reason(credit_note: CreditNote) -> str:
    with translation.override(_language(credit_note.invoice.customer)):
        return gettext("Credit note %(credit_note)s voided") % {"credit_note": credit_note.number}


def returned_share(*, invoice: Invoice) -> Fraction:
    """The share of the invoice's charges that its issued credit notes have credited so far, by
    line (the share the credit notes also take of the balance and credits applied on it); at most 1."""
    charges = sum(
        (
            line.amount.amount
            for line in invoice.lines.all()
            if line.amount.amount > 0 and line.kind not in AFTER_TAX_LINE_KINDS
        ),
        Decimal(0),
    )
    if charges <= 0:
        return Fraction(0)
    credited = CreditNoteLine.objects.filter(
        credit_note__invoice=invoice, credit_note__status=CreditNoteStatus.ISSUED, kind=CreditNoteLineKind.INVOICE_LINE
    ).aggregate(total=Sum("amount"))["total"] or Decimal(0)
    return min(Fraction(credited) / Fraction(charges), Fraction(1))


def _credits_share(credits: Decimal, share: Fraction) -> Decimal:
    """`credits` × `share`, rounded once (half up) to the credits' 4 decimals; all of them at 1."""
    if share >= 1:
        return credits
    scaled = Fraction(credits) * share * 10**CREDIT_DECIMALS
    whole = scaled.numerator // scaled.denominator
    if scaled - whole >= Fraction(1, 2):
        whole += 1
    return Decimal(whole).scaleb(-CREDIT_DECIMALS)


def _origin(lot: WalletEntry) -> WalletEntry:
    """The grant or purchase a lot's credits first came from (a return lot's origin)."""
    return lot.returned_from or lot


def invoice_wallet_credits_return(
    *, invoice: Invoice, now: datetime, credit_note: CreditNote | None = None, actor: Any = None
) -> list[WalletEntry]:
    """Give back the credits the invoice consumed: the share its credit notes have credited so far
    (`credit_note`: the one just issued), or all of them when the invoice is voided (no credit note).
    Called inside the transaction that issues the credit note or voids the invoice, which holds the
    invoice's row lock; the customer's wallets are locked here. Returns the entries written."""
    consumptions = list(
        WalletEntry.objects.filter(invoice=invoice, kind=WalletEntryKind.CONSUMPTION)
        .select_related("lot__returned_from")
        .order_by("id")
    )
    if not consumptions:
        return []
    wallets = {
        wallet.pk: wallet
        for wallet in Wallet.objects.select_for_update()
        .filter(pk__in={entry.wallet_id for entry in consumptions})
        .order_by("pk")
    }
    # What the invoice consumed of each origin lot (a lot and the returns of it are one origin).
    consumed: dict[int, list[Decimal]] = {}
    origins: dict[int, WalletEntry] = {}
    for entry in consumptions:
        assert entry.lot is not None
        origin = _origin(entry.lot)
        origins[origin.pk] = origin
        totals = consumed.setdefault(origin.pk, [Decimal(0), Decimal(0)])
        totals[0] -= entry.credits
        totals[1] -= entry.amount.amount
    returned: dict[int, list[Decimal]] = {}
    for row in (
        WalletEntry.objects.filter(invoice=invoice, kind=WalletEntryKind.RETURN)
        .values("returned_from_id")
        .annotate(credits=Sum("credits"), amount=Sum("amount"))
    ):
        returned[row["returned_from_id"]] = [row["credits"], row["amount"]]
    share = Fraction(1) if credit_note is None else returned_share(invoice=invoice)
    with translation.override(_language(invoice.customer)):  # on the customer's ledger: in their language
        if credit_note is not None:
            reason = gettext("Credit note %(credit_note)s of invoice %(invoice)s") % {
                "credit_note": credit_note.number, "invoice": invoice.number,
            }  # fmt: skip
        else:
            reason = gettext("Invoice %(invoice)s voided") % {"invoice": invoice.number}
    entries: list[WalletEntry] = []
    for origin_id, (consumed_credits, consumed_amount) in consumed.items():
        origin = origins[origin_id]
        wallet = wallets[origin.wallet_id]
        credits_before, amount_before = returned.get(origin_id, [Decimal(0), Decimal(0)])
        credits = _credits_share(consumed_credits, share) - credits_before
        amount = (
            consumed_amount if share >= 1 else quantize_fraction(Fraction(consumed_amount) * share, wallet.currency)
        ) - amount_before
        if credits <= 0:
            continue
        back = WalletEntry.objects.create(
            wallet=wallet, kind=WalletEntryKind.RETURN, credits=credits,
            amount=Money(max(amount, Decimal(0)), wallet.currency), expires_on=origin.expires_on,
            category=origin.category, reason=reason, actor=acting_user(actor), invoice=invoice,
            credit_note=credit_note, returned_from=origin, occurred_at=now,
        )  # fmt: skip
        entries.append(back)
        if origin.expires_on is not None and origin.expires_on <= now.date():
            # Past their expiry day: back in the ledger, and out again at once.
            back.wallet = wallet
            entries.append(
                draw_create(
                    lot=back,
                    kind=WalletEntryKind.EXPIRY,
                    credits=credits,
                    now=now,
                    reason=expired_reason(origin.expires_on, invoice.customer),
                )  # fmt: skip
            )
    if entries:
        customer_prepaid_status_update(customer_id=invoice.customer_id, now=now, entry=entries[-1])
    return entries


def credit_note_wallet_returns_take_back(*, credit_note: CreditNote, now: datetime, actor: Any = None) -> list[str]:
    """A credit note is voided: take back the credits it returned (a void entry for what is left of
    each return lot). Returns the problems that forbid it (credits of a return already consumed)."""
    returns = list(WalletEntry.objects.filter(credit_note=credit_note, kind=WalletEntryKind.RETURN).order_by("id"))
    if not returns:
        return []
    wallets = {
        wallet.pk: wallet
        for wallet in Wallet.objects.select_for_update().filter(pk__in={r.wallet_id for r in returns}).order_by("pk")
    }
    if WalletEntry.objects.filter(lot__in=returns, kind=WalletEntryKind.CONSUMPTION).exists():
        return [gettext("The credits it returned to the wallet have already paid another invoice.")]
    left = {
        lot.pk: lot
        for lot in lots_with_remaining(wallets=list(wallets.values())).filter(pk__in=[r.pk for r in returns])
    }
    entries = []
    for returned in returns:
        lot = left[returned.pk]
        if lot.remaining <= 0:
            continue
        lot.wallet = wallets[returned.wallet_id]
        entries.append(
            draw_create(
                lot=lot,
                kind=WalletEntryKind.VOID,
                credits=lot.remaining,
                now=now,
                actor=actor,
                reason=_voided_reason(credit_note),
            )  # fmt: skip
        )
    if entries:
        customer_prepaid_status_update(customer_id=credit_note.invoice.customer_id, now=now, entry=entries[-1])
    return []
