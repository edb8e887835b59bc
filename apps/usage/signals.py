"""Signals the usage app sends for other apps (spend alerts) to hook into. Sent after commit; they
carry ids only and no domain logic of their own."""

from django.db import transaction
from django.dispatch import Signal

# Sent with `customer_ids=[...]` once usage events of these customers were stored (ingestion) or
# changed (void, replace) and committed. Receivers must be cheap: ingestion pays for them.
usage_recorded = Signal()


def usage_recorded_send_on_commit(customer_ids: set[int]) -> None:
    if not customer_ids:
        return
    ids = sorted(customer_ids)
    transaction.on_commit(lambda: usage_recorded.send(sender=None, customer_ids=ids), robust=True)
