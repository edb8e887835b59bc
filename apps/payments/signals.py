"""Signals other parts of the product hook into (Stripe collection, dunning). Sent after commit by
the services in `services.py`; they carry ids only and no domain logic of their own."""

from django.dispatch import Signal

# Sent with `payment_id=<id>` once the payment's new status is committed.
payment_succeeded = Signal()
payment_failed = Signal()
payment_requires_action = Signal()
# Sent with `payment_id=<id>` once a reversed (wrong manual) payment is committed.
payment_reversed = Signal()
# Sent with `refund_id=<id>` once a refund is committed: pending refunds of Stripe payments are
# carried out by the Stripe integration, which then calls `refund_mark_succeeded/failed`.
refund_created = Signal()
