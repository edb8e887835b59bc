"""Whether a prepaid customer has run out of credits, and the one event per transition.

Every service that writes the ledger (consumption, expiry, void, grant, purchase, a return by a credit
note) calls `customer_prepaid_status_update` in its transaction, after its entries. It locks the
customer's `PrepaidStatus` row — always the last lock taken, after the wallets' — and only then reads
what credits are usable, so that evaluations of concurrent ledger changes queue and each sees the
changes committed before it: a transition (credits → none, none → credits) is recorded once, as a
`PrepaidStatusChange` row that outgoing webhooks publish (`customer.prepaid_credits_exhausted`,
`customer.prepaid_credits_restored`). The first evaluation of a customer only records its state: a
customer that has never held credits has not *run out* of them."""

from datetime import datetime
from decimal import Decimal

from ..models import PrepaidStatus, PrepaidStatusChange, Wallet, WalletEntry
from ..selectors import lots_usable


def customer_usable_credits(*, customer_id: int, now: datetime) -> Decimal:
    """The credits the customer could spend on `now`'s day: every lot not expired with credits left."""
    wallets = list(Wallet.objects.filter(customer_id=customer_id))
    return sum((Decimal(lot.remaining) for lot in lots_usable(wallets=wallets, on=now.date())), Decimal(0))


def customer_prepaid_status_update(
    *, customer_id: int, now: datetime, entry: WalletEntry | None = None
) -> PrepaidStatusChange | None:
    """Record the customer's prepaid state after a ledger change (inside that change's transaction);
    the change row when it moved (exhausted ↔ credits usable), else None."""
    PrepaidStatus.objects.bulk_create([PrepaidStatus(customer_id=customer_id)], ignore_conflicts=True)
    status = PrepaidStatus.objects.select_for_update().get(customer_id=customer_id)
    usable = customer_usable_credits(customer_id=customer_id, now=now)  # read after the lock
    exhausted = usable <= 0
    if status.credits_exhausted is exhausted:
        return None
    first = status.credits_exhausted is None
    status.credits_exhausted = exhausted
    status.changed_at = now
    status.save(update_fields=["credits_exhausted", "changed_at"])
    if first:
        return None
    return PrepaidStatusChange.objects.create(
        customer_id=customer_id, credits_exhausted=exhausted, credits=usable, entry=entry, occurred_at=now
    )
