"""Invoice state changes. Each one locks the row, checks the transition table, saves the changed
fields, records an event and schedules follow-up work after commit."""

import logging
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext
from djmoney.money import Money

from apps.accounts.selectors import customer_now
from apps.core import clock
from apps.core.audit import audited_with_reason
from apps.core.errors import InvalidTransition, NotEditable, NotFound, ValidationFailed
from apps.core.money import quantize_amount
from apps.core.transitions import ensure_transition

from ..constants import (
    INVOICE_TRANSITIONS,
    UNPAID_STATUSES,
    CreditNoteStatus,
    InvoiceEventType,
    InvoiceLineKind,
    InvoiceStatus,
)
from ..events import invoice_event_record
from ..models import CreditNote, Invoice, InvoiceItem, ProgressiveCrossing
from ..pricing import invoice_totals, tax_added
from ..signals import invoices_finalized
from .numbering import invoice_number_allocate
from .taxes import invoice_tax_breakdown, invoice_taxes_store

logger = logging.getLogger(__name__)


def invoice_lock(invoice_id: int) -> Invoice:
    try:
        return Invoice.objects.select_for_update(of=("self",)).select_related("customer").get(pk=invoice_id)
    except Invoice.DoesNotExist as exc:
        raise NotFound(gettext("Invoice %(invoice_id)s does not exist.") % {"invoice_id": invoice_id}) from exc


def invoice_ensure_transition(invoice: Invoice, target: str) -> None:
    ensure_transition(
        invoice,
        target,
        transitions=INVOICE_TRANSITIONS,
        status_enum=InvoiceStatus,
        describe=lambda: gettext("Invoice %(invoice)s") % {"invoice": invoice},
    )


def invoice_ensure_draft(invoice: Invoice) -> None:
    if invoice.status != InvoiceStatus.DRAFT:
        raise NotEditable(
            gettext(
                "Invoice %(invoice)s is %(status)s: a finalized invoice never changes (issue a credit note "
                "to correct it)."
            )
            % {"invoice": invoice, "status": invoice.get_status_display().lower()}
        )


# The invoice fields `invoice_recompute_totals` sets (for `save(update_fields=...)`).
TOTALS_FIELDS = [
    "subtotal", "subtotal_currency", "tax_total", "tax_total_currency", "total", "total_currency", "reverse_charge",
]  # fmt: skip


def invoice_recompute_totals(invoice: Invoice) -> None:
    """Set a draft's taxes (per-rate rows, written now) and its subtotal, tax total and total (set on
    the instance; the caller saves `TOTALS_FIELDS`). The subtotal is the sum of the lines as billed
    (with any inclusive tax inside them); the tax total is the tax added on top by exclusive rates."""
    invoice_ensure_draft(invoice)
    currency = invoice.currency
    amounts = [line.amount.amount for line in invoice.lines.all()]
    breakdown, reverse_charge = invoice_tax_breakdown(invoice=invoice)
    invoice_taxes_store(invoice=invoice, breakdown=breakdown)
    tax_total = tax_added(breakdown)
    subtotal, total = invoice_totals(line_amounts=amounts, tax_total=tax_total, currency=currency)
    invoice.subtotal = Money(subtotal, currency)
    invoice.tax_total = Money(quantize_amount(tax_total, currency), currency)
    invoice.total = Money(total, currency)
    invoice.reverse_charge = reverse_charge


@transaction.atomic
def invoice_update_draft(
    *, invoice_id: int, actor=None, memo: str | None = None, due_on: date | None = None
) -> Invoice:
    """Staff edits of a draft before it is issued."""
    invoice = invoice_lock(invoice_id)
    invoice_ensure_draft(invoice)
    changed: dict[str, str] = {}
    if memo is not None and memo != invoice.memo:
        invoice.memo = memo
        changed["memo"] = memo
    if due_on is not None and due_on != invoice.due_on:
        if due_on < clock.now().date():
            raise ValidationFailed(
                gettext("The due date cannot be in the past."), fields={"due_on": [gettext("Cannot be in the past.")]}
            )
        invoice.due_on = due_on
        changed["due_on"] = due_on.isoformat()
    if changed:
        invoice.save(update_fields=[*changed, "updated_at"])
        invoice_event_record(invoice=invoice, type=InvoiceEventType.UPDATED, actor=actor, data=changed)
    return invoice


def bill_language(customer) -> translation.override:
    """Text written onto a customer's bills (line descriptions and explanations) is written in the
    language its bills are issued in: the customer's (see `customer_snapshot`)."""
    return translation.override(customer.preferred_language or settings.LANGUAGE_CODE)


def customer_snapshot(customer) -> dict:
    """The buyer as printed on the bill, frozen at finalization."""
    return {
        "id": customer.pk,
        "external_id": customer.external_id,
        "name": customer.name,
        "email": customer.email,
        "address_lines": customer.address_lines,
        "country": str(customer.country.code),
        "tax_id": customer.tax_id,
        "language": customer.preferred_language,
    }


def payment_terms_days(customer) -> int:
    terms = customer.payment_terms_days
    return settings.INVOICE_PAYMENT_TERMS_DAYS if terms is None else terms


@transaction.atomic
def invoice_finalize(
    *, invoice_id: int, actor=None, now: datetime | None = None, collection_method: str | None = None
) -> Invoice:
    """Issue a draft: freeze its amounts, snapshot seller and buyer, give it the next number of its
    series, and render its PDF after commit. A zero-amount invoice is settled at once; so is one that
    comes to below zero (e.g. a credit for unused seats larger than the new period's fee): it is issued
    with its lines and totals as they are, nothing is due, and what it came to below zero goes to the
    customer's credit balance (`invoice_credit_excess_to_balance`).

    The customer's prepaid credits (apps.wallets) pay what is due first, as lines of their own taken
    off the total after tax. `collection_method`: how this invoice is paid, when not the customer's
    (an automatic credit top-up is charged to the card)."""
    from apps.wallets.services.consumption import invoice_wallet_credits_apply

    now = now or clock.now()
    invoice = invoice_lock(invoice_id)
    invoice_ensure_transition(invoice, InvoiceStatus.OPEN)
    if not invoice.lines.exists():
        raise ValidationFailed(gettext("An invoice without lines cannot be finalized."))
    invoice_recompute_totals(invoice)
    with bill_language(invoice.customer):
        if invoice_wallet_credits_apply(invoice=invoice, now=now):
            invoice_recompute_totals(invoice)
    invoice.number = invoice_number_allocate(issued_at=now)
    invoice.issued_at = now
    if invoice.due_on is None or invoice.due_on < now.date():
        invoice.due_on = (now + timedelta(days=payment_terms_days(invoice.customer))).date()
    invoice.seller_details = dict(settings.SELLER)
    invoice.customer_details = customer_snapshot(invoice.customer)
    invoice.auto_finalize_at = None
    invoice.collection_method = collection_method or invoice.customer.collection_method
    invoice.status = InvoiceStatus.OPEN
    if invoice.total.amount <= Decimal(0):
        invoice.status = InvoiceStatus.PAID
        invoice.paid_at = now
    invoice.save(
        update_fields=[
            "number", "issued_at", "due_on", "seller_details", "customer_details", "auto_finalize_at",
            "collection_method", "status", "paid_at", *TOTALS_FIELDS, "updated_at",
        ]
    )  # fmt: skip
    invoice_event_record(
        invoice=invoice, type=InvoiceEventType.FINALIZED, actor=actor, occurred_at=now,
        data={"number": invoice.number, "total": str(invoice.total.amount), "currency": invoice.currency},
    )  # fmt: skip
    if invoice.total.amount < 0:
        item = invoice_credit_excess_to_balance(invoice, now=now)
        invoice_event_record(
            invoice=invoice, type=InvoiceEventType.PAID, actor=actor, occurred_at=now,
            data={"reason": "below zero: credited to the balance", "credited_to_balance": str(-item.amount.amount),
                  "currency": invoice.currency, "invoice_item": item.pk},
        )  # fmt: skip
    elif invoice.status == InvoiceStatus.PAID:
        invoice_event_record(
            invoice=invoice, type=InvoiceEventType.PAID, actor=actor, occurred_at=now, data={"reason": "zero amount"}
        )
    invoice_id = invoice.pk
    transaction.on_commit(lambda: _enqueue_pdf(invoice_id))
    invoices_finalized_send_on_commit([invoice_id])
    return invoice


def invoice_credit_excess_to_balance(invoice: Invoice, *, now: datetime) -> InvoiceItem:
    """What a finalized invoice came to below zero, tax included, waits on the customer's credit
    balance in the invoice's currency, taken off their next invoices after tax (like a credit note's
    credit). Called once, by the finalization that issues the invoice (its row is locked and it is
    no longer a draft afterwards), so a retried billing run never credits it twice."""
    currency = invoice.currency
    excess = -invoice.total.amount
    with bill_language(invoice.customer):  # taken off the customer's next invoices: in their language
        description = gettext("Credit from invoice %(invoice)s") % {"invoice": invoice.number}
        explanation = gettext(
            "Invoice %(invoice)s came to %(amount)s below zero, tax included; credited to the balance."
        ) % {"invoice": invoice.number, "amount": Money(excess, currency)}
    return InvoiceItem.objects.create(
        customer_id=invoice.customer_id, subscription=None, kind=InvoiceLineKind.INVOICE_CREDIT,
        description=description, quantity=Decimal(1), amount=Money(-excess, currency), created_at=now,
        explanation=[explanation],
    )  # fmt: skip


def invoices_finalized_send_on_commit(invoice_ids: list[int]) -> None:
    """Tell payment collection, once committed, that these invoices were issued."""
    ids = list(invoice_ids)
    if ids:
        transaction.on_commit(lambda: invoices_finalized.send(sender=Invoice, invoice_ids=ids), robust=True)


def _enqueue_pdf(invoice_id: int) -> None:
    """Hand the PDF to the `pdf` queue, which then emails the bill to the customer unless
    `INVOICE_EMAIL_ON_FINALIZE` is off. The invoice is already committed: if the broker is down, the
    failure is recorded on the invoice (staff can render the PDF from the admin) instead of failing
    the request that finalized it."""
    from kombu.exceptions import OperationalError as BrokerUnavailable

    from ..tasks import invoice_render_pdf_task

    try:
        invoice_render_pdf_task.delay(invoice_id, email_customer=settings.INVOICE_EMAIL_ON_FINALIZE)
    except BrokerUnavailable as exc:
        logger.exception("could not queue the PDF of invoice %s", invoice_id)
        invoice = Invoice.objects.filter(pk=invoice_id).first()
        if invoice is not None:
            invoice_event_record(
                invoice=invoice, type=InvoiceEventType.PDF_FAILED, data={"error": f"queue unavailable: {exc}"}
            )


def enqueue_pdfs(invoice_ids: list[int]) -> None:
    """Hand the PDFs of many committed invoices (a billing run chunk) to the `pdf` queue as one task."""
    from kombu.exceptions import OperationalError as BrokerUnavailable

    from ..tasks import invoice_render_pdfs_task

    try:
        invoice_render_pdfs_task.delay(list(invoice_ids), email_customer=settings.INVOICE_EMAIL_ON_FINALIZE)
    except BrokerUnavailable as exc:
        logger.exception("could not queue the PDFs of %s invoices", len(invoice_ids))
        for invoice in Invoice.objects.filter(pk__in=invoice_ids):
            invoice_event_record(
                invoice=invoice, type=InvoiceEventType.PDF_FAILED, data={"error": f"queue unavailable: {exc}"}
            )


def _transition(
    *, invoice_id: int, target: str, event: str, stamp_field: str, actor, now: datetime | None, data: dict
) -> Invoice:
    now = now or clock.now()
    invoice = invoice_lock(invoice_id)
    invoice_ensure_transition(invoice, target)
    invoice.status = target
    setattr(invoice, stamp_field, now)
    invoice.save(update_fields=["status", stamp_field, "updated_at"])
    invoice_event_record(invoice=invoice, type=event, actor=actor, occurred_at=now, data=data)
    return invoice


@audited_with_reason
@transaction.atomic
def invoice_void(*, invoice_id: int, actor=None, reason: str = "", now: datetime | None = None) -> Invoice:
    """Cancel an invoice for good. Its number, if it has one, stays used (no gap). A voided draft gives
    back the waiting items it had taken (prorations, credits): the next invoice takes them. An invoice
    with credit notes is not voided (the credit notes already corrected it): credit the rest."""
    was_draft = Invoice.objects.filter(pk=invoice_id, status=InvoiceStatus.DRAFT).exists()
    if Invoice.objects.filter(pk=invoice_id, status__in=UNPAID_STATUSES, amount_paid__gt=0).exists():
        raise InvalidTransition(
            gettext(
                "Payments have paid part of this invoice: it cannot be voided. Credit it instead (a credit "
                "note refunds what was paid), or reverse a payment recorded by mistake."
            ),
            fields={"status": [gettext("The invoice has payments.")]},
        )
    if CreditNote.objects.filter(invoice_id=invoice_id, status=CreditNoteStatus.ISSUED).exists():
        raise InvalidTransition(
            gettext("This invoice has credit notes: it cannot be voided. Credit what is left of it instead."),
            fields={"status": [gettext("The invoice has credit notes.")]},
        )
    if ProgressiveCrossing.objects.filter(invoice_id=invoice_id, deducted_by__isnull=False).exists():
        raise InvalidTransition(
            gettext(
                "The invoice that closed this period already deducted this interim invoice's usage: it cannot "
                "be voided any more. Credit it instead."
            ),
            fields={"status": [gettext("The interim invoice was deducted by the period's final invoice.")]},
        )
    invoice = _transition(
        invoice_id=invoice_id, target=InvoiceStatus.VOID, event=InvoiceEventType.VOIDED,
        stamp_field="voided_at", actor=actor, now=now, data={"reason": reason},
    )  # fmt: skip
    if was_draft:
        InvoiceItem.objects.filter(invoice=invoice).update(invoice=None)
    else:  # the prepaid credits it consumed go back to their wallets
        from apps.wallets.services.returns import invoice_wallet_credits_return

        invoice_wallet_credits_return(invoice=invoice, now=now or customer_now(invoice.customer), actor=actor)
    return invoice


@audited_with_reason
@transaction.atomic
def invoice_mark_uncollectible(
    *, invoice_id: int, actor=None, reason: str = "", now: datetime | None = None
) -> Invoice:
    return _transition(
        invoice_id=invoice_id, target=InvoiceStatus.UNCOLLECTIBLE, event=InvoiceEventType.MARKED_UNCOLLECTIBLE,
        stamp_field="marked_uncollectible_at", actor=actor, now=now, data={"reason": reason},
    )  # fmt: skip
