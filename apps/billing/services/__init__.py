"""The billing engine: billing runs and their bulk path, line building, settlement, subscription
changes and test clocks. It turns what subscriptions owe over time into invoice documents
(apps.invoices), which it never edits once they are issued."""

from .billing import (
    bill_due_subscriptions,
    invoice_finalize_due_drafts,
    subscription_bill_due,
    subscription_bill_next_period,
    subscription_start,
)
from .changes import (
    subscription_cancel,
    subscription_cancel_credit_preview,
    subscription_cancel_with_credit,
    subscription_change,
    subscription_change_preview,
    subscription_pause,
    subscription_resume,
    subscription_upcoming_invoice,
)

__all__ = [
    "bill_due_subscriptions",
    "invoice_finalize_due_drafts",
    "subscription_bill_due",
    "subscription_bill_next_period",
    "subscription_cancel",
    "subscription_cancel_credit_preview",
    "subscription_cancel_with_credit",
    "subscription_change",
    "subscription_change_preview",
    "subscription_pause",
    "subscription_resume",
    "subscription_start",
    "subscription_upcoming_invoice",
]
