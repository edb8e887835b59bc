"""Expiry: credits left in a lot on its expiry day leave the ledger as an expiry entry.

A lot expires at the start of its `expires_on` day on its **customer's** clock: the daily task expires
the lots of customers on the real clock; a customer on a test clock has its lots expired when its
clock is advanced past that moment (the `wallets` hook of `apps.core.clock_hooks`), never by the real
day coming."""

from datetime import UTC, datetime, time

from django.db import transaction
from django.db.models import Min

from apps.core import clock

from ..constants import WalletEntryKind
from ..models import WalletEntry
from ..selectors import lots_expired, lots_with_remaining
from .consumption import wallet_top_up_check_on_commit
from .ledger import draw_create, wallet_lock
from .returns import expired_reason
from .status import customer_prepaid_status_update


def wallet_credits_expire(*, now: datetime | None = None, test_clock_id: int | None = None) -> list[WalletEntry]:
    """Expire every lot whose expiry day has come by `now`, one wallet per transaction: the lots of
    customers on the real clock (the project's clock; default), or those of one test clock's customers
    (`test_clock_id`, `now` being that clock's time). Idempotent: a lot with nothing left, or already
    expired, is skipped (and the database refuses a second expiry entry for a lot)."""
    now = now or clock.now()
    lots = lots_expired(on=now.date())
    if test_clock_id is None:
        lots = lots.filter(wallet__customer__test_clock__isnull=True)
    else:
        lots = lots.filter(wallet__customer__test_clock_id=test_clock_id)
    wallet_ids = list(dict.fromkeys(lots.values_list("wallet_id", flat=True)))
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
                reason=expired_reason(lot.expires_on, wallet.customer),
            )  # fmt: skip
        )
    if entries:
        customer_prepaid_status_update(customer_id=wallet.customer_id, now=now, entry=entries[-1])
        wallet_top_up_check_on_commit(wallet)  # expired credits may leave it under its threshold
    return entries


def simulated_clock_next_moment(test_clock_id: int, after: datetime | None, until: datetime) -> datetime | None:
    """The test clock hook: the first start of an expiry day in `(after, until]` (at or before `until`
    when `after` is None) of a lot of the clock's customers with credits left."""
    lots = lots_expired(on=until.date()).filter(wallet__customer__test_clock_id=test_clock_id)
    if after is not None:
        # A day starts after `after` when it is a later day (its own start is at or before `after`).
        lots = lots.filter(expires_on__gt=after.date())
    first = lots.order_by().aggregate(first=Min("expires_on"))["first"]
    if first is None:
        return None
    return datetime.combine(first, time.min, tzinfo=UTC)


def simulated_clock_run(test_clock_id: int, moment: datetime) -> None:
    """The test clock hook: expire the clock's customers' lots as the daily task would at `moment`."""
    wallet_credits_expire(now=moment, test_clock_id=test_clock_id)
