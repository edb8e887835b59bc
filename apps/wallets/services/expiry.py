"""Expiry: credits left in a lot on its expiry day leave the ledger as an expiry entry (daily task)."""

from datetime import datetime

from django.db import transaction

from apps.core import clock

from ..constants import WalletEntryKind
from ..models import WalletEntry
from ..selectors import lots_expired, lots_with_remaining
from .consumption import wallet_top_up_check_on_commit
from .ledger import draw_create, wallet_lock
from .status import customer_prepaid_status_update


def wallet_credits_expire(*, now: datetime | None = None) -> list[WalletEntry]:
    """Expire every lot whose expiry day has come by `now` (on the project's clock), one wallet per
    transaction. Idempotent: a lot with nothing left, or already expired, is skipped (and the database
    refuses a second expiry entry for a lot)."""
    now = now or clock.now()
    wallet_ids = list(dict.fromkeys(lots_expired(on=now.date()).values_list("wallet_id", flat=True)))
    entries: list[WalletEntry] = []
    for wallet_id in wallet_ids:
        entries += _wallet_expire(wallet_id=wallet_id, now=now)
    return entries


@transaction.atomic
def _wallet_expire(*, wallet_id: int, now: datetime) -> list[WalletEntry]:
    wallet = wallet_lock(wallet_id)
    entries = []
    lots = lots_with_remaining(wallets=[wallet]).filter(expires_on__lte=now.date(), remaining__gt=0).order_by("id")
    for lot in lots:
        lot.wallet = wallet
        entries.append(
            draw_create(
                lot=lot,
                kind=WalletEntryKind.EXPIRY,
                credits=lot.remaining,
                now=now,
                reason=f"Expired on {lot.expires_on:%Y-%m-%d}.",
            )  # fmt: skip
        )
    if entries:
        customer_prepaid_status_update(customer_id=wallet.customer_id, now=now, entry=entries[-1])
        wallet_top_up_check_on_commit(wallet)  # expired credits may leave it under its threshold
    return entries
