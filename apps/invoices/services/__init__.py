"""Invoice documents: lifecycle, numbering, taxes, credit notes, PDF bills, emails. The billing engine
(runs, line building, settlement, subscription changes, test clocks) is apps.billing."""

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
    "credit_note_issue",
    "credit_note_preview",
    "credit_note_render_pdf",
    "credit_note_void",
    "invoice_email_failure_record",
    "invoice_email_send",
    "invoice_finalize",
    "invoice_mark_uncollectible",
    "invoice_pdf_ensure",
    "invoice_pdf_failure_record",
    "invoice_pdf_verify",
    "invoice_render_pdf",
    "invoice_update_draft",
    "invoice_void",
    "tax_rate_create",
    "tax_rate_update",
]
