"""Credit notes: the one way to correct an issued invoice (see docs/billing-rules.md, "Credit notes").

A credit note credits the whole invoice, some of its lines (by quantity or amount), or a plain amount.
The invoice itself never changes. What is credited is settled by the invoice's status:

- unpaid (open, uncollectible): the credit reduces what is due (`amount_due_reduction`); once nothing
  is due any more, the invoice is settled (marked paid, by the credit notes). On a partly paid invoice,
  what the credit note credits beyond what is still due is settled as on a paid one;
- paid: the credit is refunded and/or credited to the customer's balance, a waiting customer credit
  taken off the customer's next invoices after tax, never below zero. The refund is paid back out of
  the invoice's payments by `apps.payments.services.credit_note_issue_and_refund` (Refund rows).

`credit_note_preview` computes a credit note without writing; `credit_note_issue` issues it inside one
transaction holding the invoice's row lock, so concurrent credit notes of one invoice queue and can
never credit more than the invoice.
"""

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import translation
from django.utils.translation import gettext, gettext_noop
from djmoney.money import Money

from apps.accounts.selectors import customer_now
from apps.catalog.pricing import format_quantity
from apps.core.audit import audited_with_reason
from apps.core.errors import InvalidTransition, NotFound, ValidationFailed
from apps.core.money import has_more_decimals_than_currency, quantize_amount
from apps.core.money_format import money_text

from ..constants import (
    AFTER_TAX_LINE_KINDS,
    CREDITABLE_STATUSES,
    UNPAID_STATUSES,
    CreditNoteLineKind,
    CreditNoteReason,
    CreditNoteStatus,
    InvoiceEventType,
    InvoiceLineKind,
    InvoiceStatus,
)
from ..events import invoice_event_record
from ..models import CreditNote, CreditNoteLine, CreditNoteTax, Invoice, InvoiceItem, InvoiceLine
from ..pricing import (
    CreditedTax,
    InvoiceTaxSpec,
    credit_note_taxes,
    credit_share,
    line_credit_by_quantity,
)
from ..templatetags.invoice_format import money
from .lifecycle import bill_language, invoice_ensure_transition, invoice_lock
from .numbering import credit_note_number_allocate
from .pdf import document_language

logger = logging.getLogger(__name__)


def _document_text(language: str, message: str, **params: str | Money) -> str:
    """A text printed on the credit note (a line's name or explanation; `message` marked with
    `gettext_noop`), in the credit note's language (the credited invoice's), amounts as on the bill."""
    with translation.override(language):
        values = {name: money(value) if isinstance(value, Money) else value for name, value in params.items()}
        return gettext(message) % values if values else gettext(message)


@dataclass(frozen=True)
class CreditNoteLineRequest:
    """Credit (part of) one invoice line: `quantity` units of it, or `amount` of it, or (neither) all
    that is left of it."""

    invoice_line_id: int
    quantity: Decimal | None = None
    amount: Decimal | None = None


@dataclass(frozen=True)
class CreditNoteLineDraft:
    kind: str
    description: str
    amount: Decimal
    invoice_line_id: int | None = None
    quantity: Decimal | None = None
    explanation: tuple[str, ...] = ()


@dataclass(frozen=True)
class CreditNoteDraft:
    """A credit note as it would be issued, and where it leaves the invoice."""

    invoice: Invoice
    currency: str
    reason: str
    memo: str
    lines: list[CreditNoteLineDraft]
    taxes: list[CreditedTax]
    subtotal: Decimal
    tax_total: Decimal
    total: Decimal
    amount_due_reduction: Decimal
    credit_to_balance: Decimal
    refund_amount: Decimal
    creditable_before: Decimal  # of the invoice's total, still creditable before this credit note
    amount_due_before: Decimal  # what the customer still owed on the invoice (0 once paid)
    settles_invoice: bool = False  # the invoice was unpaid and nothing is due after this credit note
    # Of what the invoice billed before prepaid credits (its lines and tax), still creditable before
    # this credit note: on an invoice the credits paid, the lines credited give their share of the
    # credits back to the wallets (the money total is only what was paid in money).
    creditable_before_credits: Decimal = Decimal(0)
    returns_prepaid_credits: bool = False  # the invoice consumed prepaid credits and lines are credited
    # The share of the money-balance credit the invoice used (a credit note's, an overpayment's) that
    # goes back on the customer's balance with the charges credited (`_balance_returned`); not in `total`.
    balance_returned: Decimal = Decimal(0)

    @property
    def creditable_after(self) -> Decimal:
        return self.creditable_before - self.total

    @property
    def amount_due_after(self) -> Decimal:
        return self.amount_due_before - self.amount_due_reduction


@dataclass
class _Credited:
    """What the issued credit notes of an invoice have credited so far."""

    by_line: dict[int, Decimal] = field(default_factory=dict)
    quantity_by_line: dict[int, Decimal] = field(default_factory=dict)
    by_kind: dict[str, Decimal] = field(default_factory=dict)
    tax_by_invoice_tax: dict[int, Decimal] = field(default_factory=dict)
    total: Decimal = Decimal(0)
    tax_total: Decimal = Decimal(0)
    amount_due_reduction: Decimal = Decimal(0)

    def kind(self, kind: str) -> Decimal:
        return self.by_kind.get(kind, Decimal(0))


def _credited_so_far(invoice: Invoice) -> _Credited:
    issued = Q(credit_note__invoice=invoice, credit_note__status=CreditNoteStatus.ISSUED)
    credited = _Credited()
    for row in (
        CreditNoteLine.objects.filter(issued)
        .values("invoice_line_id", "kind")
        .annotate(amount=Sum("amount"), quantity=Sum("quantity"))
    ):
        credited.by_kind[row["kind"]] = credited.kind(row["kind"]) + row["amount"]
        if row["invoice_line_id"] is not None:
            credited.by_line[row["invoice_line_id"]] = row["amount"]
            credited.quantity_by_line[row["invoice_line_id"]] = row["quantity"] or Decimal(0)
    for tax in CreditNoteTax.objects.filter(issued).values("invoice_tax_id").annotate(amount=Sum("tax_amount")):
        credited.tax_by_invoice_tax[tax["invoice_tax_id"]] = tax["amount"]
    totals = CreditNote.objects.filter(invoice=invoice, status=CreditNoteStatus.ISSUED).aggregate(
        total=Sum("total"), tax_total=Sum("tax_total"), amount_due_reduction=Sum("amount_due_reduction")
    )
    credited.total = totals["total"] or Decimal(0)
    credited.tax_total = totals["tax_total"] or Decimal(0)
    credited.amount_due_reduction = totals["amount_due_reduction"] or Decimal(0)
    return credited


def _ensure_creditable(invoice: Invoice) -> None:
    if invoice.status == InvoiceStatus.DRAFT:
        raise InvalidTransition(
            gettext("Invoice %(invoice)s is a draft: change the draft instead of crediting it.") % {"invoice": invoice},
            fields={"invoice": [gettext("A draft cannot be credited.")]},
        )
    if invoice.status not in CREDITABLE_STATUSES:
        raise InvalidTransition(
            gettext("Invoice %(invoice)s is %(status)s: nothing is owed on it to credit.")
            % {"invoice": invoice, "status": invoice.get_status_display().lower()},
            fields={"invoice": [gettext("A void invoice cannot be credited.")]},
        )


def _is_taxed(line: InvoiceLine) -> bool:
    return line.kind not in AFTER_TAX_LINE_KINDS


def _positive(value: Decimal | None, currency: str, errors: dict[str, list[str]], name: str) -> bool:
    if value is None:
        return False
    if value <= 0:
        errors.setdefault(name, []).append(gettext("Must be greater than zero."))
        return False
    if name.endswith("quantity"):
        return True
    if has_more_decimals_than_currency(value, currency):
        errors.setdefault(name, []).append(
            gettext("Has more decimals than %(currency)s allows.") % {"currency": currency}
        )
        return False
    return True


def _requested_lines(
    *,
    invoice: Invoice,
    lines: list[InvoiceLine],
    requests: list[CreditNoteLineRequest],
    credited: _Credited,
    currency: str,
    language: str,
    errors: dict[str, list[str]],
) -> list[CreditNoteLineDraft]:
    by_id = {line.pk: line for line in lines}
    drafts: list[CreditNoteLineDraft] = []
    seen: set[int] = set()
    for index, request in enumerate(requests):
        prefix = f"lines.{index}"
        line = by_id.get(request.invoice_line_id)
        if line is None:
            errors.setdefault(f"{prefix}.invoice_line", []).append(
                gettext("Not a line of invoice %(invoice)s.") % {"invoice": invoice}
            )
            continue
        if line.pk in seen:
            errors.setdefault(f"{prefix}.invoice_line", []).append(gettext("This line is already listed."))
            continue
        seen.add(line.pk)
        if line.amount.amount <= 0 or not _is_taxed(line):
            errors.setdefault(f"{prefix}.invoice_line", []).append(
                gettext("Only charges can be credited line by line (not discounts or credits).")
            )
            continue
        if request.quantity is not None and request.amount is not None:
            errors.setdefault(prefix, []).append(gettext("Give a quantity or an amount, not both."))
            continue
        amount_before = credited.by_line.get(line.pk, Decimal(0))
        quantity_before = credited.quantity_by_line.get(line.pk, Decimal(0))
        left = line.amount.amount - amount_before
        if left <= 0:
            errors.setdefault(f"{prefix}.invoice_line", []).append(
                gettext("This line has already been credited in full.")
            )
            continue
        quantity: Decimal | None = None
        explanation: tuple[str, ...]
        if request.quantity is not None:
            if not _positive(request.quantity, currency, errors, f"{prefix}.quantity"):
                continue
            quantity_left = line.quantity - quantity_before
            if request.quantity > quantity_left:
                left_text = format_quantity(max(quantity_left, Decimal(0)))
                errors.setdefault(f"{prefix}.quantity", []).append(
                    gettext("At most %(left_text)s unit(s) are left to credit on this line.") % {"left_text": left_text}
                )
                continue
            quantity = request.quantity
            amount = line_credit_by_quantity(
                line_amount=line.amount.amount, line_quantity=line.quantity, quantity_before=quantity_before,
                amount_before=amount_before, quantity=quantity, currency=currency,
            )  # fmt: skip
            explanation = (
                _document_text(
                    language, gettext_noop("%(quantity)s of %(line_quantity)s unit(s) of %(line_amount)s"),
                    quantity=format_quantity(quantity), line_quantity=format_quantity(line.quantity),
                    line_amount=line.amount,
                ),
            )  # fmt: skip
        elif request.amount is not None:
            if not _positive(request.amount, currency, errors, f"{prefix}.amount"):
                continue
            if request.amount > left:
                errors.setdefault(f"{prefix}.amount", []).append(
                    gettext("At most %(left)s is left to credit on this line.") % {"left": money_text(left, currency)}
                )
                continue
            amount = request.amount
            explanation = (
                _document_text(
                    language, gettext_noop("%(amount)s of %(line_amount)s"),
                    amount=Money(amount, currency), line_amount=line.amount,
                ),
            )  # fmt: skip
        else:
            amount = left
            quantity = _quantity_left(line, credited, currency)
            explanation = (
                (_document_text(language, gettext_noop("All that was left of the line")),) if amount_before else ()
            )
        if amount <= 0:
            errors.setdefault(prefix, []).append(gettext("This comes to nothing to credit."))
            continue
        drafts.append(_line_draft(line, amount=amount, quantity=quantity, explanation=explanation))
    return drafts


def _quantity_left(line: InvoiceLine, credited: _Credited, currency: str) -> Decimal | None:
    """The units left on a line when all its earlier credits were by quantity (None when some were
    plain amounts: what is left is then an amount, not a number of units)."""
    quantity_before = credited.quantity_by_line.get(line.pk, Decimal(0))
    amount_before = credited.by_line.get(line.pk, Decimal(0))
    by_quantity = (
        credit_share(credited=quantity_before, whole=line.quantity, share=line.amount.amount, currency=currency)
        == amount_before
    )
    left = line.quantity - quantity_before
    return left if by_quantity and left > 0 else None


def _line_draft(
    line: InvoiceLine, *, amount: Decimal, quantity: Decimal | None, explanation: tuple[str, ...] = ()
) -> CreditNoteLineDraft:
    return CreditNoteLineDraft(
        kind=CreditNoteLineKind.INVOICE_LINE, description=line.description, amount=amount,
        invoice_line_id=line.pk, quantity=quantity, explanation=explanation,
    )  # fmt: skip


def _full_lines(*, lines: list[InvoiceLine], credited: _Credited, language: str) -> list[CreditNoteLineDraft]:
    """Everything still credited: what is left of every charge, less what earlier credit notes took
    as plain amounts (they credited the invoice without a line)."""
    drafts = []
    for line in lines:
        if line.amount.amount <= 0 or not _is_taxed(line):
            continue
        left = line.amount.amount - credited.by_line.get(line.pk, Decimal(0))
        if left <= 0:
            continue
        drafts.append(
            _line_draft(line, amount=left, quantity=_quantity_left(line, credited, str(line.amount.currency)))
        )
    earlier_amounts = credited.kind(CreditNoteLineKind.ADJUSTMENT)
    if earlier_amounts > 0 and drafts:
        drafts.append(
            CreditNoteLineDraft(
                kind=CreditNoteLineKind.ADJUSTMENT,
                description=_document_text(language, gettext_noop("Less amounts credited earlier")),
                amount=-earlier_amounts,
                explanation=(
                    _document_text(
                        language,
                        gettext_noop("Earlier credit notes credited this much of the invoice without naming a line."),
                    ),
                ),
            )
        )  # fmt: skip
    return drafts


def _share_lines(
    *, lines: list[InvoiceLine], drafts: list[CreditNoteLineDraft], credited: _Credited, currency: str, language: str
) -> list[CreditNoteLineDraft]:
    """The share of the invoice's discounts (and of the customer balance applied on it) that goes with
    the charges credited: a charge of 100 on an invoice with 10 % off credits 90."""
    charges = sum((line.amount.amount for line in lines if line.amount.amount > 0 and _is_taxed(line)), Decimal(0))
    credited_charges = credited.kind(CreditNoteLineKind.INVOICE_LINE) + sum(
        (draft.amount for draft in drafts if draft.kind == CreditNoteLineKind.INVOICE_LINE), Decimal(0)
    )
    shares = []
    for kind, description, taxed in [
        (CreditNoteLineKind.DISCOUNT_SHARE, gettext_noop("Less the discounts of the invoice on these lines"), True),
        (CreditNoteLineKind.BALANCE_SHARE, gettext_noop("Less the balance credit applied on the invoice"), False),
    ]:
        whole = -sum(
            (line.amount.amount for line in lines if line.amount.amount < 0 and _is_taxed(line) == taxed), Decimal(0)
        )
        if whole <= 0:
            continue
        share = credit_share(credited=credited_charges, whole=charges, share=whole, currency=currency)
        amount = share + credited.kind(kind)  # earlier shares are negative
        if amount != 0:
            shares.append(
                CreditNoteLineDraft(
                    kind=kind, description=_document_text(language, description), amount=-amount,
                    explanation=(
                        _document_text(
                            language,
                            gettext_noop("%(whole)s on %(charges)s of charges, in proportion to the charges credited"),
                            whole=Money(whole, currency), charges=Money(charges, currency),
                        ),
                    ),
                )
            )  # fmt: skip
    return shares


# Lines of balance credits paid in money earlier (a credit note's, an overpayment's, an invoice below zero).
MONEY_BALANCE_LINE_KINDS = (InvoiceLineKind.CREDIT_NOTE, InvoiceLineKind.PAYMENT_CREDIT, InvoiceLineKind.INVOICE_CREDIT)


def _balance_returned(
    *, invoice: Invoice, lines: list[InvoiceLine], drafts: list[CreditNoteLineDraft], credited: _Credited
) -> Decimal:
    """The share of the money-balance credit applied on the invoice that goes back on the customer's
    balance with this credit note: the balance credit × the cumulative share of the charges credited
    (the lines credited by all the invoice's issued credit notes, of its charges before tax), rounded once
    (half up) to the currency, less what earlier credit notes put back — so it never exceeds what the
    invoice used, and crediting everything puts back exactly that. A credit note that credits no line
    (a plain amount) puts nothing back, as it gives no prepaid credits back."""
    currency = invoice.currency
    applied = -sum(
        (line.amount.amount for line in lines if line.kind in MONEY_BALANCE_LINE_KINDS and line.amount.amount < 0),
        Decimal(0),
    )
    now = sum((draft.amount for draft in drafts if draft.kind == CreditNoteLineKind.INVOICE_LINE), Decimal(0))
    if applied <= 0 or now <= 0:
        return Decimal(0)
    charges = sum((line.amount.amount for line in lines if line.amount.amount > 0 and _is_taxed(line)), Decimal(0))
    cumulative = credited.kind(CreditNoteLineKind.INVOICE_LINE) + now
    before = CreditNote.objects.filter(invoice=invoice, status=CreditNoteStatus.ISSUED).aggregate(
        total=Sum("balance_returned")
    )["total"] or Decimal(0)
    share = credit_share(credited=cumulative, whole=charges, share=applied, currency=currency)
    return max(min(share, applied) - before, Decimal(0))


def _tax_specs(invoice: Invoice) -> list[InvoiceTaxSpec]:
    return [
        InvoiceTaxSpec(
            invoice_tax_id=tax.pk,
            name=tax.name,
            percentage=tax.percentage,
            inclusive=tax.inclusive,
            base=tax.taxable_amount.amount + (tax.tax_amount.amount if tax.inclusive else Decimal(0)),
            tax_amount=tax.tax_amount.amount,
        )  # fmt: skip
        for tax in invoice.taxes.all()
    ]


def _settlement(
    *,
    invoice: Invoice,
    total: Decimal,
    amount_due_before: Decimal,
    credit_to_balance: Decimal | None,
    refund_amount: Decimal | None,
    currency: str,
    errors: dict[str, list[str]],
) -> tuple[Decimal, Decimal, Decimal]:
    """(amount_due_reduction, credit_to_balance, refund_amount) adding up to the total."""
    for name, value in [("credit_to_balance", credit_to_balance), ("refund_amount", refund_amount)]:
        if value is not None and value < 0:
            errors.setdefault(name, []).append(gettext("Cannot be negative."))
        elif value is not None and has_more_decimals_than_currency(value, currency):
            errors.setdefault(name, []).append(
                gettext("Has more decimals than %(currency)s allows.") % {"currency": currency}
            )
    reduction = Decimal(0)
    if invoice.status in UNPAID_STATUSES:
        # What is still due is reduced first; only what was already paid of it (a partly paid invoice)
        # is refunded or credited to the balance.
        reduction = min(total, amount_due_before)
        if reduction == total:
            for name, value in [("credit_to_balance", credit_to_balance), ("refund_amount", refund_amount)]:
                if value:
                    errors.setdefault(name, []).append(
                        gettext(
                            "The invoice is not paid: the credit reduces what is due on it; nothing is refunded or "
                            "credited to the balance."
                        )
                    )
            return reduction, Decimal(0), Decimal(0)
    rest = total - reduction
    refund = refund_amount or Decimal(0)
    if refund > rest and "refund_amount" not in errors:
        message = (
            gettext("At most the credit note's total, %(rest)s, is refunded.")
            if reduction == 0
            else gettext("At most the credit note's part already paid, %(rest)s, is refunded.")
        )
        errors.setdefault("refund_amount", []).append(message % {"rest": money_text(rest, currency)})
    balance = credit_to_balance if credit_to_balance is not None else rest - refund
    if rest >= 0 and refund + balance != rest and "credit_to_balance" not in errors and "refund_amount" not in errors:
        message = (
            gettext("The refund and the credit to the balance must add up to the credit note's total, %(rest)s.")
            if reduction == 0
            else gettext(
                "The refund and the credit to the balance must add up to the credit note's part already paid, %(rest)s."
            )
        ) % {"rest": money_text(rest, currency)}
        errors.setdefault("refund_amount" if refund_amount is not None else "credit_to_balance", []).append(message)
    return reduction, max(balance, Decimal(0)), max(refund, Decimal(0))


def _compute(
    invoice: Invoice,
    *,
    reason: str,
    memo: str,
    full: bool,
    lines: list[CreditNoteLineRequest] | None,
    amount: Decimal | None,
    credit_to_balance: Decimal | None,
    refund_amount: Decimal | None,
) -> CreditNoteDraft:
    _ensure_creditable(invoice)
    currency = invoice.currency
    errors: dict[str, list[str]] = {}
    if reason not in CreditNoteReason.values:
        errors["reason"] = [gettext("Choose one of: %(values)s.") % {"values": ", ".join(CreditNoteReason.values)}]
    requests = lines or []
    if full and (requests or amount is not None):
        errors.setdefault("full", []).append(gettext("A full credit note takes no lines or amount."))
    if not full and not requests and amount is None:
        errors.setdefault("lines", []).append(gettext("Credit the whole invoice, some of its lines, or an amount."))
    invoice_lines = list(invoice.lines.all())
    credited = _credited_so_far(invoice)
    creditable_before = invoice.total.amount - credited.total
    amount_due_before = (
        max(invoice.total.amount - invoice.amount_paid.amount - credited.amount_due_reduction, Decimal(0))
        if invoice.status in UNPAID_STATUSES
        else Decimal(0)
    )
    # An invoice paid (in part or in full) with prepaid credits: what can be credited is what it billed
    # before the credits (its lines and tax); the share of the credits goes back to the wallets.
    prepaid_applied = -sum(
        (line.amount.amount for line in invoice_lines if line.kind == InvoiceLineKind.PREPAID_CREDITS), Decimal(0)
    )
    taxed_base = sum((line.amount.amount for line in invoice_lines if _is_taxed(line)), Decimal(0))
    taxed_before = sum(
        (value for kind, value in credited.by_kind.items() if kind != CreditNoteLineKind.BALANCE_SHARE), Decimal(0)
    )
    creditable_before_credits = taxed_base + invoice.tax_total.amount - taxed_before - credited.tax_total
    if (creditable_before_credits if prepaid_applied > 0 else creditable_before) <= 0:
        raise ValidationFailed(
            gettext("Invoice %(invoice)s has already been credited in full.") % {"invoice": invoice},
            fields={"invoice": [gettext("Nothing left to credit.")]},
        )
    language = document_language(invoice.customer_details)
    if full:
        drafts = _full_lines(lines=invoice_lines, credited=credited, language=language)
    else:
        drafts = _requested_lines(
            invoice=invoice, lines=invoice_lines, requests=requests, credited=credited, currency=currency,
            language=language, errors=errors,
        )  # fmt: skip
    drafts += _share_lines(lines=invoice_lines, drafts=drafts, credited=credited, currency=currency, language=language)
    if amount is not None and _positive(amount, currency, errors, "amount"):
        description = memo.strip()[:500] or _document_text(language, gettext_noop("Credit"))
        drafts.append(CreditNoteLineDraft(kind=CreditNoteLineKind.ADJUSTMENT, description=description, amount=amount))

    taxed_now = sum((draft.amount for draft in drafts if draft.kind != CreditNoteLineKind.BALANCE_SHARE), Decimal(0))
    taxes = credit_note_taxes(
        taxes=_tax_specs(invoice), invoice_base=taxed_base, credited_before=taxed_before,
        credited_now=min(taxed_now, max(taxed_base - taxed_before, Decimal(0))),
        tax_before=credited.tax_by_invoice_tax, currency=currency,
    )  # fmt: skip
    tax_total = quantize_amount(sum((tax.tax_amount for tax in taxes if not tax.inclusive), Decimal(0)), currency)
    returns_credits = prepaid_applied > 0 and any(draft.kind == CreditNoteLineKind.INVOICE_LINE for draft in drafts)
    balance_returned = _balance_returned(invoice=invoice, lines=invoice_lines, drafts=drafts, credited=credited)
    if returns_credits and invoice.total.amount == 0:
        drafts = _nothing_paid_in_money(drafts, tax_total=tax_total)
    subtotal = quantize_amount(sum((draft.amount for draft in drafts), Decimal(0)), currency)
    total = subtotal + tax_total
    over_field = "amount" if amount is not None and not requests and not full else "lines"
    if not errors and (total > creditable_before or taxed_before + taxed_now > taxed_base):
        left = gettext("%(creditable_before)s is left to credit on invoice %(invoice)s") % {
            "creditable_before": money_text(creditable_before, currency),
            "invoice": invoice,
        }
        raise ValidationFailed(
            gettext("This would credit %(total)s, but only %(left)s.")
            % {"total": money_text(total, currency), "left": left},
            fields={over_field: [gettext("Only %(left)s (tax included).") % {"left": left}]},
        )
    if not errors and (total < 0 or (total == 0 and not returns_credits)):
        errors.setdefault(over_field, []).append(gettext("Nothing to credit."))
    due_reduction, balance, refund = _settlement(
        invoice=invoice, total=total, amount_due_before=amount_due_before, credit_to_balance=credit_to_balance,
        refund_amount=refund_amount, currency=currency, errors=errors,
    )  # fmt: skip
    if errors:
        raise ValidationFailed(gettext("The credit note is not valid: nothing was issued."), fields=errors)
    due_reduction, balance, refund = (quantize_amount(value, currency) for value in (due_reduction, balance, refund))
    return CreditNoteDraft(
        invoice=invoice, currency=currency, reason=reason, memo=memo, lines=drafts, taxes=taxes,
        subtotal=subtotal, tax_total=tax_total, total=total, amount_due_reduction=due_reduction,
        credit_to_balance=balance, refund_amount=refund, creditable_before=creditable_before,
        amount_due_before=amount_due_before,
        settles_invoice=invoice.status in UNPAID_STATUSES and amount_due_before - due_reduction == 0,
        creditable_before_credits=creditable_before_credits, returns_prepaid_credits=returns_credits,
        balance_returned=balance_returned,
    )  # fmt: skip


def _nothing_paid_in_money(drafts: list[CreditNoteLineDraft], *, tax_total: Decimal) -> list[CreditNoteLineDraft]:
    """On an invoice that credits (and balance) paid in full, total 0.00, the credit note credits no
    money: its share of what paid the invoice is exactly the lines and tax it credits (the share's own
    rounding could leave a cent either way). The prepaid credits go back to the wallets. A plain amount
    is a money credit: it stays in the total (and is refused, nothing having been paid in money)."""
    balanced = (CreditNoteLineKind.INVOICE_LINE, CreditNoteLineKind.DISCOUNT_SHARE)
    credited = sum((draft.amount for draft in drafts if draft.kind in balanced), Decimal(0))
    return [
        replace(draft, amount=-(credited + tax_total)) if draft.kind == CreditNoteLineKind.BALANCE_SHARE else draft
        for draft in drafts
    ]


def _load(invoice_id: int) -> Invoice:
    invoice = Invoice.objects.select_related("customer").filter(pk=invoice_id).first()
    if invoice is None:
        raise NotFound(gettext("Invoice %(invoice_id)s does not exist.") % {"invoice_id": invoice_id})
    return invoice


def credit_note_preview(
    *,
    invoice_id: int,
    reason: str = CreditNoteReason.OTHER,
    memo: str = "",
    full: bool = False,
    lines: list[CreditNoteLineRequest] | None = None,
    amount: Decimal | None = None,
    credit_to_balance: Decimal | None = None,
    refund_amount: Decimal | None = None,
) -> CreditNoteDraft:
    """The credit note `credit_note_issue` would issue with these arguments. Writes nothing; refuses
    what the issue would refuse (`ValidationFailed` with messages per field)."""
    return _compute(
        _load(invoice_id), reason=reason, memo=memo, full=full, lines=lines, amount=amount,
        credit_to_balance=credit_to_balance, refund_amount=refund_amount,
    )  # fmt: skip


@transaction.atomic
def credit_note_issue(
    *,
    invoice_id: int,
    reason: str,
    memo: str = "",
    full: bool = False,
    lines: list[CreditNoteLineRequest] | None = None,
    amount: Decimal | None = None,
    credit_to_balance: Decimal | None = None,
    refund_amount: Decimal | None = None,
    refund_reference: str = "",
    actor: Any = None,
    now: datetime | None = None,
) -> CreditNote:
    """Issue a credit note for an open, paid or uncollectible invoice: number it (its own gapless
    series), credit the customer's balance where it says so, take what it credits off what is due on an
    unpaid invoice (settling it when nothing is left due), record the event on the invoice's trail and
    render its PDF after commit. The invoice's row lock serializes credit notes of one invoice."""
    invoice = invoice_lock(invoice_id)
    now = now or customer_now(invoice.customer)
    draft = _compute(
        invoice, reason=reason, memo=memo, full=full, lines=lines, amount=amount,
        credit_to_balance=credit_to_balance, refund_amount=refund_amount,
    )  # fmt: skip
    currency = draft.currency
    number = credit_note_number_allocate(issued_at=now)
    balance_item = None
    # What the credit note credits to the balance, and the share of the balance credit the invoice used
    # that it puts back there: one credit for the customer's next invoices.
    to_balance = draft.credit_to_balance + draft.balance_returned
    if to_balance > 0:
        with bill_language(invoice.customer):  # taken off the customer's next invoices: in their language
            description = gettext("Credit note %(number)s (invoice %(invoice)s)") % {
                "number": number, "invoice": invoice.number,
            }  # fmt: skip
            explanation = []
            if draft.credit_to_balance > 0:
                explanation.append(
                    gettext("Credited to the balance by credit note %(number)s, tax included.") % {"number": number}
                )
            if draft.balance_returned > 0:
                explanation.append(
                    gettext(
                        "%(amount)s of the balance credit applied on invoice %(invoice)s, given back in proportion "
                        "to the charges credited."
                    )
                    % {"amount": money_text(draft.balance_returned, currency), "invoice": invoice.number}
                )
        balance_item = InvoiceItem.objects.create(
            customer=invoice.customer, subscription=None, kind=InvoiceLineKind.CREDIT_NOTE,
            description=description, quantity=Decimal(1), amount=Money(-to_balance, currency),
            created_at=now, explanation=explanation,
        )  # fmt: skip
    credit_note = CreditNote.objects.create(
        invoice=invoice, customer=invoice.customer, number=number, status=CreditNoteStatus.ISSUED,
        reason=draft.reason, memo=draft.memo, subtotal=Money(draft.subtotal, currency),
        tax_total=Money(draft.tax_total, currency), total=Money(draft.total, currency),
        amount_due_reduction=Money(draft.amount_due_reduction, currency),
        credit_to_balance=Money(draft.credit_to_balance, currency),
        refund_amount=Money(draft.refund_amount, currency), refund_reference=refund_reference,
        balance_returned=draft.balance_returned, balance_item=balance_item, reverse_charge=invoice.reverse_charge,
        issued_at=now,
        issued_by=actor if actor is not None and actor.is_authenticated else None,
        seller_details=dict(settings.SELLER), customer_details=dict(invoice.customer_details),
    )  # fmt: skip
    CreditNoteLine.objects.bulk_create(
        CreditNoteLine(
            credit_note=credit_note,
            position=position,
            kind=line.kind,
            invoice_line_id=line.invoice_line_id,
            description=line.description,
            quantity=line.quantity,
            amount=Money(line.amount, currency),
            explanation=list(line.explanation),
        )  # fmt: skip
        for position, line in enumerate(draft.lines, start=1)
    )
    CreditNoteTax.objects.bulk_create(
        CreditNoteTax(
            credit_note=credit_note,
            invoice_tax_id=tax.invoice_tax_id,
            name=tax.name,
            percentage=tax.percentage,
            inclusive=tax.inclusive,
            taxable_amount=Money(tax.taxable_amount, currency),
            tax_amount=Money(tax.tax_amount, currency),
        )  # fmt: skip
        for tax in draft.taxes
    )
    invoice_event_record(
        invoice=invoice, type=InvoiceEventType.CREDIT_NOTE_ISSUED, actor=actor, occurred_at=now,
        data={
            "credit_note": number, "total": str(draft.total), "currency": currency, "reason": draft.reason,
            "amount_due_reduction": str(draft.amount_due_reduction),
            "credit_to_balance": str(draft.credit_to_balance), "refund_amount": str(draft.refund_amount),
            **({"balance_returned": str(draft.balance_returned)} if draft.balance_returned else {}),
        },
    )  # fmt: skip
    # The prepaid credits the invoice consumed go back to their wallets, in the share credited.
    from apps.wallets.services.returns import invoice_wallet_credits_return

    invoice_wallet_credits_return(invoice=invoice, now=now, credit_note=credit_note, actor=actor)
    if draft.settles_invoice:
        invoice_ensure_transition(invoice, InvoiceStatus.PAID)
        invoice.status = InvoiceStatus.PAID
        invoice.paid_at = now
        invoice.save(update_fields=["status", "paid_at", "updated_at"])
        invoice_event_record(
            invoice=invoice, type=InvoiceEventType.PAID, actor=actor, occurred_at=now,
            data={"reason": "credited in full", "credit_note": number},
        )  # fmt: skip
    credit_note_id = credit_note.pk
    transaction.on_commit(lambda: _enqueue_pdf(credit_note_id))
    return credit_note


def _enqueue_pdf(credit_note_id: int) -> None:
    """Hand the PDF to the `pdf` queue after commit; a broker outage is recorded on the invoice's
    trail (staff can render it from the admin) rather than failing the request that issued it."""
    from kombu.exceptions import OperationalError as BrokerUnavailable

    from ..tasks import credit_note_render_pdf_task

    try:
        credit_note_render_pdf_task.delay(credit_note_id)
    except BrokerUnavailable as exc:
        logger.exception("could not queue the PDF of credit note %s", credit_note_id)
        credit_note = CreditNote.objects.select_related("invoice").filter(pk=credit_note_id).first()
        if credit_note is not None:
            invoice_event_record(
                invoice=credit_note.invoice, type=InvoiceEventType.CREDIT_NOTE_PDF_FAILED,
                data={"credit_note": credit_note.number, "error": f"queue unavailable: {exc}"},
            )  # fmt: skip


@audited_with_reason
@transaction.atomic
def credit_note_void(
    *, credit_note_id: int, reason: str = "", actor: Any = None, now: datetime | None = None
) -> CreditNote:
    """Cancel a credit note issued by mistake, while nothing it did has been used: no refund was paid,
    the customer credit it created is still wholly waiting (it is removed), and the invoice it reduced
    is still unpaid. Its number stays used; what it credited can be credited again."""
    row = CreditNote.objects.filter(pk=credit_note_id).values_list("invoice_id", flat=True).first()
    if row is None:
        raise NotFound(gettext("Credit note %(credit_note_id)s does not exist.") % {"credit_note_id": credit_note_id})
    invoice = invoice_lock(row)  # the same lock order as credit_note_issue
    credit_note = CreditNote.objects.select_for_update().get(pk=credit_note_id)
    now = now or customer_now(invoice.customer)
    if credit_note.status != CreditNoteStatus.ISSUED:
        raise InvalidTransition(
            gettext("Credit note %(credit_note)s is already void.") % {"credit_note": credit_note},
            fields={"status": [gettext("Already void.")]},
        )
    if credit_note.refund_amount.amount > 0:
        raise InvalidTransition(
            gettext("Credit note %(credit_note)s recorded a refund: it cannot be voided (issue an invoice instead).")
            % {"credit_note": credit_note},
            fields={"refund_amount": [gettext("A refund was recorded.")]},
        )
    to_balance = credit_note.credit_to_balance.amount + credit_note.balance_returned
    if to_balance > 0:
        item = credit_note.balance_item
        untouched = item is not None and item.invoice_id is None and item.amount.amount == -to_balance
        if not untouched:
            raise InvalidTransition(
                gettext("The customer credit of credit note %(credit_note)s has already been used on an invoice.")
                % {"credit_note": credit_note},
                fields={"credit_to_balance": [gettext("Already used.")]},
            )
    if credit_note.amount_due_reduction.amount > 0 and invoice.status not in UNPAID_STATUSES:
        raise InvalidTransition(
            gettext(
                "Invoice %(invoice)s is %(status)s since credit note %(credit_note)s: the credit note cannot be voided."
            )
            % {"invoice": invoice, "status": invoice.get_status_display().lower(), "credit_note": credit_note},
            fields={"amount_due_reduction": [gettext("The invoice is no longer unpaid.")]},
        )
    from apps.wallets.services.returns import credit_note_wallet_returns_take_back

    problems = credit_note_wallet_returns_take_back(credit_note=credit_note, now=now, actor=actor)
    if problems:
        raise InvalidTransition(
            gettext("Credit note %(credit_note)s: %(problem)s It cannot be voided.")
            % {"credit_note": credit_note, "problem": problems[0]},
            fields={"status": problems},
        )
    credit_note.status = CreditNoteStatus.VOID
    credit_note.voided_at = now
    credit_note.save(update_fields=["status", "voided_at", "updated_at"])
    if credit_note.balance_item_id is not None:
        InvoiceItem.objects.filter(pk=credit_note.balance_item_id).delete()  # the link is set to null
    invoice_event_record(
        invoice=invoice, type=InvoiceEventType.CREDIT_NOTE_VOIDED, actor=actor, occurred_at=now,
        data={"credit_note": credit_note.number, "reason": reason},
    )  # fmt: skip
    credit_note.refresh_from_db()
    return credit_note
