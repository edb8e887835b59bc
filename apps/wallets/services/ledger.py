"""Wallets and their ledger: creating a wallet, granting free credits, voiding credits. Every change
is a new ledger entry written under the wallet's row lock; nothing is ever updated or deleted."""

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import transaction
from django.utils.translation import gettext
from djmoney.money import Money

from apps.accounts.models import Customer
from apps.accounts.selectors import customer_now
from apps.core.errors import NotFound, ValidationFailed
from apps.core.events import acting_user
from apps.core.money import quantize_amount

from ..constants import CREDIT_DECIMALS, MAX_CREDITS, GrantCategory, WalletEntryKind
from ..models import Wallet, WalletEntry
from ..selectors import lots_with_remaining
from .status import customer_prepaid_status_update

CREDIT_QUANTUM = Decimal(1).scaleb(-CREDIT_DECIMALS)


def credits_quantize(credits: Decimal) -> Decimal:
    return credits.quantize(CREDIT_QUANTUM, rounding=ROUND_HALF_UP)


def credits_worth(*, credits: Decimal, wallet: Wallet) -> Decimal:
    """What `credits` are worth in the wallet's currency, rounded once to its minor unit."""
    return quantize_amount(credits * wallet.rate, wallet.currency)


def wallet_lock(wallet_id: int) -> Wallet:
    try:
        return Wallet.objects.select_for_update().select_related("customer").get(pk=wallet_id)
    except Wallet.DoesNotExist as exc:
        raise NotFound(gettext("Wallet %(wallet_id)s does not exist.") % {"wallet_id": wallet_id}) from exc


def _check_credits(value: Any, errors: dict[str, list[str]], name: str = "credits") -> Decimal | None:
    try:
        credits = Decimal(str(value))
    except (ArithmeticError, ValueError):
        errors[name] = [gettext("Enter a number of credits.")]
        return None
    if not credits.is_finite() or credits <= 0:
        errors[name] = [gettext("Must be more than zero.")]
    elif credits != credits_quantize(credits):
        errors[name] = [gettext("At most %(credit_decimals)s decimals.") % {"credit_decimals": CREDIT_DECIMALS}]
    elif credits >= MAX_CREDITS:
        errors[name] = [gettext("Too many credits.")]
    else:
        return credits
    return None


def _check_expiry(expires_on: date | None, today: date, errors: dict[str, list[str]]) -> None:
    if expires_on is not None and expires_on <= today:
        errors["expires_on"] = [gettext("Must be a day after today.")]


@transaction.atomic
def wallet_create(
    *,
    customer: Customer,
    name: str,
    rate: Decimal,
    priority: int = 100,
    top_up_threshold: Decimal | None = None,
    top_up_credits: Decimal | None = None,
    top_up_valid_days: int | None = None,
) -> Wallet:
    """A wallet of credits in the customer's currency."""
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = [gettext("This field is required.")]
    elif Wallet.objects.filter(customer=customer, name=name).exists():
        errors["name"] = [gettext("The customer already has a wallet of this name.")]
    if rate is None or Decimal(rate) <= 0:
        errors["rate"] = [gettext("Must be more than zero.")]
    elif Decimal(rate) != Decimal(rate).quantize(Decimal("0.000001")):
        errors["rate"] = [gettext("At most 6 decimals.")]
    if (top_up_threshold is None) != (top_up_credits is None):
        errors["top_up_credits" if top_up_credits is None else "top_up_threshold"] = [
            gettext("An automatic top-up needs both a threshold and a number of credits.")
        ]
    if top_up_credits is not None:
        _check_credits(top_up_credits, errors, "top_up_credits")
    if top_up_threshold is not None and Decimal(top_up_threshold) < 0:
        errors["top_up_threshold"] = [gettext("Cannot be negative.")]
    if errors:
        raise ValidationFailed(gettext("The wallet is not valid."), fields=errors)
    return Wallet.objects.create(
        customer=customer, name=name, currency=customer.currency, rate=Decimal(rate), priority=priority,
        top_up_threshold=top_up_threshold, top_up_credits=top_up_credits, top_up_valid_days=top_up_valid_days,
    )  # fmt: skip


def lot_create(
    *,
    wallet: Wallet,
    kind: str,
    credits: Decimal,
    expires_on: date | None,
    reason: str,
    now: datetime,
    actor: Any = None,
    category: str = "",
    invoice: Any = None,
    amount: Decimal | None = None,
) -> WalletEntry:
    """A lot entry (grant or purchase) of a locked wallet. `amount`: what the credits are worth
    (for a purchase, what was paid for them; a grant is worth its credits at the wallet's rate)."""
    worth = credits_worth(credits=credits, wallet=wallet) if amount is None else amount
    return WalletEntry.objects.create(
        wallet=wallet, kind=kind, credits=credits, amount=Money(worth, wallet.currency), expires_on=expires_on,
        category=category, reason=reason, actor=acting_user(actor), invoice=invoice, occurred_at=now,
    )  # fmt: skip


def draw_create(
    *, lot: WalletEntry, kind: str, credits: Decimal, now: datetime, reason: str = "", actor: Any = None,
    invoice: Any = None, amount: Decimal | None = None,
) -> WalletEntry:  # fmt: skip
    """A draw of `credits` (positive) on a lot of a locked wallet. Its money is `amount` when given,
    else what is left of the lot's money when the draw empties it (so a lot's money always sums to
    zero), else the credits at the wallet's rate."""
    wallet = lot.wallet
    current = lots_with_remaining(wallets=[wallet]).get(pk=lot.pk)
    if credits > current.remaining:
        raise ValidationFailed(
            gettext("Only %(remaining)s credits are left of this lot.") % {"remaining": current.remaining},
            fields={"credits": [gettext("More than is left.")]},
        )
    if amount is None:
        amount = (
            Decimal(current.remaining_amount)
            if credits == current.remaining
            else min(credits_worth(credits=credits, wallet=wallet), Decimal(current.remaining_amount))
        )
    return WalletEntry.objects.create(
        wallet=wallet, kind=kind, credits=-credits, amount=Money(-amount, wallet.currency), lot=lot, reason=reason,
        actor=acting_user(actor), invoice=invoice, occurred_at=now,
    )  # fmt: skip


@transaction.atomic
def wallet_grant(
    *,
    wallet_id: int,
    credits: Any,
    category: str,
    reason: str,
    expires_on: date | None = None,
    actor: Any = None,
    now: datetime | None = None,
) -> WalletEntry:
    """Free credits (a promotion, goodwill): a grant lot, with a reason, expiring on `expires_on`."""
    wallet = wallet_lock(wallet_id)
    now = now or customer_now(wallet.customer)  # a customer on a test clock: its time
    errors: dict[str, list[str]] = {}
    amount = _check_credits(credits, errors)
    if category not in GrantCategory.values:
        errors["category"] = [gettext("One of: %(values)s.") % {"values": ", ".join(GrantCategory.values)}]
    if not (reason or "").strip():
        errors["reason"] = [gettext("Say why the credits are granted.")]
    _check_expiry(expires_on, now.date(), errors)
    if errors:
        raise ValidationFailed(gettext("The grant is not valid."), fields=errors)
    assert amount is not None
    entry = lot_create(
        wallet=wallet, kind=WalletEntryKind.GRANT, credits=amount, expires_on=expires_on, reason=reason.strip(),
        now=now, actor=actor, category=category,
    )  # fmt: skip
    customer_prepaid_status_update(customer_id=wallet.customer_id, now=now, entry=entry)
    return entry


@transaction.atomic
def wallet_lot_void(
    *, entry_id: int, reason: str, credits: Any = None, actor: Any = None, now: datetime | None = None
) -> WalletEntry:
    """Take credits of a lot out of the wallet (all that is left unless `credits` says how many), with a
    reason: a void entry drawing on the lot."""
    wallet_id = WalletEntry.objects.filter(pk=entry_id).values_list("wallet_id", flat=True).first()
    if wallet_id is None:
        raise NotFound(gettext("Wallet entry %(entry_id)s does not exist.") % {"entry_id": entry_id})
    wallet = wallet_lock(wallet_id)
    now = now or customer_now(wallet.customer)
    lot = lots_with_remaining(wallets=[wallet]).filter(pk=entry_id).first()
    errors: dict[str, list[str]] = {}
    if lot is None:
        raise ValidationFailed(
            gettext("Only a grant or a purchase can be voided."),
            fields={"entry": [gettext("Not a grant or a purchase.")]},
        )
    if not (reason or "").strip():
        errors["reason"] = [gettext("Say why the credits are voided.")]
    amount = lot.remaining if credits in (None, "") else _check_credits(credits, errors)
    if amount is not None and lot.remaining <= 0:
        errors["credits"] = [gettext("Nothing is left of this lot.")]
    elif amount is not None and amount > lot.remaining:
        errors["credits"] = [gettext("Only %(remaining)s credits are left of this lot.") % {"remaining": lot.remaining}]
    if errors:
        raise ValidationFailed(gettext("The void is not valid."), fields=errors)
    assert amount is not None
    lot.wallet = wallet
    entry = draw_create(lot=lot, kind=WalletEntryKind.VOID, credits=amount, now=now, reason=reason.strip(), actor=actor)
    customer_prepaid_status_update(customer_id=wallet.customer_id, now=now, entry=entry)
    return entry
