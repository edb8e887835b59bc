"""Reads of wallets and their ledger. Balances are sums of the ledger, never a stored number."""

from datetime import date
from decimal import Decimal

from django.db.models import DecimalField, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from apps.accounts.models import Customer

from .constants import LOT_KINDS
from .models import Wallet, WalletEntry

_ZERO = Value(Decimal(0), output_field=DecimalField(max_digits=19, decimal_places=4))


def wallet_balance(*, wallet: Wallet) -> Decimal:
    """The wallet's credits: the sum of its ledger."""
    total = WalletEntry.objects.filter(wallet=wallet).aggregate(total=Coalesce(Sum("credits"), _ZERO))["total"]
    return Decimal(total)


def wallet_list_for_customer(*, customer: Customer | None = None, customer_id: int | None = None) -> QuerySet[Wallet]:
    """The customer's wallets with their balance (`balance`, credits)."""
    if customer is not None:
        customer_id = customer.pk
    if customer_id is None:
        return Wallet.objects.none().annotate(balance=_ZERO)
    return Wallet.objects.filter(customer_id=customer_id).annotate(balance=Coalesce(Sum("entries__credits"), _ZERO))


def wallet_entries(*, wallet: Wallet) -> QuerySet[WalletEntry]:
    return (
        WalletEntry.objects.filter(wallet=wallet)
        .select_related("lot", "invoice", "credit_note")
        .order_by("-occurred_at", "-id")
    )


def lots_with_remaining(*, wallets: QuerySet[Wallet] | list[Wallet]) -> QuerySet[WalletEntry]:
    """The wallets' lots (grants and purchases) annotated with their remaining credits (`remaining`)
    and money (`remaining_amount`): the lot plus its draws."""
    return (
        WalletEntry.objects.filter(wallet__in=wallets, kind__in=LOT_KINDS)
        .annotate(
            remaining=F("credits") + Coalesce(Sum("draws__credits"), _ZERO),
            remaining_amount=F("amount") + Coalesce(Sum("draws__amount"), _ZERO),
        )
        .select_related("wallet")
    )


def lots_usable(*, wallets: QuerySet[Wallet] | list[Wallet], on: date) -> list[WalletEntry]:
    """Lots with credits left that have not expired on `on` (a lot expires at the start of its
    `expires_on`), in the order they are consumed: soonest expiry first (never-expiring last), then
    the wallet's priority, then the oldest lot."""
    lots = (
        lots_with_remaining(wallets=wallets)
        .filter(Q(expires_on__isnull=True) | Q(expires_on__gt=on))
        .filter(remaining__gt=0)
    )
    return sorted(
        lots,
        key=lambda lot: (
            lot.expires_on is None,
            lot.expires_on or date.max,
            lot.wallet.priority,
            lot.wallet_id,
            lot.occurred_at,
            lot.pk,
        ),
    )


def lots_expired(*, on: date) -> QuerySet[WalletEntry]:
    """Lots whose expiry day has come by `on` with credits left (no expiry entry yet)."""
    return (
        lots_with_remaining(wallets=Wallet.objects.all())
        .filter(expires_on__lte=on)
        .filter(remaining__gt=0)
        .order_by("wallet_id", "expires_on", "id")
    )


def customers_with_credits(*, customer_ids: set[int] | list[int]) -> set[int]:
    """Of these customers, the ones holding credits (in any wallet)."""
    rows = (
        Wallet.objects.filter(customer_id__in=customer_ids)
        .annotate(balance=Coalesce(Sum("entries__credits"), _ZERO))
        .filter(balance__gt=0)
        .values_list("customer_id", flat=True)
    )
    return set(rows)
