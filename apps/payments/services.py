"""Payments: recording money received, allocating it to invoices, undoing a wrong manual payment, and
paying money back (refunds). See docs/payments.md.

Locks, always in this order so that concurrent services never deadlock: the customer's row (every
service here takes it first, so payments of one customer queue), then the payment, then the invoices
(by id). Amounts due are read under those locks, so two payments can never both pay the same euro.
Signals for other apps are sent after commit.
"""

import logging
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils.translation import gettext
from djmoney.money import Money

from apps.accounts.models import Customer
from apps.accounts.selectors import customer_now
from apps.core.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from apps.core.events import acting_user
from apps.core.money import has_more_decimals_than_currency, quantize_amount
from apps.core.transitions import ensure_transition
from apps.invoices.constants import (
    INVOICE_REOPEN_TRANSITIONS,
    UNPAID_STATUSES,
    CreditNoteStatus,
    InvoiceEventType,
    InvoiceLineKind,
    InvoiceStatus,
)
from apps.invoices.events import invoice_event_record
from apps.invoices.models import CreditNote, Invoice, InvoiceItem
from apps.invoices.services.lifecycle import bill_language, invoice_ensure_transition
from apps.wallets.services.purchases import credit_purchase_grant

from . import signals
from .constants import (
    MANUAL_METHODS,
    PAYMENT_TRANSITIONS,
    REFUND_TRANSITIONS,
    PaymentEventType,
    PaymentMethod,
    PaymentProvider,
    PaymentStatus,
    RefundStatus,
)
from .events import payment_event_record
from .models import Payment, PaymentAllocation, Refund
from .selectors import manual_payment_with_reference

logger = logging.getLogger(__name__)

# Invoices a payment may pay: issued and not settled.
PAYABLE_STATUSES = UNPAID_STATUSES


# --- locks and guards --------------------------------------------------------------------------------


def _lock_customer(customer_id: int) -> Customer:
    customer = Customer.objects.select_for_update(of=("self",)).filter(pk=customer_id).first()
    if customer is None:
        raise NotFound(
            gettext("Customer %(customer_id)s does not exist.") % {"customer_id": customer_id},
            fields={"customer": [gettext("Unknown customer.")]},
        )
    return customer


def _lock_payment(payment_id: int) -> Payment:
    """Lock the payment's customer, then the payment."""
    customer_id = Payment.objects.filter(pk=payment_id).values_list("customer_id", flat=True).first()
    if customer_id is None:
        raise NotFound(gettext("Payment %(payment_id)s does not exist.") % {"payment_id": payment_id})
    _lock_customer(customer_id)
    return Payment.objects.select_for_update(of=("self",)).select_related("customer").get(pk=payment_id)


def _credit_reductions(invoice_ids: Iterable[int]) -> dict[int, Decimal]:
    rows = (
        CreditNote.objects.filter(invoice_id__in=list(invoice_ids), status=CreditNoteStatus.ISSUED)
        .values("invoice_id")
        .annotate(total=Sum("amount_due_reduction"))
    )
    return {row["invoice_id"]: row["total"] or Decimal(0) for row in rows}


def _with_reductions(invoices: list[Invoice]) -> list[Invoice]:
    """Attach what credit notes took off each invoice (read in one query), for `amount_due`."""
    reductions = _credit_reductions(invoice.pk for invoice in invoices)
    for invoice in invoices:
        invoice.credit_notes_amount_due_reduction = reductions.get(invoice.pk, Decimal(0))  # type: ignore[attr-defined]
    return invoices


def _lock_invoices(invoice_ids: Iterable[int]) -> dict[int, Invoice]:
    invoices = list(Invoice.objects.select_for_update(of=("self",)).filter(pk__in=set(invoice_ids)).order_by("pk"))
    return {invoice.pk: invoice for invoice in _with_reductions(invoices)}


def invoice_owed(invoice: Invoice) -> Decimal:
    """Total − amount paid − credit notes' reductions, whatever the status (never below zero). The
    invoice must carry its credit notes' reductions (`_with_reductions`)."""
    credited = getattr(invoice, "credit_notes_amount_due_reduction", Decimal(0))
    owed = invoice.total.amount - invoice.amount_paid.amount - credited
    return quantize_amount(max(owed, Decimal(0)), invoice.currency)


def _ensure_transition(payment: Payment, target: str) -> None:
    ensure_transition(
        payment,
        target,
        transitions=PAYMENT_TRANSITIONS,
        status_enum=PaymentStatus,
        describe=lambda: gettext("Payment #%(payment_pk)s") % {"payment_pk": payment.pk},
    )


def _on_commit_send(signal, **kwargs: Any) -> None:
    transaction.on_commit(lambda: signal.send(sender=Payment, **kwargs), robust=True)


# --- validation --------------------------------------------------------------------------------------


def _check_amount(amount: Any, currency: str, errors: dict[str, list[str]], name: str = "amount") -> Decimal | None:
    if not isinstance(amount, Decimal):
        try:
            amount = Decimal(str(amount))
        except ArithmeticError:
            errors.setdefault(name, []).append(gettext("Give a number."))
            return None
    if not amount.is_finite():
        errors.setdefault(name, []).append(gettext("Give a number."))
        return None
    if amount <= 0:
        errors.setdefault(name, []).append(gettext("Must be greater than zero."))
        return None
    if has_more_decimals_than_currency(amount, currency):
        errors.setdefault(name, []).append(
            gettext("Has more decimals than %(currency)s allows.") % {"currency": currency}
        )
        return None
    return amount


def _check_invoice_payable(
    invoice: Invoice | None, customer: Customer, name: str, errors: dict[str, list[str]]
) -> bool:
    if invoice is None or invoice.customer_id != customer.pk:
        errors.setdefault(name, []).append(
            gettext("Not an invoice of customer %(customer_name)s.") % {"customer_name": customer.name}
        )
        return False
    if invoice.status == InvoiceStatus.DRAFT:
        errors.setdefault(name, []).append(
            gettext("Invoice %(invoice)s is a draft: finalize it before it is paid.") % {"invoice": invoice}
        )
        return False
    if invoice.status not in PAYABLE_STATUSES:
        errors.setdefault(name, []).append(
            gettext("Invoice %(invoice)s is %(status)s: nothing is due on it.")
            % {"invoice": invoice, "status": invoice.get_status_display().lower()}
        )
        return False
    if invoice.currency != customer.currency:
        errors.setdefault(name, []).append(
            gettext("Invoice %(invoice)s is in %(invoice_currency)s, not %(customer_currency)s.")
            % {"invoice": invoice, "invoice_currency": invoice.currency, "customer_currency": customer.currency}
        )
        return False
    return True


def _default_allocations(customer: Customer, amount: Decimal) -> tuple[dict[int, Invoice], list[tuple[int, Decimal]]]:
    """The customer's unpaid invoices, oldest due first, each paid as far as the money goes."""
    invoices = _with_reductions(
        list(
            Invoice.objects.select_for_update(of=("self",))
            .filter(customer=customer, status__in=PAYABLE_STATUSES, total_currency=customer.currency)
            .order_by("due_on", "issued_at", "pk")
        )
    )
    allocations = []
    left = amount
    for invoice in invoices:
        if left <= 0:
            break
        owed = invoice_owed(invoice)
        if owed <= 0:
            continue
        take = min(owed, left)
        allocations.append((invoice.pk, take))
        left -= take
    return {invoice.pk: invoice for invoice in invoices}, allocations


def _explicit_allocations(
    customer: Customer, requested: list[tuple[int, Decimal]], *, amount: Decimal | None, errors: dict[str, list[str]]
) -> tuple[dict[int, Invoice], list[tuple[int, Decimal]]]:
    """Check the requested (invoice id, amount) pairs under the invoices' locks: the customer's own,
    payable invoices, each paid at most what it still owes, all of them at most the payment."""
    ids = []
    for invoice_id, _ in requested:
        try:
            ids.append(int(invoice_id))
        except (TypeError, ValueError):
            continue
    invoices = _lock_invoices(ids)
    allocations: list[tuple[int, Decimal]] = []
    seen: set[int] = set()
    currency = customer.currency
    for index, (raw_id, raw_amount) in enumerate(requested):
        prefix = f"allocations.{index}"
        try:
            invoice_id = int(raw_id)
        except (TypeError, ValueError):
            errors.setdefault(f"{prefix}.invoice", []).append(gettext("Give an invoice id."))
            continue
        invoice = invoices.get(invoice_id)
        if invoice is None:
            errors.setdefault(f"{prefix}.invoice", []).append(
                gettext("Invoice %(invoice_id)s does not exist.") % {"invoice_id": invoice_id}
            )
            continue
        if not _check_invoice_payable(invoice, customer, f"{prefix}.invoice", errors):
            continue
        if invoice_id in seen:
            errors.setdefault(f"{prefix}.invoice", []).append(gettext("This invoice is already listed."))
            continue
        seen.add(invoice_id)
        value = _check_amount(raw_amount, currency, errors, f"{prefix}.amount")
        if value is None:
            continue
        owed = invoice_owed(invoice)
        if value > owed:
            errors.setdefault(f"{prefix}.amount", []).append(
                gettext("At most %(owed)s %(currency)s is due on invoice %(invoice)s.")
                % {"owed": owed, "currency": currency, "invoice": invoice}
            )
            continue
        allocations.append((invoice_id, value))
    total = sum((value for _, value in allocations), Decimal(0))
    if amount is not None and total > amount and not errors:
        errors.setdefault("allocations", []).append(
            gettext(
                "The allocations add up to %(total)s %(currency)s, more than the payment's %(amount)s %(currency)s."
            )
            % {"total": total, "currency": currency, "amount": amount}
        )
    return invoices, allocations


# --- applying a succeeded payment --------------------------------------------------------------------


def _invoice_add_paid(invoice: Invoice, amount: Decimal, *, payment: Payment, now: datetime, actor) -> None:
    currency = invoice.currency
    invoice.amount_paid = Money(invoice.amount_paid.amount + amount, currency)
    fields = ["amount_paid", "amount_paid_currency", "updated_at"]
    invoice_event_record(
        invoice=invoice, type=InvoiceEventType.PAYMENT_APPLIED, actor=actor, occurred_at=now,
        data={"payment": payment.pk, "amount": str(amount), "currency": currency, "method": payment.method,
              "reference": payment.reference},
    )  # fmt: skip
    if invoice_owed(invoice) == 0:
        invoice_ensure_transition(invoice, InvoiceStatus.PAID)
        invoice.status = InvoiceStatus.PAID
        invoice.paid_at = payment.received_at or now  # when the money arrived
        fields += ["status", "paid_at"]
        invoice_event_record(
            invoice=invoice, type=InvoiceEventType.PAID, actor=actor, occurred_at=now,
            data={"payment": payment.pk, "reference": payment.reference, "method": payment.method},
        )  # fmt: skip
    invoice.save(update_fields=fields)
    if invoice.status == InvoiceStatus.PAID:
        credit_purchase_grant(invoice=invoice, now=now, actor=actor)  # credits bought: granted once


def _credit_to_balance(payment: Payment, amount: Decimal, *, now: datetime, actor) -> None:
    """Money not allocated to an invoice waits on the customer's balance, taken off the next invoices
    after tax (like a credit note's credit)."""
    currency = payment.currency
    with bill_language(payment.customer):  # taken off the customer's next invoices: in their language
        if payment.reference:
            description = gettext("Credit from payment #%(payment_pk)s (%(reference)s)") % {
                "payment_pk": payment.pk, "reference": payment.reference,
            }  # fmt: skip
        else:
            description = gettext("Credit from payment #%(payment_pk)s") % {"payment_pk": payment.pk}
        explanation = gettext("Received %(amount)s more than was due; credited to the balance.") % {
            "amount": Money(amount, currency)
        }
    item = InvoiceItem.objects.create(
        customer_id=payment.customer_id, subscription=None, kind=InvoiceLineKind.PAYMENT_CREDIT,
        description=description, quantity=Decimal(1), amount=Money(-amount, currency), created_at=now,
        explanation=[explanation],
    )  # fmt: skip
    payment.balance_item = item
    payment.save(update_fields=["balance_item", "updated_at"])
    payment_event_record(
        payment=payment, type=PaymentEventType.CREDITED_TO_BALANCE, actor=actor, occurred_at=now,
        data={"amount": str(amount), "currency": currency, "invoice_item": item.pk},
    )  # fmt: skip


def _apply(payment: Payment, invoices: dict[int, Invoice], *, now: datetime, actor) -> None:
    """A payment has just succeeded: each allocation pays its invoice, at most what the invoice still
    owes now (a pending payment's allocation may have been overtaken by another payment); the money
    left goes to the customer's balance."""
    applied = Decimal(0)
    allocated = []
    for allocation in payment.allocations.order_by("pk"):
        invoice = invoices.get(allocation.invoice_id)
        owed = invoice_owed(invoice) if invoice is not None and invoice.status in PAYABLE_STATUSES else Decimal(0)
        amount = quantize_amount(min(allocation.amount.amount, owed), payment.currency)
        if amount <= 0:
            allocation.delete()
            continue
        if amount != allocation.amount.amount:
            allocation.amount = Money(amount, payment.currency)
            allocation.save(update_fields=["amount"])
        assert invoice is not None
        _invoice_add_paid(invoice, amount, payment=payment, now=now, actor=actor)
        applied += amount
        allocated.append({"invoice": invoice.pk, "number": invoice.number, "amount": str(amount)})
    if allocated:
        payment_event_record(
            payment=payment, type=PaymentEventType.ALLOCATED, actor=actor, occurred_at=now,
            data={"allocations": allocated, "currency": payment.currency},
        )  # fmt: skip
    rest = quantize_amount(payment.amount.amount - applied, payment.currency)
    if rest > 0:
        _credit_to_balance(payment, rest, now=now, actor=actor)


def _create_allocations(payment: Payment, allocations: list[tuple[int, Decimal]]) -> None:
    PaymentAllocation.objects.bulk_create(
        PaymentAllocation(payment=payment, invoice_id=invoice_id, amount=Money(amount, payment.currency))
        for invoice_id, amount in allocations
    )


# --- manual payments ---------------------------------------------------------------------------------


@transaction.atomic
def payment_record_manual(
    *,
    customer_id: int,
    amount: Decimal,
    currency: str,
    method: str,
    reference: str,
    received_at: datetime,
    allocations: list[tuple[int, Decimal]] | None = None,
    actor=None,
) -> Payment:
    """Record money that arrived outside the product (bank transfer, cheque, cash). It pays the given
    invoices (`allocations`: (invoice id, amount) pairs) or, by default, the customer's unpaid
    invoices oldest due first; what is left goes to the customer's credit balance. Refuses bad input
    with messages per field, storing nothing.

    The reference (the bank transfer's reference, the cheque or receipt number) is required, and
    unique among the customer's manual payments that stand (a reversed one frees its reference),
    whatever its case and surrounding spaces: the same money sent twice is refused (`Conflict`, 409,
    on `reference`) instead of being recorded twice."""
    return _manual_payment_record(
        customer_id=customer_id, amount=amount, currency=currency, method=method, reference=reference,
        received_at=received_at, allocations=allocations, actor=actor, reference_required=True,
    )  # fmt: skip


def _manual_payment_record(
    *,
    customer_id: int,
    amount: Decimal,
    currency: str,
    method: str,
    reference: str,
    received_at: datetime,
    allocations: list[tuple[int, Decimal]] | None,
    actor,
    reference_required: bool,
) -> Payment:
    customer = _lock_customer(customer_id)  # payments of one customer queue here: the check below holds
    errors: dict[str, list[str]] = {}
    value = _check_amount(amount, customer.currency, errors)
    if currency != customer.currency:
        errors.setdefault("currency", []).append(
            gettext("Customer %(customer_name)s pays in %(currency)s.")
            % {"customer_name": customer.name, "currency": customer.currency}
        )
    if method not in MANUAL_METHODS:
        errors.setdefault("method", []).append(
            gettext("Choose one of: %(manual_methods)s.") % {"manual_methods": ", ".join(MANUAL_METHODS)}
        )
    reference = (reference or "").strip()
    if len(reference) > 255:
        errors.setdefault("reference", []).append(gettext("At most 255 characters."))
    elif not reference and reference_required:
        errors.setdefault("reference", []).append(
            gettext(
                "Give the reference of the money received (bank transfer reference, cheque or receipt "
                "number): it tells one payment from another."
            )
        )
    now = customer_now(customer)
    if received_at is None or received_at.tzinfo is None:
        errors.setdefault("received_at", []).append(gettext("Give the date and time with a time zone."))
    elif received_at > now:
        errors.setdefault("received_at", []).append(gettext("Cannot be in the future."))
    if allocations is None:
        invoices, chosen = _default_allocations(customer, value) if value is not None else ({}, [])
    else:
        invoices, chosen = _explicit_allocations(customer, list(allocations), amount=value, errors=errors)
    if value is not None and not errors and not settings.PAYMENT_OVERPAYMENT_TO_BALANCE:
        allocated = sum((amount for _, amount in chosen), Decimal(0))
        if value > allocated:
            errors.setdefault("amount", []).append(
                gettext("Only %(allocated)s %(currency)s is allocated to invoices; overpayments are not accepted.")
                % {"allocated": allocated, "currency": customer.currency}
            )
    if errors:
        raise ValidationFailed(gettext("The payment is not valid: nothing was recorded."), fields=errors)
    assert value is not None
    recorded = manual_payment_with_reference(customer_id=customer.pk, reference=reference) if reference else None
    if recorded is not None:
        raise Conflict(
            gettext(
                "A payment with the reference %(reference)r is already recorded for %(customer_name)s: "
                "nothing was recorded."
            )
            % {"reference": reference, "customer_name": customer.name},
            fields={
                "reference": [
                    gettext(
                        "Already recorded: payment #%(recorded_pk)s of %(amount)s %(currency)s, received "
                        "%(received_at)s. Reverse it first if it was wrong."
                    )
                    % {
                        "recorded_pk": recorded.pk,
                        "amount": quantize_amount(recorded.amount.amount, recorded.currency),
                        "currency": recorded.currency,
                        "received_at": format(recorded.received_at, "%Y-%m-%d"),
                    }
                ]
            },
        )
    payment = Payment.objects.create(
        customer=customer, provider=PaymentProvider.MANUAL, method=method, amount=Money(value, customer.currency),
        status=PaymentStatus.SUCCEEDED, reference=reference, received_at=received_at,
        created_by=acting_user(actor),
    )  # fmt: skip
    payment_event_record(
        payment=payment, type=PaymentEventType.CREATED, actor=actor, occurred_at=now,
        data={"amount": str(value), "currency": customer.currency, "method": method, "reference": reference},
    )  # fmt: skip
    payment_event_record(
        payment=payment, type=PaymentEventType.SUCCEEDED, actor=actor, occurred_at=now,
        data={"received_at": received_at.isoformat()},
    )  # fmt: skip
    _create_allocations(payment, chosen)
    _apply(payment, invoices, now=now, actor=actor)
    _on_commit_send(signals.payment_succeeded, payment_id=payment.pk)
    return payment


@transaction.atomic
def invoice_mark_paid(
    *, invoice_id: int, actor=None, reference: str = "", now: datetime | None = None, method: str = ""
) -> Invoice:
    """Staff's "mark paid": record a manual payment (bank transfer unless told otherwise) of what is
    still due on the invoice, allocated to it, which makes it paid."""
    customer_id = Invoice.objects.filter(pk=invoice_id).values_list("customer_id", flat=True).first()
    if customer_id is None:
        raise NotFound(gettext("Invoice %(invoice_id)s does not exist.") % {"invoice_id": invoice_id})
    customer = _lock_customer(customer_id)
    invoice = _lock_invoices([invoice_id])[invoice_id]
    if invoice.status == InvoiceStatus.DRAFT:
        raise InvalidTransition(gettext("Finalize the draft before recording a payment for it."))
    invoice_ensure_transition(invoice, InvoiceStatus.PAID)
    owed = invoice_owed(invoice)
    if owed <= 0:
        raise InvalidTransition(
            gettext("Nothing is due on invoice %(invoice)s.") % {"invoice": invoice},
            fields={"status": [gettext("Nothing is due.")]},
        )
    received_at = now or customer_now(customer)
    # The invoice paid in full is what tells this payment apart: the reference may stay empty (a second
    # "mark paid" finds nothing due), and one given is unique as for any manual payment.
    _manual_payment_record(
        customer_id=customer_id, amount=owed, currency=invoice.currency,
        method=method or PaymentMethod.BANK_TRANSFER, reference=reference, received_at=received_at,
        allocations=[(invoice_id, owed)], actor=actor, reference_required=False,
    )  # fmt: skip
    invoice.refresh_from_db()
    return invoice


@transaction.atomic
def payment_reverse(*, payment_id: int, reason: str, actor=None) -> Payment:
    """Undo a manual payment recorded by mistake: its invoices owe again what it paid (a paid invoice
    becomes open again, or uncollectible if it was), and the credit it left on the customer's balance
    is taken back (what was already used of it is charged on the next invoice). Card payments are
    refunded instead."""
    if not (reason or "").strip():
        raise ValidationFailed(
            gettext("Say why the payment is reversed."), fields={"reason": [gettext("This field is required.")]}
        )
    payment = _lock_payment(payment_id)
    if payment.provider != PaymentProvider.MANUAL:
        raise InvalidTransition(
            gettext("Payment #%(payment_pk)s was made by %(provider)s: refund it instead.")
            % {"payment_pk": payment.pk, "provider": payment.get_provider_display()},
            fields={"provider": [gettext("Only manual payments are reversed.")]},
        )
    _ensure_transition(payment, PaymentStatus.REVERSED)
    if payment.refunds.exclude(status=RefundStatus.FAILED).exists():
        raise InvalidTransition(
            gettext("Payment #%(payment_pk)s has refunds: it cannot be reversed.") % {"payment_pk": payment.pk},
            fields={"refunds": [gettext("Refunds exist.")]},
        )
    now = customer_now(payment.customer)
    allocations = list(payment.allocations.order_by("pk"))
    invoices = _lock_invoices(allocation.invoice_id for allocation in allocations)
    for allocation in allocations:
        invoice = invoices[allocation.invoice_id]
        currency = invoice.currency
        invoice.amount_paid = Money(max(invoice.amount_paid.amount - allocation.amount.amount, Decimal(0)), currency)
        fields = ["amount_paid", "amount_paid_currency", "updated_at"]
        invoice_event_record(
            invoice=invoice, type=InvoiceEventType.PAYMENT_REVERSED, actor=actor, occurred_at=now,
            data={"payment": payment.pk, "amount": str(quantize_amount(allocation.amount.amount, currency)),
                  "currency": currency, "reason": reason},
        )  # fmt: skip
        if invoice.status == InvoiceStatus.PAID and invoice_owed(invoice) > 0:
            target = InvoiceStatus.UNCOLLECTIBLE if invoice.marked_uncollectible_at else InvoiceStatus.OPEN
            if target not in INVOICE_REOPEN_TRANSITIONS.get(invoice.status, frozenset()):
                raise InvalidTransition(gettext("Invoice %(invoice)s cannot be due again.") % {"invoice": invoice})
            invoice.status = target
            invoice.paid_at = None
            fields += ["status", "paid_at"]
            invoice_event_record(
                invoice=invoice, type=InvoiceEventType.REOPENED, actor=actor, occurred_at=now,
                data={"payment": payment.pk, "status": target},
            )  # fmt: skip
        invoice.save(update_fields=fields)
    _take_back_balance_credit(payment, now=now)
    payment.status = PaymentStatus.REVERSED
    payment.reversed_at = now
    payment.reversal_reason = reason
    payment.save(update_fields=["status", "reversed_at", "reversal_reason", "updated_at"])
    payment_event_record(
        payment=payment, type=PaymentEventType.REVERSED, actor=actor, occurred_at=now, data={"reason": reason}
    )
    _on_commit_send(signals.payment_reversed, payment_id=payment.pk)
    return payment


def payment_credited_to_balance(payment: Payment) -> Decimal:
    """What of the payment was not allocated to invoices (credited to the customer's balance)."""
    if payment.status not in (PaymentStatus.SUCCEEDED, PaymentStatus.REVERSED):
        return Decimal(0)
    allocated = payment.allocations.aggregate(total=Sum("amount"))["total"] or Decimal(0)
    return quantize_amount(payment.amount.amount - allocated, payment.currency)


def _take_back_balance_credit(payment: Payment, *, now: datetime) -> None:
    credited = payment_credited_to_balance(payment)
    if credited <= 0:
        return
    currency = payment.currency
    item = payment.balance_item
    waiting = Decimal(0)
    if item is not None and item.invoice_id is None:
        waiting = quantize_amount(-item.amount.amount, currency)
        InvoiceItem.objects.filter(pk=item.pk).delete()  # the payment's link is set to null
    used = credited - waiting
    if used > 0:
        with bill_language(payment.customer):  # charged on the customer's next invoice: in their language
            description = gettext("Payment #%(payment_pk)s reversed: its credit already used") % {
                "payment_pk": payment.pk
            }
            explanation = gettext("Payment #%(payment_pk)s was reversed after %(amount)s of its credit was used.") % {
                "payment_pk": payment.pk, "amount": Money(used, currency),
            }  # fmt: skip
        InvoiceItem.objects.create(
            customer_id=payment.customer_id, subscription=None, kind=InvoiceLineKind.PAYMENT_CREDIT,
            description=description, quantity=Decimal(1), amount=Money(used, currency), created_at=now,
            explanation=[explanation],
        )  # fmt: skip


# --- payments collected by a provider (Stripe) --------------------------------------------------------


@transaction.atomic
def payment_create_pending(
    *,
    customer_id: int,
    invoice_ids: list[int],
    amount: Decimal | None,
    provider: str,
    method: str,
    idempotency_key: str,
    actor=None,
) -> Payment:
    """The payment row a collection attempt starts from (e.g. before a Stripe PaymentIntent is
    created), allocated to the invoices in order, each up to what it owes now (`amount` None: all
    they owe). The same `idempotency_key` returns the payment already made for it."""
    customer = _lock_customer(customer_id)
    if idempotency_key:
        existing = Payment.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            if existing.customer_id != customer.pk:
                raise Conflict(gettext("This idempotency key belongs to another customer's payment."))
            return existing
    errors: dict[str, list[str]] = {}
    if provider not in PaymentProvider.values:
        errors.setdefault("provider", []).append(
            gettext("Choose one of: %(values)s.") % {"values": ", ".join(PaymentProvider.values)}
        )
    if method not in PaymentMethod.values:
        errors.setdefault("method", []).append(
            gettext("Choose one of: %(values)s.") % {"values": ", ".join(PaymentMethod.values)}
        )
    invoices = _lock_invoices(invoice_ids)
    owed_by_invoice: list[tuple[int, Decimal]] = []
    for index, invoice_id in enumerate(invoice_ids):
        invoice = invoices.get(invoice_id)
        if _check_invoice_payable(invoice, customer, f"invoice_ids.{index}", errors):
            assert invoice is not None
            owed_by_invoice.append((invoice_id, invoice_owed(invoice)))
    value = (
        sum((owed for _, owed in owed_by_invoice), Decimal(0))
        if amount is None
        else _check_amount(amount, customer.currency, errors)
    )
    if value is not None and value <= 0 and "amount" not in errors:
        errors.setdefault("amount", []).append(gettext("Nothing is due on these invoices."))
    if errors:
        raise ValidationFailed(gettext("The payment is not valid: nothing was created."), fields=errors)
    assert value is not None
    allocations, left = [], value
    for invoice_id, owed in owed_by_invoice:
        take = min(owed, left)
        if take > 0:
            allocations.append((invoice_id, take))
            left -= take
    try:
        with transaction.atomic():
            payment = Payment.objects.create(
                customer=customer, provider=provider, method=method, amount=Money(value, customer.currency),
                status=PaymentStatus.PENDING, idempotency_key=idempotency_key or "", created_by=acting_user(actor),
            )  # fmt: skip
    except IntegrityError as exc:
        existing = Payment.objects.filter(idempotency_key=idempotency_key).first() if idempotency_key else None
        if existing is None:
            raise
        if existing.customer_id != customer.pk:
            raise Conflict(gettext("This idempotency key belongs to another customer's payment.")) from exc
        return existing
    _create_allocations(payment, allocations)
    payment_event_record(
        payment=payment, type=PaymentEventType.CREATED, actor=actor,
        data={"amount": str(value), "currency": customer.currency, "provider": provider, "method": method,
              "invoices": [invoice_id for invoice_id, _ in allocations], "idempotency_key": idempotency_key},
    )  # fmt: skip
    return payment


def _set_provider_payment_id(payment: Payment, provider_payment_id: str | None, fields: list[str]) -> None:
    if not provider_payment_id or provider_payment_id == payment.provider_payment_id:
        return
    if Payment.objects.filter(provider_payment_id=provider_payment_id).exclude(pk=payment.pk).exists():
        raise Conflict(
            gettext("%(provider_payment_id)s already belongs to another payment.")
            % {"provider_payment_id": provider_payment_id},
            fields={"provider_payment_id": [gettext("Already used by another payment.")]},
        )
    payment.provider_payment_id = provider_payment_id
    fields.append("provider_payment_id")


@transaction.atomic
def payment_mark_succeeded(
    *, payment_id: int, provider_payment_id: str | None = None, received_at: datetime | None = None
) -> Payment:
    """The money arrived: the payment's invoices are paid (each at most what it still owes), the rest
    goes to the customer's balance, and `payment_succeeded` is sent after commit. Idempotent: a payment
    that already succeeded (or was since reversed) is returned unchanged."""
    payment = _lock_payment(payment_id)
    if payment.status in (PaymentStatus.SUCCEEDED, PaymentStatus.REVERSED):
        return payment
    _ensure_transition(payment, PaymentStatus.SUCCEEDED)
    return _succeed(
        payment, provider_payment_id=provider_payment_id, received_at=received_at, event=PaymentEventType.SUCCEEDED
    )


def _succeed(
    payment: Payment,
    *,
    provider_payment_id: str | None,
    received_at: datetime | None,
    event: str,
    note: str = "",
) -> Payment:
    """Record the money of a locked payment: `succeeded`, its event, its invoices paid (the rest to the
    customer's balance), and `payment_succeeded` sent after commit."""
    now = customer_now(payment.customer)
    fields = ["status", "received_at", "failure_code", "failure_message", "next_action_url", "updated_at"]
    _set_provider_payment_id(payment, provider_payment_id, fields)
    payment.status = PaymentStatus.SUCCEEDED
    payment.received_at = received_at or now
    payment.failure_code = payment.failure_message = payment.next_action_url = ""
    payment.save(update_fields=fields)
    data = {"provider_payment_id": payment.provider_payment_id, "received_at": payment.received_at.isoformat()}
    payment_event_record(payment=payment, type=event, occurred_at=now, data={**data, "note": note} if note else data)
    invoices = _lock_invoices(payment.allocations.values_list("invoice_id", flat=True))
    _apply(payment, invoices, now=now, actor=None)
    _on_commit_send(signals.payment_succeeded, payment_id=payment.pk)
    return payment


@transaction.atomic
def payment_mark_succeeded_after_cancel(
    *, payment_id: int, provider_payment_id: str | None = None, received_at: datetime | None = None
) -> Payment:
    """The provider took the money of a payment canceled here (a late webhook, or a lookup that missed
    its PaymentIntent). The money is recorded all the same: the payment becomes `succeeded` (a
    `succeeded_after_cancel` event says so, for staff, and an error is logged), pays what its invoices
    still owe and the rest goes to the customer's balance, as an overpayment does. Idempotent: only a
    canceled payment is moved; any other is returned unchanged."""
    payment = _lock_payment(payment_id)
    if payment.status != PaymentStatus.CANCELED:
        return payment
    logger.error(
        "Payment %s was canceled here but %s succeeded at the provider: recorded as succeeded; check the "
        "customer's invoices and balance.",
        payment.pk,
        provider_payment_id or payment.provider_payment_id,
    )
    return _succeed(
        payment,
        provider_payment_id=provider_payment_id,
        received_at=received_at,
        event=PaymentEventType.SUCCEEDED_AFTER_CANCEL,
        note="The provider took the money after the payment was canceled here.",
    )


@transaction.atomic
def payment_mark_failed(*, payment_id: int, failure_code: str, failure_message: str) -> Payment:
    """The attempt failed (e.g. the card was declined); `payment_failed` is sent after commit.
    Idempotent: a payment already failed is returned unchanged."""
    payment = _lock_payment(payment_id)
    if payment.status == PaymentStatus.FAILED:
        return payment
    _ensure_transition(payment, PaymentStatus.FAILED)
    payment.status = PaymentStatus.FAILED
    payment.failure_code = (failure_code or "")[:64]
    payment.failure_message = failure_message or ""
    payment.next_action_url = ""
    payment.save(update_fields=["status", "failure_code", "failure_message", "next_action_url", "updated_at"])
    payment_event_record(
        payment=payment, type=PaymentEventType.FAILED,
        data={"failure_code": payment.failure_code, "failure_message": payment.failure_message},
    )  # fmt: skip
    _on_commit_send(signals.payment_failed, payment_id=payment.pk)
    return payment


@transaction.atomic
def payment_mark_requires_action(*, payment_id: int, provider_payment_id: str, next_action_url: str = "") -> Payment:
    """The customer must act (e.g. 3-D Secure) before the payment can succeed;
    `payment_requires_action` is sent after commit. Idempotent."""
    payment = _lock_payment(payment_id)
    if payment.status == PaymentStatus.REQUIRES_ACTION:
        return payment
    _ensure_transition(payment, PaymentStatus.REQUIRES_ACTION)
    fields = ["status", "next_action_url", "updated_at"]
    _set_provider_payment_id(payment, provider_payment_id, fields)
    payment.status = PaymentStatus.REQUIRES_ACTION
    payment.next_action_url = next_action_url or ""
    payment.save(update_fields=fields)
    payment_event_record(
        payment=payment, type=PaymentEventType.REQUIRES_ACTION,
        data={"provider_payment_id": payment.provider_payment_id, "next_action_url": payment.next_action_url},
    )  # fmt: skip
    _on_commit_send(signals.payment_requires_action, payment_id=payment.pk)
    return payment


@transaction.atomic
def payment_mark_processing(*, payment_id: int, provider_payment_id: str | None = None) -> Payment:
    """The provider accepted the payment and is processing it (e.g. a bank debit). Idempotent."""
    payment = _lock_payment(payment_id)
    if payment.status == PaymentStatus.PROCESSING:
        return payment
    _ensure_transition(payment, PaymentStatus.PROCESSING)
    fields = ["status", "updated_at"]
    _set_provider_payment_id(payment, provider_payment_id, fields)
    payment.status = PaymentStatus.PROCESSING
    payment.save(update_fields=fields)
    payment_event_record(payment=payment, type=PaymentEventType.PROCESSING)
    return payment


@transaction.atomic
def payment_cancel(*, payment_id: int, reason: str = "", actor=None) -> Payment:
    """Give up a payment that has not succeeded (e.g. its PaymentIntent was canceled). Idempotent."""
    payment = _lock_payment(payment_id)
    if payment.status == PaymentStatus.CANCELED:
        return payment
    _ensure_transition(payment, PaymentStatus.CANCELED)
    payment.status = PaymentStatus.CANCELED
    payment.save(update_fields=["status", "updated_at"])
    payment_event_record(payment=payment, type=PaymentEventType.CANCELED, actor=actor, data={"reason": reason})
    return payment


# --- refunds ------------------------------------------------------------------------------------------


def payment_refundable(payment: Payment) -> Decimal:
    """What can still be refunded: the amount less refunds succeeded or under way."""
    taken = payment.refunds.exclude(status=RefundStatus.FAILED).aggregate(total=Sum("amount"))["total"]
    return quantize_amount(payment.amount.amount - (taken or Decimal(0)), payment.currency)


@transaction.atomic
def refund_create(
    *,
    payment_id: int,
    amount: Decimal,
    credit_note_id: int | None = None,
    reason: str = "",
    actor=None,
    reference: str = "",
) -> Refund:
    """Pay money back out of a succeeded payment. A manual payment's refund is paid outside the
    product and recorded as succeeded at once; a Stripe payment's refund is pending until the Stripe
    integration (on `refund_created`) carries it out and calls `refund_mark_succeeded/failed`."""
    payment = _lock_payment(payment_id)
    errors: dict[str, list[str]] = {}
    if payment.status != PaymentStatus.SUCCEEDED:
        raise InvalidTransition(
            gettext("Payment #%(payment_pk)s is %(status)s: only money received is refunded.")
            % {"payment_pk": payment.pk, "status": payment.get_status_display().lower()},
            fields={"payment": [gettext("The payment has not succeeded.")]},
        )
    value = _check_amount(amount, payment.currency, errors)
    if value is not None and value > payment_refundable(payment):
        errors.setdefault("amount", []).append(
            gettext("At most %(refundable)s %(currency)s of payment #%(payment_pk)s can be refunded.")
            % {"refundable": payment_refundable(payment), "currency": payment.currency, "payment_pk": payment.pk}
        )
    credit_note = None
    if credit_note_id is not None:
        credit_note = CreditNote.objects.filter(pk=credit_note_id).first()
        if credit_note is None or credit_note.customer_id != payment.customer_id:
            errors.setdefault("credit_note", []).append(gettext("Not a credit note of the payment's customer."))
        elif credit_note.status != CreditNoteStatus.ISSUED:
            errors.setdefault("credit_note", []).append(gettext("The credit note is void."))
        elif value is not None:
            refunded = credit_note.refunds.exclude(status=RefundStatus.FAILED).aggregate(total=Sum("amount"))[
                "total"
            ] or Decimal(0)
            if refunded + value > credit_note.refund_amount.amount:
                errors.setdefault("amount", []).append(
                    gettext(
                        "Credit note %(credit_note)s refunds %(amount)s %(currency)s in all; %(refunded)s is "
                        "already refunded."
                    )
                    % {
                        "credit_note": credit_note,
                        "amount": quantize_amount(credit_note.refund_amount.amount, payment.currency),
                        "currency": payment.currency,
                        "refunded": quantize_amount(refunded, payment.currency),
                    }
                )
    if errors:
        raise ValidationFailed(gettext("The refund is not valid: nothing was refunded."), fields=errors)
    assert value is not None
    now = customer_now(payment.customer)
    manual = payment.provider == PaymentProvider.MANUAL
    refund = Refund.objects.create(
        payment=payment, credit_note=credit_note, amount=Money(value, payment.currency),
        status=RefundStatus.SUCCEEDED if manual else RefundStatus.PENDING, reason=reason or "",
        reference=reference or "", succeeded_at=now if manual else None, created_by=acting_user(actor),
    )  # fmt: skip
    payment_event_record(
        payment=payment, type=PaymentEventType.REFUND_CREATED, actor=actor, occurred_at=now,
        data={"refund": refund.pk, "amount": str(value), "currency": payment.currency,
              "credit_note": credit_note.number if credit_note else None, "reason": reason},
    )  # fmt: skip
    if manual:
        _refund_succeeded(payment, refund, now=now, actor=actor)
    _on_commit_send_refund(refund.pk)
    return refund


def _on_commit_send_refund(refund_id: int) -> None:
    transaction.on_commit(lambda: signals.refund_created.send(sender=Refund, refund_id=refund_id), robust=True)


def _refund_succeeded(payment: Payment, refund: Refund, *, now: datetime, actor) -> None:
    payment.amount_refunded = Money(payment.amount_refunded.amount + refund.amount.amount, payment.currency)
    payment.save(update_fields=["amount_refunded", "amount_refunded_currency", "updated_at"])
    payment_event_record(
        payment=payment, type=PaymentEventType.REFUND_SUCCEEDED, actor=actor, occurred_at=now,
        data={"refund": refund.pk, "amount": str(quantize_amount(refund.amount.amount, payment.currency)),
              "currency": payment.currency},
    )  # fmt: skip
    if refund.credit_note_id is not None:
        credit_note = CreditNote.objects.select_related("invoice").get(pk=refund.credit_note_id)
        invoice_event_record(
            invoice=credit_note.invoice, type=InvoiceEventType.REFUNDED, actor=actor, occurred_at=now,
            data={"refund": refund.pk, "payment": payment.pk, "credit_note": credit_note.number,
                  "amount": str(quantize_amount(refund.amount.amount, payment.currency)),
                  "currency": payment.currency},
        )  # fmt: skip


def _lock_refund(refund_id: int) -> tuple[Payment, Refund]:
    payment_id = Refund.objects.filter(pk=refund_id).values_list("payment_id", flat=True).first()
    if payment_id is None:
        raise NotFound(gettext("Refund %(refund_id)s does not exist.") % {"refund_id": refund_id})
    payment = _lock_payment(payment_id)
    return payment, Refund.objects.select_for_update().get(pk=refund_id)


def _ensure_refund_transition(refund: Refund, target: str) -> None:
    ensure_transition(
        refund,
        target,
        transitions=REFUND_TRANSITIONS,
        status_enum=RefundStatus,
        describe=lambda: gettext("Refund #%(refund_pk)s") % {"refund_pk": refund.pk},
    )


@transaction.atomic
def refund_mark_succeeded(*, refund_id: int, provider_refund_id: str | None = None) -> Refund:
    """The provider paid the money back. Idempotent."""
    payment, refund = _lock_refund(refund_id)
    if refund.status == RefundStatus.SUCCEEDED:
        return refund
    _ensure_refund_transition(refund, RefundStatus.SUCCEEDED)
    now = customer_now(payment.customer)
    fields = ["status", "succeeded_at", "updated_at"]
    if provider_refund_id and provider_refund_id != refund.provider_refund_id:
        if Refund.objects.filter(provider_refund_id=provider_refund_id).exclude(pk=refund.pk).exists():
            raise Conflict(
                gettext("%(provider_refund_id)s already belongs to another refund.")
                % {"provider_refund_id": provider_refund_id}
            )
        refund.provider_refund_id = provider_refund_id
        fields.append("provider_refund_id")
    refund.status = RefundStatus.SUCCEEDED
    refund.succeeded_at = now
    refund.save(update_fields=fields)
    _refund_succeeded(payment, refund, now=now, actor=None)
    return refund


@transaction.atomic
def refund_mark_failed(
    *, refund_id: int, failure_code: str = "", failure_message: str = "", provider_refund_id: str | None = None
) -> Refund:
    """The provider could not pay the money back (staff settle it another way). Idempotent."""
    payment, refund = _lock_refund(refund_id)
    if refund.status == RefundStatus.FAILED:
        return refund
    _ensure_refund_transition(refund, RefundStatus.FAILED)
    now = customer_now(payment.customer)
    fields = ["status", "failed_at", "failure_code", "failure_message", "updated_at"]
    if provider_refund_id and provider_refund_id != refund.provider_refund_id:
        refund.provider_refund_id = provider_refund_id
        fields.append("provider_refund_id")
    refund.status = RefundStatus.FAILED
    refund.failed_at = now
    refund.failure_code = (failure_code or "")[:64]
    refund.failure_message = failure_message or ""
    refund.save(update_fields=fields)
    payment_event_record(
        payment=payment, type=PaymentEventType.REFUND_FAILED, occurred_at=now,
        data={"refund": refund.pk, "failure_code": refund.failure_code, "failure_message": refund.failure_message},
    )  # fmt: skip
    return refund


# --- credit notes that refund ------------------------------------------------------------------------


@transaction.atomic
def credit_note_issue_and_refund(*, invoice_id: int, actor=None, **arguments: Any) -> CreditNote:
    """Issue a credit note (`apps.invoices.services.credit_note_issue`, same arguments) and pay its
    refund back out of the succeeded payments of the invoice, the latest first (each at most what it
    paid of the invoice and what is left of it to refund): a manual payment's refund is recorded as
    paid, a Stripe payment's is carried out by Stripe. A refund beyond those payments (an invoice
    marked paid before payments were recorded) stays recorded on the credit note only."""
    from apps.invoices.services import credit_note_issue

    customer_id = Invoice.objects.filter(pk=invoice_id).values_list("customer_id", flat=True).first()
    if customer_id is None:
        raise NotFound(gettext("Invoice %(invoice_id)s does not exist.") % {"invoice_id": invoice_id})
    _lock_customer(customer_id)
    credit_note = credit_note_issue(invoice_id=invoice_id, actor=actor, **arguments)
    credit_note_refunds_create(credit_note=credit_note, actor=actor)
    return credit_note


def credit_note_refunds_create(*, credit_note: CreditNote, actor=None) -> list[Refund]:
    """The refunds of an issued credit note's `refund_amount`, out of its invoice's payments (see
    `credit_note_issue_and_refund`); the caller holds the customer's lock."""
    left = quantize_amount(credit_note.refund_amount.amount, credit_note.currency)
    refunds: list[Refund] = []
    if left <= 0:
        return refunds
    allocations = (
        PaymentAllocation.objects.filter(invoice_id=credit_note.invoice_id, payment__status=PaymentStatus.SUCCEEDED)
        .select_related("payment")
        .order_by("-payment__received_at", "-payment_id")
    )
    for allocation in allocations:
        if left <= 0:
            break
        payment = allocation.payment
        already = Refund.objects.filter(payment=payment, credit_note__invoice_id=credit_note.invoice_id).exclude(
            status=RefundStatus.FAILED
        ).aggregate(total=Sum("amount"))["total"] or Decimal(0)
        amount = quantize_amount(
            min(left, allocation.amount.amount - already, payment_refundable(payment)), payment.currency
        )
        if amount <= 0:
            continue
        refunds.append(
            refund_create(
                payment_id=payment.pk,
                amount=amount,
                credit_note_id=credit_note.pk,
                reason=gettext("Credit note %(number)s") % {"number": credit_note.number},  # the staff's words
                actor=actor,
                reference=credit_note.refund_reference,
            )  # fmt: skip
        )
        left -= amount
    return refunds
