from .billing import (
    bill_due_subscriptions,
    invoice_finalize_due_drafts,
    subscription_bill_due,
    subscription_bill_next_period,
    subscription_start,
)
from .changes import (
    subscription_cancel_credit_preview,
    subscription_cancel_with_credit,
    subscription_change,
    subscription_change_preview,
    subscription_pause,
    subscription_resume,
    subscription_upcoming_invoice,
)
from .credit_notes import (
    CreditNoteLineRequest,
    credit_note_issue,
    credit_note_preview,
    credit_note_void,
)
from .emails import invoice_email_failure_record, invoice_email_send
from .lifecycle import (
    invoice_finalize,
    invoice_mark_uncollectible,
    invoice_update_draft,
    invoice_void,
)
from .pdf import (
    credit_note_render_pdf,
    invoice_pdf_ensure,
    invoice_pdf_failure_record,
    invoice_pdf_verify,
    invoice_render_pdf,
)
from .taxes import tax_rate_create, tax_rate_update

__all__ = [
    "CreditNoteLineRequest",
    "bill_due_subscriptions",
    "credit_note_issue",
    "credit_note_preview",
    "credit_note_render_pdf",
    "credit_note_void",
    "invoice_email_failure_record",
    "invoice_email_send",
    "invoice_finalize",
    "invoice_finalize_due_drafts",
    "invoice_mark_uncollectible",
    "invoice_pdf_ensure",
    "invoice_pdf_failure_record",
    "invoice_pdf_verify",
    "invoice_render_pdf",
    "invoice_update_draft",
    "invoice_void",
    "subscription_bill_due",
    "subscription_bill_next_period",
    "subscription_cancel_credit_preview",
    "subscription_cancel_with_credit",
    "subscription_change",
    "subscription_change_preview",
    "subscription_pause",
    "subscription_resume",
    "subscription_start",
    "subscription_upcoming_invoice",
    "tax_rate_create",
    "tax_rate_update",
]
