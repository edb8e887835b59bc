"""Signals the invoices app sends for other apps (payment collection) to hook into. Sent after
commit; they carry ids only and no domain logic of their own."""

from django.dispatch import Signal

# Sent with `invoice_ids=[...]` once invoices have been finalized and committed, by every
# finalization path: `invoice_finalize` (one invoice) and the billing run's bulk path (a chunk).
# Some may already be paid (a zero total is settled at finalization): receivers check the status.
invoices_finalized = Signal()
