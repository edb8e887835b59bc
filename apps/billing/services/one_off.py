"""One-off charges: what staff bill outside any plan (a setup fee, professional services, a hardware
order), either as a pending invoice item that the customer's next invoice takes, or on a one-off
invoice issued at once.

A pending item is an `InvoiceItem` of kind `one_off` on the customer's account (no subscription).
Every invoice the billing run makes for the customer takes the customer's waiting items
(`lines.customer_credit_drafts`, under a row lock), so the item is billed once, on the first run
invoice of the customer in its currency, whichever path bills it (the bulk path leaves customers with
waiting items to the one-by-one path). Until then staff may change or delete it; once an invoice has
taken it, it is read-only and names that invoice (a draft voided gives it back).

A one-off invoice (`billing_reason = manual`) bills exactly the lines it is given: the same numbering,
taxes, PDF, email and payment collection as every invoice; it does not take the customer's pending
items or credit balance (those wait for the next run invoice).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext
from djmoney.money import Money

from apps.accounts.models import Customer
from apps.accounts.selectors import customer_now
from apps.catalog.models import Product
from apps.catalog.pricing import format_price, format_quantity
from apps.core.errors import NotEditable, NotFound, ValidationFailed
from apps.core.money import quantize_amount, zero
from apps.invoices.constants import BillingReason, InvoiceEventType, InvoiceLineKind, InvoiceStatus
from apps.invoices.events import invoice_event_record
from apps.invoices.models import Invoice, InvoiceItem, InvoiceLine, TaxRate
from apps.invoices.services.lifecycle import TOTALS_FIELDS, invoice_finalize, invoice_recompute_totals

from .lines import LineDraft, invoice_lines_from_drafts

# The column sizes of an item and a line: quantity 19 digits, 6 decimals; unit price 28 digits, 12
# decimals; amounts 19 digits, 4 decimals.
QUANTITY_DECIMALS = 6
UNIT_AMOUNT_DECIMALS = 12
MAX_AMOUNT = Decimal("999999999999999")  # 15 integer digits: the amount columns' limit
MAX_DESCRIPTION_LENGTH = 500
MAX_LINES = 100


@dataclass(frozen=True)
class OneOffCharge:
    """What staff give for one one-off charge."""

    quantity: Any
    unit_amount: Any
    description: str = ""
    product_id: int | None = None
    tax_rate_id: int | None = None
    period_start_at: datetime | None = None
    period_end_at: datetime | None = None


@dataclass
class _Checked:
    quantity: Decimal
    unit_amount: Decimal
    amount: Decimal
    description: str
    product: Product | None
    tax_rate: TaxRate | None
    period_start_at: datetime | None
    period_end_at: datetime | None
    errors: dict[str, list[str]] = field(default_factory=dict)

    def draft(self, currency: str) -> LineDraft:
        return LineDraft(
            kind=InvoiceLineKind.ONE_OFF,
            description=self.description,
            period_start_at=self.period_start_at,
            period_end_at=self.period_end_at,
            quantity=self.quantity,
            unit_amount=self.unit_amount,
            amount=self.amount,
            currency=currency,
            explanation=(f"{format_quantity(self.quantity)} × {format_price(self.unit_amount, currency)}",),
            product=self.product,
            tax_rate=self.tax_rate,
        )


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float):
        value = repr(value)
    try:
        number = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _decimals(number: Decimal) -> int:
    exponent = number.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _check(charge: OneOffCharge, *, currency: str) -> _Checked:
    """Every field of one charge checked, with an error per field that is wrong (nothing written)."""
    errors: dict[str, list[str]] = {}
    quantity = _decimal(charge.quantity)
    if quantity is None:
        errors["quantity"] = [gettext("Give a number, e.g. 2 or 1.5.")]
    elif quantity <= 0:
        errors["quantity"] = [gettext("Must be greater than zero.")]
    elif _decimals(quantity) > QUANTITY_DECIMALS or quantity >= Decimal(10) ** 13:
        errors["quantity"] = [
            gettext("At most 13 digits before the point and %(quantity_decimals)s after it.")
            % {"quantity_decimals": QUANTITY_DECIMALS}
        ]
    unit_amount = _decimal(charge.unit_amount)
    if unit_amount is None:
        errors["unit_amount"] = [gettext("Give an amount in %(currency)s, e.g. 150.00.") % {"currency": currency}]
    elif unit_amount < 0:
        errors["unit_amount"] = [
            gettext("Cannot be negative: a one-off charge is a charge (credit with a credit note).")
        ]
    elif _decimals(unit_amount) > UNIT_AMOUNT_DECIMALS or unit_amount >= Decimal(10) ** 16:
        errors["unit_amount"] = [
            gettext("At most 16 digits before the point and %(unit_amount_decimals)s after it.")
            % {"unit_amount_decimals": UNIT_AMOUNT_DECIMALS}
        ]
    product = None
    if charge.product_id is not None:
        product = Product.objects.filter(pk=charge.product_id).first()
        if product is None:
            errors["product"] = [gettext("No product %(product_id)s.") % {"product_id": charge.product_id}]
    tax_rate = None
    if charge.tax_rate_id is not None:
        tax_rate = TaxRate.objects.filter(pk=charge.tax_rate_id).first()
        if tax_rate is None:
            errors["tax_rate"] = [gettext("No tax rate %(tax_rate_id)s.") % {"tax_rate_id": charge.tax_rate_id}]
        elif not tax_rate.is_active:
            errors["tax_rate"] = [gettext("Tax rate %(tax_rate)s is no longer active.") % {"tax_rate": tax_rate}]
    description = (charge.description or "").strip() or (product.name if product is not None else "")
    if not description:
        errors["description"] = [gettext("Describe the charge (it is printed on the bill), or name its product.")]
    elif len(description) > MAX_DESCRIPTION_LENGTH:
        errors["description"] = [
            gettext("At most %(max_description_length)s characters.")
            % {"max_description_length": MAX_DESCRIPTION_LENGTH}
        ]
    start, end = charge.period_start_at, charge.period_end_at
    if (start is None) != (end is None):
        errors["period_end_at" if end is None else "period_start_at"] = [
            gettext("Give both ends of the service period, or neither.")
        ]
    elif start is not None and end is not None and end <= start:
        errors["period_end_at"] = [gettext("Must be after the start of the period.")]
    amount = Decimal(0)
    if quantity is not None and unit_amount is not None and not {"quantity", "unit_amount"} & errors.keys():
        amount = quantize_amount(quantity * unit_amount, currency)  # rounded once
        if amount > MAX_AMOUNT:
            errors["unit_amount"] = [gettext("The charge (quantity × unit price) is too large.")]
    return _Checked(
        quantity=quantity or Decimal(0), unit_amount=unit_amount or Decimal(0), amount=amount,
        description=description, product=product, tax_rate=tax_rate, period_start_at=start, period_end_at=end,
        errors=errors,
    )  # fmt: skip


def _customer(customer_id: int) -> Customer:
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise ValidationFailed(
            gettext("No customer %(customer_id)s.") % {"customer_id": customer_id},
            fields={"customer": [gettext("No customer %(customer_id)s.") % {"customer_id": customer_id}]},
        )
    return customer


def _check_currency(customer: Customer, currency: str | None) -> None:
    if currency is not None and currency.upper() != customer.currency:
        raise ValidationFailed(
            gettext("%(customer_name)s is billed in %(customer_currency)s, not %(currency)s.")
            % {"customer_name": customer.name, "customer_currency": customer.currency, "currency": currency},
            fields={
                "currency": [
                    gettext("The customer is billed in %(currency)s: give prices in it.")
                    % {"currency": customer.currency}
                ]
            },
        )


def _raise(errors: dict[str, list[str]], prefix: str = "") -> None:
    if errors:
        fields = {f"{prefix}{name}": messages for name, messages in errors.items()}
        raise ValidationFailed(gettext("The charge is not valid: see the fields."), fields=fields)


# --- Pending invoice items -----------------------------------------------------------------------------


@transaction.atomic
def invoice_item_create(
    *,
    customer_id: int,
    charge: OneOffCharge,
    currency: str | None = None,
    actor: Any = None,
    now: datetime | None = None,
) -> InvoiceItem:
    """Add a one-off charge to the customer's next invoice. `currency` (when given) must be the
    customer's: prices are never converted. Raises `ValidationFailed` with an error per wrong field,
    having written nothing."""
    customer = _customer(customer_id)
    _check_currency(customer, currency)
    checked = _check(charge, currency=customer.currency)
    _raise(checked.errors)
    now = now or customer_now(customer)
    draft = checked.draft(customer.currency)
    return InvoiceItem.objects.create(
        customer=customer, subscription=None, kind=InvoiceLineKind.ONE_OFF, description=draft.description,
        period_start_at=draft.period_start_at, period_end_at=draft.period_end_at, quantity=draft.quantity,
        unit_amount=Money(draft.unit_amount, customer.currency), amount=Money(draft.amount, customer.currency),
        explanation=list(draft.explanation), product=draft.product, tax_rate=draft.tax_rate, created_at=now,
        updated_at=now, created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )  # fmt: skip


def _lock_pending(item_id: int) -> InvoiceItem:
    """The item, locked; refused unless it is a one-off charge still waiting. (A billing run taking
    it holds the lock until it commits: this waits, then sees it billed.)"""
    item = InvoiceItem.objects.select_for_update(of=("self",)).select_related("customer").filter(pk=item_id).first()
    if item is None:
        raise NotFound(gettext("Invoice item %(item_id)s does not exist.") % {"item_id": item_id})
    if item.kind != InvoiceLineKind.ONE_OFF:
        raise NotEditable(
            gettext("Invoice item %(item_id)s was made by billing (%(kind)s): it cannot be changed.")
            % {"item_id": item_id, "kind": item.get_kind_display().lower()},
            fields={"kind": [gettext("Only one-off charges added by staff can be changed or deleted.")]},
        )
    if item.invoice_id is not None:
        invoice = Invoice.objects.get(pk=item.invoice_id)
        raise NotEditable(
            gettext(
                "Invoice item %(item_id)s is billed on invoice %(invoice)s: it can no longer change "
                "(correct the invoice with a credit note)."
            )
            % {"item_id": item_id, "invoice": invoice},
            fields={"invoice": [gettext("Billed on invoice %(invoice)s.") % {"invoice": invoice}]},
        )
    return item


@transaction.atomic
def invoice_item_update(
    *, item_id: int, changes: dict[str, Any], currency: str | None = None, now: datetime | None = None
) -> InvoiceItem:
    """Change a pending one-off charge (any of `OneOffCharge`'s fields, by name); its amount is computed
    again. Refused once an invoice has taken it."""
    item = _lock_pending(item_id)
    unknown = set(changes) - set(OneOffCharge.__dataclass_fields__)
    if unknown:
        raise ValidationFailed(gettext("Unknown fields: %(unknown)s.") % {"unknown": ", ".join(sorted(unknown))})
    _check_currency(item.customer, currency)
    current = OneOffCharge(
        quantity=item.quantity, unit_amount=item.unit_amount.amount if item.unit_amount is not None else None,
        description=item.description, product_id=item.product_id, tax_rate_id=item.tax_rate_id,
        period_start_at=item.period_start_at, period_end_at=item.period_end_at,
    )  # fmt: skip
    if "description" not in changes and "product_id" in changes and item.product is not None:
        if item.description == item.product.name:  # named after its product: follows the product
            changes = {**changes, "description": ""}
    checked = _check(OneOffCharge(**{**current.__dict__, **changes}), currency=item.currency)
    _raise(checked.errors)
    draft = checked.draft(item.currency)
    item.description = draft.description
    item.quantity = draft.quantity
    item.unit_amount = Money(draft.unit_amount, item.currency)
    item.amount = Money(draft.amount, item.currency)
    item.explanation = list(draft.explanation)
    item.product = draft.product
    item.tax_rate = draft.tax_rate
    item.period_start_at, item.period_end_at = draft.period_start_at, draft.period_end_at
    item.updated_at = now or customer_now(item.customer)
    item.save()
    return item


@transaction.atomic
def invoice_item_delete(*, item_id: int) -> None:
    """Delete a pending one-off charge (refused once an invoice has taken it)."""
    item = _lock_pending(item_id)
    item.delete()


# --- One-off invoices ----------------------------------------------------------------------------------


@transaction.atomic
def invoice_one_off_create(
    *,
    customer_id: int,
    charges: Sequence[OneOffCharge],
    currency: str | None = None,
    memo: str = "",
    due_on: date | None = None,
    finalize: bool = False,
    actor: Any = None,
    now: datetime | None = None,
) -> Invoice:
    """Issue an invoice of these one-off charges now. It is a draft that the billing run finalizes when
    the review time is over (`INVOICE_DRAFT_GRACE_HOURS`; at once when there is none), or finalized at
    once with `finalize`: numbered, frozen, its PDF rendered and emailed, its card charged when the
    customer pays automatically — as every invoice. Errors name the charge (`lines.<n>.<field>`);
    nothing is written unless everything is valid."""
    customer = _customer(customer_id)
    _check_currency(customer, currency)
    if not charges:
        raise ValidationFailed(
            gettext("Give at least one line."), fields={"lines": [gettext("Give at least one line.")]}
        )
    if len(charges) > MAX_LINES:
        raise ValidationFailed(
            gettext("At most %(max_lines)s lines.") % {"max_lines": MAX_LINES},
            fields={"lines": [gettext("At most %(max_lines)s lines.") % {"max_lines": MAX_LINES}]},
        )
    errors: dict[str, list[str]] = {}
    checked = []
    for index, charge in enumerate(charges):
        one = _check(charge, currency=customer.currency)
        errors.update({f"lines.{index}.{name}": messages for name, messages in one.errors.items()})
        checked.append(one)
    now = now or customer_now(customer)
    if due_on is not None and due_on < now.date():
        errors["due_on"] = [gettext("Cannot be in the past.")]
    if errors:
        raise ValidationFailed(gettext("The invoice is not valid: see the fields."), fields=errors)
    currency = customer.currency
    drafts = [one.draft(currency) for one in checked]
    starts = [draft.period_start_at for draft in drafts if draft.period_start_at is not None]
    ends = [draft.period_end_at for draft in drafts if draft.period_end_at is not None]
    invoice = Invoice.objects.create(
        customer=customer, subscription=None, billing_reason=BillingReason.MANUAL, status=InvoiceStatus.DRAFT,
        period_start_at=min(starts, default=None), period_end_at=max(ends, default=None),
        subtotal=zero(currency), tax_total=zero(currency), total=zero(currency), memo=memo, due_on=due_on,
        auto_finalize_at=now + timedelta(hours=settings.INVOICE_DRAFT_GRACE_HOURS),
    )  # fmt: skip
    InvoiceLine.objects.bulk_create(invoice_lines_from_drafts(invoice, drafts))
    invoice_recompute_totals(invoice)
    invoice.save(update_fields=TOTALS_FIELDS)
    invoice_event_record(
        invoice=invoice, type=InvoiceEventType.CREATED, actor=actor, occurred_at=now,
        data={"reason": BillingReason.MANUAL, "lines": len(drafts)},
    )  # fmt: skip
    if finalize or settings.INVOICE_DRAFT_GRACE_HOURS == 0:
        invoice = invoice_finalize(invoice_id=invoice.pk, actor=actor, now=now)
    return invoice
