"""What goes on an invoice, computed without writing anything: the billing run turns these drafts
into invoice lines; previews (upcoming invoice, change preview) show them as they are."""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from django.db.models import Q
from django.utils.translation import gettext, ngettext
from djmoney.money import Money

from apps.accounts.models import Customer
from apps.catalog import pricing
from apps.catalog.constants import SIMPLE_CHARGE_NAME, ChargeKind, PriceModelChoice
from apps.catalog.models import BillableMetric, Charge, Plan, PlanVersion, Price, Product
from apps.core.errors import ApplicationError
from apps.core.money import quantize_fraction
from apps.core.money_format import money_text
from apps.invoices.constants import InvoiceLineKind
from apps.invoices.models import Invoice, InvoiceItem, InvoiceLine, TaxRate
from apps.invoices.pricing import tax_added
from apps.invoices.services.taxes import customer_tax_breakdown, is_taxed_kind
from apps.subscriptions.models import Discount, Subscription, SubscriptionPriceOverride
from apps.subscriptions.periods import Period, period_containing
from apps.subscriptions.proration import remaining_fraction
from apps.usage.models import UsageEvent
from apps.usage.selectors import (
    OFF_PEAK,
    PEAK,
    PoolShare,
    usage_aggregate,
    usage_aggregate_by_hours,
    usage_pool_shares,
)


@dataclass(frozen=True)
class LineDraft:
    kind: str
    description: str
    period_start_at: datetime | None
    period_end_at: datetime | None
    quantity: Decimal
    unit_amount: Decimal | None  # None where no single unit price applies (tiers, packages)
    amount: Decimal  # rounded once
    currency: str
    explanation: tuple[str, ...] = field(default=())
    charge: Charge | None = None
    # A one-off charge's own product and tax rate (None: taxed at the customer's rate).
    product: Product | None = None
    tax_rate: TaxRate | None = None
    # Late usage: the difference owed for a period already invoiced (it names that period).
    late: bool = False


def charge_title(plan: Plan, charge: Charge) -> str:
    title = f"{plan.product.name} — {plan.name}"
    return title if charge.name == SIMPLE_CHARGE_NAME else f"{title}: {charge.name}"


def recurring_charges(version: PlanVersion) -> list[Charge]:
    """Every recurring fee of the version, billed in advance or in arrears."""
    return [charge for charge in version.charges.all() if charge.kind == ChargeKind.RECURRING]


def advance_charges(version: PlanVersion) -> list[Charge]:
    """The recurring fees billed when their period begins (the default)."""
    return [charge for charge in recurring_charges(version) if not charge.is_billed_in_arrears]


def arrears_fee_charges(version: PlanVersion) -> list[Charge]:
    """The recurring fees billed when their period ends, with its usage."""
    return [charge for charge in recurring_charges(version) if charge.is_billed_in_arrears]


# A subscription's custom prices: charge id → the price it pays instead of the charge's.
PriceOverrides = Mapping[int, SubscriptionPriceOverride]
NO_OVERRIDES: PriceOverrides = {}


def price_overrides(subscription: Subscription | None) -> PriceOverrides:
    """The custom prices of `subscription` by charge id (none without one). Keyed by charge, an override
    applies only where its charge is priced: on the plan version it was set on."""
    if subscription is None or subscription.pk is None:
        return NO_OVERRIDES
    return {override.charge_id: override for override in subscription.price_overrides.all()}


def charge_price(
    charge: Charge, currency: str, overrides: PriceOverrides = NO_OVERRIDES
) -> "Price | SubscriptionPriceOverride | None":
    """The price a charge is billed at in `currency`: the subscription's custom price for it when it has
    one (it replaces every price of the charge), else the charge's own (default) price. Every invoice
    line, preview and proration reads its price here."""
    override = overrides.get(charge.pk)
    if override is not None and override.currency == currency:
        override.charge = charge  # the price model is the charge's
        return override
    return charge.price_for(currency)


def custom_price_note(charge: Charge, overrides: PriceOverrides) -> tuple[str, ...]:
    """An explanation line for a charge billed at the subscription's custom price."""
    if charge.pk not in overrides:
        return ()
    return (gettext("Custom price agreed for this subscription (instead of the plan's price)."),)


def charge_quote(
    charge: Charge, *, currency: str, quantity: int, overrides: PriceOverrides = NO_OVERRIDES
) -> tuple[pricing.Quote, Decimal]:
    """The charge priced for one full period, and the price's own amount (its unit price)."""
    price = charge_price(charge, currency, overrides)
    if price is None:
        raise ApplicationError(
            gettext("%(plan_version)s: charge %(charge_name)r has no price in %(currency)s.")
            % {"plan_version": charge.plan_version, "charge_name": charge.name, "currency": currency},
            code="missing_price",
        )
    return pricing.price_quote(price.to_spec(), quantity=Decimal(quantity)), price.amount


def recurring_line_drafts(
    *,
    plan: Plan,
    version: PlanVersion,
    quantity: int,
    currency: str,
    period: Period,
    billed_from: datetime | None = None,
    subscription: Subscription | None = None,
) -> list[LineDraft]:
    """One line per recurring charge billed in advance for the period, plus a minimum true-up line
    where a charge's minimum is not reached (fees billed in arrears: `arrears_fee_line_drafts`).

    `billed_from` after the period's start bills a partial first period (calendar billing): each
    amount, and each minimum, is the full-period one × the exact share of the period's seconds that
    is billed, rounded once."""
    start = billed_from if billed_from is not None and billed_from > period.start else period.start
    return _fee_line_drafts(
        plan=plan, charges=advance_charges(version), quantity=quantity, currency=currency, period=period,
        start=start, end=period.end, overrides=price_overrides(subscription),
    )  # fmt: skip


def arrears_fee_line_drafts(
    *,
    plan: Plan,
    version: PlanVersion,
    quantity: int,
    currency: str,
    period: Period,
    start: datetime,
    end: datetime,
    subscription: Subscription | None = None,
) -> list[LineDraft]:
    """The recurring charges billed in arrears for the part [start, end) of `period` that has passed:
    each charge's full-period amount × the exact share of the period's seconds, rounded once (the whole
    amount for the whole period)."""
    start, end = max(start, period.start), min(end, period.end)
    if end <= start:
        return []
    return _fee_line_drafts(
        plan=plan, charges=arrears_fee_charges(version), quantity=quantity, currency=currency, period=period,
        start=start, end=end, in_arrears=True, overrides=price_overrides(subscription),
    )  # fmt: skip


def _fee_line_drafts(
    *,
    plan: Plan,
    charges: list[Charge],
    quantity: int,
    currency: str,
    period: Period,
    start: datetime,
    end: datetime,
    in_arrears: bool = False,
    overrides: PriceOverrides = NO_OVERRIDES,
) -> list[LineDraft]:
    fraction = remaining_fraction(period, start) - remaining_fraction(period, end)
    partial = fraction < 1
    drafts = []
    for charge in charges:
        quote, price_amount = charge_quote(charge, currency=currency, quantity=quantity, overrides=overrides)
        price = charge_price(charge, currency, overrides)
        single_unit_price = charge.price_model in (PriceModelChoice.FLAT, PriceModelChoice.PER_UNIT)
        described = partial or not single_unit_price or bool(price and price.included_units)
        title = charge_title(plan, charge)
        explanation = [line.description for line in quote.lines] if described else []
        explanation += custom_price_note(charge, overrides)
        amount = quote.amount
        if partial:
            amount = quantize_fraction(Fraction(quote.exact_amount) * fraction, currency)
            explanation.append(
                gettext("Partial period: %(amount)s × %(share)s (%(numerator)s/%(denominator)s of its seconds)")
                % {
                    "amount": pricing.format_price(quote.exact_amount, currency),
                    "share": _share(fraction),
                    "numerator": f"{fraction.numerator:,}",
                    "denominator": f"{fraction.denominator:,}",
                }
            )
        if in_arrears:
            explanation.append(gettext("Billed in arrears, for the time that has passed."))
        name = gettext("%(title)s (%(interval)s, partial period)") if partial else gettext("%(title)s (%(interval)s)")
        drafts.append(
            LineDraft(
                kind=InvoiceLineKind.RECURRING,
                description=name % {"title": title, "interval": plan.interval_label},
                period_start_at=start,
                period_end_at=end,
                quantity=Decimal(1) if charge.price_model == PriceModelChoice.FLAT else Decimal(quantity),
                unit_amount=price_amount if single_unit_price and not partial else None,
                amount=amount,
                currency=currency,
                explanation=tuple(explanation),
                charge=charge,
            )
        )
        minimum = price.minimum_amount if price is not None else None
        if minimum is None:
            continue
        due_minimum = quantize_fraction(Fraction(minimum) * fraction, currency) if partial else minimum
        true_up = quantize_fraction(Fraction(due_minimum - amount), currency) if due_minimum > amount else Decimal(0)
        if true_up > 0:
            drafts.append(
                LineDraft(
                    kind=InvoiceLineKind.MINIMUM,
                    description=gettext("%(title)s: minimum charge true-up") % {"title": title},
                    period_start_at=start,
                    period_end_at=end,
                    quantity=Decimal(1),
                    unit_amount=true_up,
                    amount=true_up,
                    currency=currency,
                    explanation=(
                        (
                            gettext(
                                "Minimum charge per period %(minimum)s (for the part of the period billed); "
                                "this charge came to %(amount)s."
                            )
                            if partial
                            else gettext("Minimum charge per period %(minimum)s; this charge came to %(amount)s.")
                        )
                        % {
                            "minimum": pricing.format_price(due_minimum, currency),
                            "amount": pricing.format_price(amount, currency),
                        },
                    ),
                    charge=charge,
                )
            )
    return drafts


def _duration(delta: timedelta) -> str:
    """A span for people: "20 days 14 h 15 min" (to the minute; the amount uses the exact seconds)."""
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [ngettext("%(days)s day", "%(days)s days", days) % {"days": days}] if days else []
    parts += [gettext("%(hours)s h") % {"hours": hours}] if hours else []
    parts += [gettext("%(minutes)s min") % {"minutes": minutes}] if minutes else []
    return " ".join(parts) or gettext("under a minute")


def usage_line_description(title: str) -> str:
    """ "Cloud — Pro: API calls (usage)", in the language active (the bill's)."""
    return gettext("%(title)s (usage)") % {"title": title}


def _percent(fraction: Fraction) -> str:
    """The fraction in percent, truncated to hundredths: "12.34 %"."""
    hundredths = fraction.numerator * 10_000 // fraction.denominator
    return f"{hundredths // 100}.{hundredths % 100:02d} %"


def _share(fraction: Fraction) -> str:
    if fraction >= 1:
        return gettext("the whole period")
    return gettext("%(percent)s of the period") % {"percent": _percent(fraction)}


def proration_line_drafts(
    *,
    plan: Plan,
    version: PlanVersion,
    quantity: int,
    new_plan: Plan,
    new_version: PlanVersion,
    new_quantity: int,
    currency: str,
    period: Period,
    changed_at: datetime,
    credit_scale: Fraction = Fraction(1),
    skip_unchanged: bool = True,
    subscription: Subscription | None = None,
) -> list[LineDraft]:
    """Credit the unused time of every recurring charge as it was, charge the remaining time of every
    recurring charge as it will be: each charge's full-period amount (exact, before rounding; at least
    its minimum per period) × the exact remaining share of the period, rounded once. Credits are
    × `credit_scale` (what share of the list price was actually invoiced, e.g. after a discount).
    Lines of zero are left out. `subscription`'s custom prices apply to the charges they were set on
    (a quantity change keeps them; the charges of another version have none)."""
    overrides = price_overrides(subscription)
    fraction = remaining_fraction(period, changed_at)
    share = _share(fraction)
    left = _duration(period.end - changed_at)
    whole = _duration(period.end - period.start)
    drafts = []
    full_amounts: dict[tuple[int, int], Decimal] = {}
    sides = [
        (-1, plan, version, quantity, gettext("Unused time on %(name)s")),
        (1, new_plan, new_version, new_quantity, gettext("Remaining time on %(name)s")),
    ]
    for sign, side_plan, side_version, side_quantity, label in sides:
        # Fees billed in arrears are not prorated here: each stretch of the period bills its own share
        # when the period closes (`SubscriptionSegment`).
        for charge in advance_charges(side_version):
            quote, _ = charge_quote(charge, currency=currency, quantity=side_quantity, overrides=overrides)
            price = charge_price(charge, currency, overrides)
            full = quote.exact_amount
            if price is not None and price.minimum_amount is not None and price.minimum_amount > full:
                full = price.minimum_amount  # the period cost its minimum
            full_amounts[(sign, charge.pk)] = full
            if skip_unchanged and sign > 0 and full_amounts.get((-1, charge.pk)) == full and credit_scale == 1:
                # The same charge at the same amount before and after (e.g. a flat fee on a quantity
                # change): nothing changes for it, so neither its credit nor its charge is shown.
                drafts = [draft for draft in drafts if not (draft.charge == charge and draft.amount < 0)]
                continue
            scale = credit_scale if sign < 0 else Fraction(1)
            amount = sign * quantize_fraction(Fraction(full) * fraction * scale, currency)
            if amount == 0:
                continue
            quantity_text = "" if charge.price_model == PriceModelChoice.FLAT else f" ×{side_quantity}"
            drafts.append(
                LineDraft(
                    kind=InvoiceLineKind.PRORATION,
                    description=label % {"name": f"{charge_title(side_plan, charge)}{quantity_text}"},
                    period_start_at=changed_at,
                    period_end_at=period.end,
                    quantity=Decimal(side_quantity),
                    unit_amount=None,
                    amount=amount,
                    currency=currency,
                    explanation=(
                        (
                            gettext(
                                "%(amount)s per period × %(share)s (%(left)s of %(whole)s) × %(invoiced)s invoiced "
                                "after discounts"
                            )
                            if scale != 1
                            else gettext("%(amount)s per period × %(share)s (%(left)s of %(whole)s)")
                        )
                        % {
                            "amount": pricing.format_price(full, currency),
                            "share": share,
                            "left": left,
                            "whole": whole,
                            "invoiced": _percent(scale) if scale < 1 else gettext("the whole period"),
                        },
                        *custom_price_note(charge, overrides),
                    ),
                    charge=charge,
                )
            )
    return drafts


def item_line_draft(item: InvoiceItem) -> LineDraft:
    currency = str(item.amount.currency)
    return LineDraft(
        kind=item.kind,
        description=item.description,
        period_start_at=item.period_start_at,
        period_end_at=item.period_end_at,
        quantity=item.quantity,
        unit_amount=item.unit_amount.amount if item.unit_amount is not None else None,
        amount=item.amount.amount,
        currency=currency,
        explanation=tuple(item.explanation),
        charge=item.charge,
        product=item.product,
        tax_rate=item.tax_rate,
    )


def _draft_values(draft: LineDraft) -> dict:
    """The fields an invoice line and an invoice item share, from a draft."""
    return {
        "kind": draft.kind,
        "charge": draft.charge,
        "description": draft.description,
        "period_start_at": draft.period_start_at,
        "period_end_at": draft.period_end_at,
        "quantity": draft.quantity,
        "unit_amount": Money(draft.unit_amount, draft.currency) if draft.unit_amount is not None else None,
        "amount": Money(draft.amount, draft.currency),
        "explanation": list(draft.explanation),
        "product": draft.product,
        "tax_rate": draft.tax_rate,
    }


def invoice_span(
    drafts: Sequence[LineDraft], *, start: datetime, end: datetime, previous_start: datetime | None = None
) -> tuple[datetime, datetime]:
    """The period a renewal invoice names: the new period [start, end) when it bills something for it
    (a fee in advance); else, when it bills only what is owed in arrears, the span of the lines of the
    period just ended. Lines that name other times — late usage of periods already invoiced, one-off
    items, credits — never widen it: an invoice named after an earlier period would take that period's
    name from its own invoice. With no line of the period just ended (only late usage or one-off items),
    it names that period, [previous_start, start)."""
    own = [draft for draft in drafts if not draft.late and draft.kind in PERIOD_KINDS]
    if any(draft.period_end_at is not None and draft.period_end_at > start for draft in own):
        return start, end
    starts = [draft.period_start_at for draft in own if draft.period_start_at is not None]
    ends = [draft.period_end_at for draft in own if draft.period_end_at is not None]
    if starts and ends:
        return min(starts), max(ends)
    if previous_start is not None and previous_start < start:
        return previous_start, start
    return start, end


def invoice_lines_from_drafts(invoice: Invoice, drafts: Iterable[LineDraft], *, start: int = 1) -> list[InvoiceLine]:
    return [
        InvoiceLine(invoice=invoice, position=position, **_draft_values(draft))
        for position, draft in enumerate(drafts, start=start)
    ]


def invoice_item_from_draft(*, draft: LineDraft, subscription, created_at: datetime) -> InvoiceItem:
    return InvoiceItem(
        customer_id=subscription.customer_id, subscription=subscription, created_at=created_at, **_draft_values(draft)
    )


# The kinds of line that bill a subscription's own period (what names a renewal invoice).
PERIOD_KINDS = frozenset(
    {InvoiceLineKind.RECURRING, InvoiceLineKind.USAGE, InvoiceLineKind.MINIMUM, InvoiceLineKind.PRORATION}
)
DISCOUNTABLE_KINDS = frozenset(
    {InvoiceLineKind.RECURRING, InvoiceLineKind.USAGE, InvoiceLineKind.MINIMUM, InvoiceLineKind.PRORATION}
)


def discount_line_drafts(
    *, drafts: list[LineDraft], discounts: list[Discount], plan: Plan, currency: str
) -> tuple[list[LineDraft], list[Discount]]:
    """One negative line per discount that takes something off, and the discounts used.

    A discount covers the lines of the products its coupon names (every product when it names none);
    its base is the sum of those rounded lines. Several discounts apply one after the other, each on
    what the earlier ones left, so that the invoice never goes below zero through discounts."""
    lines: list[LineDraft] = []
    used: list[Discount] = []
    taken_by_line: dict[int, Decimal] = {}
    for discount in discounts:
        coupon = discount.coupon
        covered = [
            index
            for index, draft in enumerate(drafts)
            if draft.kind in DISCOUNTABLE_KINDS and coupon.applies_to_product(_product_id(draft, plan))
        ]
        eligible = sum((drafts[index].amount - taken_by_line.get(index, Decimal(0)) for index in covered), Decimal(0))
        amount_row = coupon.amount_for(currency)
        if coupon.discount_type == "fixed_amount" and amount_row is None:
            continue
        taken = pricing.discount_amount(
            discount_type=coupon.discount_type,
            percent_off=coupon.percent_off,
            amount_off=amount_row.amount_off if amount_row is not None else None,
            eligible_amount=eligible,
            currency=currency,
        )
        if taken <= 0:
            continue
        _spread(taken, covered, drafts, taken_by_line)
        what = (
            gettext("%(percent)s %% off") % {"percent": pricing.format_quantity(coupon.percent_off)}
            if coupon.percent_off is not None
            else gettext("%(amount)s off") % {"amount": money_text(amount_row.amount_off, currency)}  # type: ignore[union-attr]
        )
        products = [product.name for product in coupon.products.all()]
        limit = coupon.period_limit
        values = {
            "what": what,
            "eligible": pricing.format_price(eligible, currency),
            "products": ", ".join(products),
            "code": coupon.code,
            "number": discount.periods_applied + 1,
            "limit": limit,
        }
        if products and limit is None:
            explanation = gettext("%(what)s of %(eligible)s (%(products)s only); coupon %(code)s, forever.")
        elif products:
            explanation = gettext(
                "%(what)s of %(eligible)s (%(products)s only); coupon %(code)s, invoice %(number)s of %(limit)s."
            )
        elif limit is None:
            explanation = gettext("%(what)s of %(eligible)s; coupon %(code)s, forever.")
        else:
            explanation = gettext("%(what)s of %(eligible)s; coupon %(code)s, invoice %(number)s of %(limit)s.")
        lines.append(
            LineDraft(
                kind=InvoiceLineKind.DISCOUNT,
                description=gettext("Discount: %(coupon)s (%(what)s)") % {"coupon": coupon.name, "what": what},
                period_start_at=None,
                period_end_at=None,
                quantity=Decimal(1),
                unit_amount=None,
                amount=-taken,
                currency=currency,
                explanation=(explanation % values,),
            )
        )
        used.append(discount)
    return lines, used


def _product_id(draft: LineDraft, plan: Plan) -> int:
    if draft.charge is not None:
        return draft.charge.plan_version.plan.product_id
    return plan.product_id


def _spread(taken: Decimal, covered: list[int], drafts: list[LineDraft], taken_by_line: dict[int, Decimal]) -> None:
    """Book a discount against the lines it covers, in order, so later discounts see what is left."""
    remaining = taken
    for index in covered:
        left = drafts[index].amount - taken_by_line.get(index, Decimal(0))
        if left <= 0 or remaining <= 0:
            continue
        share = min(left, remaining)
        taken_by_line[index] = taken_by_line.get(index, Decimal(0)) + share
        remaining -= share


def customer_credit_drafts(
    *,
    customer_id: int,
    currency: str,
    drafts: list[LineDraft],
    lock: bool = False,
    moving: Sequence[InvoiceItem] = (),
) -> tuple[list[LineDraft], list[tuple[InvoiceItem, Decimal]]]:
    """The customer's waiting credits (e.g. from a subscription canceled with a credit, or a credit
    note credited to the balance) taken off this invoice, oldest first, never below zero: the part
    that does not fit waits for the next invoice. Credits from credit notes come off after tax.
    `moving`: a subscription's waiting items counted as already moved to the customer's account (the
    preview of its end). Returns the lines and (item, amount taken) for `customer_credit_take`."""
    waiting = InvoiceItem.objects.filter(
        customer_id=customer_id, subscription__isnull=True, invoice__isnull=True, amount_currency=currency
    ).order_by("created_at", "id")
    if lock:
        waiting = waiting.select_for_update()
    waiting = sorted([*waiting, *moving], key=lambda item: (item.created_at, item.pk)) if moving else list(waiting)
    lines, uses = [], []
    for item in waiting:
        if item.amount.amount >= 0:  # charges left by an ended subscription: always taken
            lines.append(item_line_draft(item))
            uses.append((item, -item.amount.amount))
    available = sum((draft.amount for draft in [*drafts, *lines]), Decimal(0))
    # Credits before tax (e.g. unused time) lower the taxed amount and come off first; credits from
    # credit notes already carry their tax, so they come off last, off the total with its tax.
    before_tax = [item for item in waiting if item.amount.amount < 0 and is_taxed_kind(item.kind)]
    after_tax = [item for item in waiting if item.amount.amount < 0 and not is_taxed_kind(item.kind)]
    available = _credits_take(before_tax, available=available, currency=currency, lines=lines, uses=uses)
    if after_tax and available > 0:
        available += _tax_added(customer_id, currency, [*drafts, *lines])
        _credits_take(after_tax, available=available, currency=currency, lines=lines, uses=uses)
    return lines, uses


def _credits_take(
    credits: list[InvoiceItem],
    *,
    available: Decimal,
    currency: str,
    lines: list[LineDraft],
    uses: list[tuple[InvoiceItem, Decimal]],
) -> Decimal:
    """Take `credits` in order, at most `available` in all (appending to `lines` and `uses`); returns
    what is still available."""
    for item in credits:
        if available <= 0:
            break
        taken = min(-item.amount.amount, available)
        available -= taken
        whole = taken == -item.amount.amount
        draft = item_line_draft(item)
        lines.append(
            LineDraft(
                kind=draft.kind, description=draft.description, period_start_at=draft.period_start_at,
                period_end_at=draft.period_end_at, quantity=draft.quantity, unit_amount=None, amount=-taken,
                currency=currency,
                explanation=draft.explanation if whole else (
                    *draft.explanation,
                    gettext("Credit of %(credit)s: %(taken)s taken here, the rest on the next invoice.") % {
                        "credit": pricing.format_price(-item.amount.amount, currency),
                        "taken": pricing.format_price(taken, currency),
                    },
                ),
                charge=draft.charge,
            )
        )  # fmt: skip
        uses.append((item, taken))
    return available


def _tax_added(customer_id: int, currency: str, drafts: list[LineDraft]) -> Decimal:
    """The tax these lines will have added on top of them (exclusive rates)."""
    taxed = [draft for draft in drafts if is_taxed_kind(draft.kind)]
    taxes, _ = customer_tax_breakdown(
        customer=Customer.objects.get(pk=customer_id),
        amounts=[draft.amount for draft in taxed],
        currency=currency,
        rates=[draft.tax_rate for draft in taxed],
    )
    return tax_added(taxes)


def customer_credit_take(uses: list[tuple[InvoiceItem, Decimal]], *, invoice: Invoice) -> None:
    """Mark the credits taken by `invoice`; a credit taken in part is split, its rest still waiting."""
    for item, taken in uses:
        currency = str(item.amount.currency)
        if item.amount.amount >= 0 or taken == -item.amount.amount:
            InvoiceItem.objects.filter(pk=item.pk).update(invoice=invoice)
            continue
        InvoiceItem.objects.filter(pk=item.pk).update(amount=Money(item.amount.amount + taken, currency))
        InvoiceItem.objects.create(
            customer_id=item.customer_id, subscription=None, invoice=invoice, kind=item.kind, charge=item.charge,
            description=item.description, period_start_at=item.period_start_at, period_end_at=item.period_end_at,
            quantity=item.quantity, amount=Money(-taken, currency), explanation=item.explanation,
            created_at=item.created_at,
        )  # fmt: skip


def usage_charges(version: PlanVersion) -> list[Charge]:
    return [charge for charge in version.charges.all() if charge.kind == ChargeKind.USAGE]


def usage_line_drafts(
    *,
    customer: Customer,
    plan: Plan,
    version: PlanVersion,
    currency: str,
    start: datetime,
    end: datetime,
    metrics: dict[str, BillableMetric] | None = None,
    totals_by_charge: dict[int, dict[str, Decimal]] | None = None,
    subscription: Subscription | None = None,
    values_by_charge: dict[int, dict[str, list[Decimal]]] | None = None,
) -> list[LineDraft]:
    """Usage charges for [start, end), billed in arrears: per charge (and per group of a grouped
    metric) the metric's aggregate priced by the charge's price — the group's own price when the
    charge has one for it (dimension prices), else its default price — rounded once; a minimum true-up
    where one applies. Charges with no usage and nothing to charge are left out.

    The billing run passes the metrics and the aggregates it read for a whole chunk at once
    (`metrics`, `totals_by_charge`: charge id → group → aggregate), and for percentage prices each
    group's event values (`values_by_charge`: charge id → group → values, oldest first, as
    `usage_values` reads them); without them they are read here.
    A pooled charge bills `subscription`'s usage beyond its share of the pool (`_pooled_line_drafts`)."""
    drafts: list[LineDraft] = []
    if end <= start:
        return drafts
    charges = usage_charges(version)
    if not charges:
        return drafts
    if metrics is None:
        metrics = {
            metric.code: metric for metric in BillableMetric.objects.filter(code__in=[c.metric_code for c in charges])
        }
    overrides = price_overrides(subscription)
    for charge in charges:
        metric = metrics.get(charge.metric_code)
        price = charge_price(charge, currency, overrides)
        custom = custom_price_note(charge, overrides)
        if metric is None or price is None:
            message = (
                gettext("%(version)s: usage charge %(charge_name)r has no billable metric %(metric_code)r.")
                if metric is None
                else gettext("%(version)s: usage charge %(charge_name)r has no price in %(currency)s.")
            )
            raise ApplicationError(
                message
                % {
                    "version": version,
                    "charge_name": charge.name,
                    "metric_code": charge.metric_code,
                    "currency": currency,
                },
                code="missing_price" if metric is not None else "missing_metric",
            )
        if charge.has_peak_hours:
            # The billing run's split ({"peak": …, "off_peak": …}) when it read one for the chunk.
            split = totals_by_charge.get(charge.pk) if totals_by_charge is not None else None
            drafts += _peak_line_drafts(
                customer=customer, plan=plan, charge=charge, metric=metric, price=price, start=start, end=end,
                custom=custom, split=split,
            )  # fmt: skip
            continue
        if charge.is_pooled:
            if subscription is None:
                raise ApplicationError(
                    gettext(
                        "%(version)s: usage charge %(charge_name)r is pooled; its usage is billed per subscription."
                    )
                    % {"version": version, "charge_name": charge.name},
                    code="pooled_charge",
                )
            drafts += _pooled_line_drafts(
                subscription=subscription, plan=plan, charge=charge, metric=metric, price=price, start=start, end=end,
                custom=custom,
            )  # fmt: skip
            continue
        if totals_by_charge is not None and charge.pk in totals_by_charge:
            totals = totals_by_charge[charge.pk] or {"": Decimal(0)}
        else:
            totals = usage_aggregate(customer=customer, metric=metric, start=start, end=end) or {"": Decimal(0)}
        for group, quantity in sorted(totals.items()):
            group_price = price if custom else charge.price_for_group(currency, metric.group_values(group)) or price
            spec = group_price.to_spec()
            transactions: list[Decimal] = []
            if spec.model == pricing.PriceModel.PERCENTAGE:
                if values_by_charge is not None and charge.pk in values_by_charge:
                    transactions = values_by_charge[charge.pk].get(group, [])
                else:
                    transactions = usage_values(customer=customer, metric=metric, start=start, end=end, group_key=group)
                quantity = Decimal(len(transactions))
            quote = pricing.price_quote(spec, quantity=quantity, transactions=transactions)
            if quote.total == 0 and quantity == 0:
                continue
            title = f"{charge_title(plan, charge)}{f' — {metric.group_label(group)}' if group else ''}"
            single_unit_price = charge.price_model == PriceModelChoice.PER_UNIT and not group_price.included_units
            drafts.append(
                LineDraft(
                    kind=InvoiceLineKind.USAGE,
                    description=usage_line_description(title),
                    period_start_at=start,
                    period_end_at=end,
                    quantity=quote.quantity,
                    unit_amount=group_price.amount if single_unit_price else None,
                    amount=quote.amount,
                    currency=currency,
                    explanation=(
                        _metric_note(metric, quote.quantity, metric.aggregation_label),
                        *_dimension_price_note(charge, group_price, metric, group),
                        *custom,
                        *(line.description for line in quote.lines),
                    ),
                    charge=charge,
                )
            )
            if quote.minimum_true_up:
                drafts.append(
                    LineDraft(
                        kind=InvoiceLineKind.MINIMUM,
                        description=gettext("%(title)s: minimum charge true-up") % {"title": title},
                        period_start_at=start,
                        period_end_at=end,
                        quantity=Decimal(1),
                        unit_amount=quote.minimum_true_up,
                        amount=quote.minimum_true_up,
                        currency=currency,
                        explanation=(_usage_minimum_note(group_price.minimum_amount, quote.amount, currency),),
                        charge=charge,
                    )
                )
    return drafts


def pool_members(
    subscription: Subscription, *, plan: Plan, charge: Charge, start: datetime, end: datetime
) -> dict[int, Decimal]:
    """The subscriptions sharing `subscription`'s pool for [start, end), each with the allowance it adds
    to the pool: the customer's subscriptions in the same currency, alive at some time in the window,
    whose billing period containing `start` is the same as this one's (a pool is settled per period),
    `subscription` itself always.

    Without a pool code (docs/pricing.md, "Pooled allowances") they are the subscriptions on `plan`, each
    adding `charge`'s allowance. With one ("Pools across plans") they are the subscriptions whose plan
    version has a charge on the metric naming the same pool, each adding its own charge's allowance."""
    period = period_containing(subscription.billing_anchor_at, plan.interval, plan.interval_count, start)
    alive = Subscription.objects.filter(
        customer_id=subscription.customer_id, currency=subscription.currency, started_at__lt=end
    ).filter(Q(ended_at__isnull=True) | Q(ended_at__gt=start))
    allowance = charge.pooled_allowance or Decimal(0)
    if charge.pool_code:
        rows = alive.filter(
            plan_version__charges__kind=ChargeKind.USAGE,
            plan_version__charges__metric_code=charge.metric_code,
            plan_version__charges__pool_code=charge.pool_code,
        ).values_list("pk", "billing_anchor_at", "plan__interval", "plan__interval_count",
                      "plan_version__charges__pooled_allowance")  # fmt: skip
    else:
        rows = alive.filter(plan=plan).values_list("pk", "billing_anchor_at", "plan__interval", "plan__interval_count")
    members: dict[int, Decimal] = {}
    for pk, anchor, interval, count, *own in rows:
        if period_containing(anchor, interval, count, start) == period:
            members[pk] = own[0] if own and own[0] is not None else allowance
    members.setdefault(subscription.pk, allowance)
    return dict(sorted(members.items()))


def _pool_note(charge: Charge, members: Mapping[int, Decimal], pool: Decimal, pool_used: Decimal) -> str:
    """The pool in a line's explanation: its members and size, and what all of them used."""
    number = pricing.format_quantity
    if not charge.pool_code:
        allowance = charge.pooled_allowance or Decimal(0)
        return gettext(
            "Pool: %(count)s subscriptions × %(allowance)s = %(pool)s, shared by the customer's subscriptions on "
            "this plan; %(pool_used)s used by all of them."
        ) % {
            "count": len(members),
            "allowance": number(allowance),
            "pool": number(pool),
            "pool_used": number(pool_used),
        }
    counts: dict[Decimal, int] = {}
    for member_allowance in members.values():
        counts[member_allowance] = counts.get(member_allowance, 0) + 1
    allowances = " + ".join(f"{count} × {number(value)}" for value, count in sorted(counts.items()))
    return gettext(
        "Pool %(pool_code)s: %(allowances)s = %(pool)s, shared by the customer's %(count)s subscriptions on the plans "
        "of this pool; %(pool_used)s used by all of them."
    ) % {
        "pool_code": charge.pool_code,
        "allowances": allowances,
        "pool": number(pool),
        "count": len(members),
        "pool_used": number(pool_used),
    }


def _pooled_line_drafts(
    *,
    subscription: Subscription,
    plan: Plan,
    charge: Charge,
    metric: BillableMetric,
    price: "Price | SubscriptionPriceOverride",
    start: datetime,
    end: datetime,
    custom: tuple[str, ...] = (),
) -> list[LineDraft]:
    """A pooled charge's line for one subscription: its usage in [start, end), the part the pool covered
    and the part beyond it (event order across the pool's subscriptions), the latter priced by the
    charge's price, rounded once; a minimum true-up where one applies."""
    # The pool is the period's: a stretch of it (the part before or after a change inside the period)
    # shares it with the period's other stretches, in event order, never gets a fresh one.
    period = period_containing(subscription.billing_anchor_at, plan.interval, plan.interval_count, start)
    members = pool_members(subscription, plan=plan, charge=charge, start=period.start, end=max(end, period.end))
    pool = sum(members.values(), Decimal(0))
    shares = usage_pool_shares(
        customer_id=subscription.customer_id, metric=metric, start=start, end=end, member_ids=list(members), pool=pool,
        consumed_from=period.start,
    )  # fmt: skip
    share = shares.get(subscription.pk, PoolShare(Decimal(0), Decimal(0), Decimal(0)))
    currency = price.currency
    quote = pricing.price_quote(price.to_spec(), quantity=share.beyond_pool)
    if share.used == 0 and quote.total == 0:
        return []
    pool_used = sum((member_share.used for member_share in shares.values()), Decimal(0))
    title = charge_title(plan, charge)
    number = pricing.format_quantity
    explanation = (
        gettext("%(metric)s: %(used)s used by this subscription (%(aggregation)s).")
        % {"metric": metric.name, "used": number(share.used), "aggregation": metric.get_aggregation_display()},
        _pool_note(charge, members, pool, pool_used),
        gettext(
            "From the pool: %(from_pool)s; beyond the pool: %(beyond)s (the pool is used in the order the events "
            "happened; usage beyond it is billed to the subscription that sent it)."
        )
        % {"from_pool": number(share.from_pool), "beyond": number(share.beyond_pool)},
        *custom,
        *(line.description for line in quote.lines),
    )
    single_unit_price = charge.price_model == PriceModelChoice.PER_UNIT
    drafts = [
        LineDraft(
            kind=InvoiceLineKind.USAGE,
            description=gettext("%(title)s (usage beyond the pool)") % {"title": title},
            period_start_at=start,
            period_end_at=end,
            quantity=quote.quantity,
            unit_amount=price.amount if single_unit_price else None,
            amount=quote.amount,
            currency=currency,
            explanation=explanation,
            charge=charge,
        )
    ]
    if quote.minimum_true_up:
        drafts.append(
            LineDraft(
                kind=InvoiceLineKind.MINIMUM,
                description=gettext("%(title)s: minimum charge true-up") % {"title": title},
                period_start_at=start,
                period_end_at=end,
                quantity=Decimal(1),
                unit_amount=quote.minimum_true_up,
                amount=quote.minimum_true_up,
                currency=currency,
                explanation=(_usage_minimum_note(price.minimum_amount, quote.amount, currency),),
                charge=charge,
            )
        )
    return drafts


def customer_time_zone(customer: Customer) -> str:
    """The time zone a customer's peak hours are in."""
    return customer.time_zone or "UTC"


def _peak_window_label(charge: Charge) -> str:
    return f"{charge.peak_start_hour:02d}:00–{charge.peak_end_hour:02d}:00"


def _peak_line_drafts(
    *,
    customer: Customer,
    plan: Plan,
    charge: Charge,
    metric: BillableMetric,
    price: "Price | SubscriptionPriceOverride",
    start: datetime,
    end: datetime,
    custom: tuple[str, ...] = (),
    split: dict[str, Decimal] | None = None,
) -> list[LineDraft]:
    """A charge with peak hours: the usage in its peak hours (local hours of the customer's time zone)
    priced by its peak price (its default price when it has none in the currency), and the usage in the
    other hours by its default price, each on its own line, rounded once; a minimum true-up per line
    where one applies. `split`: the usage split already read (the billing run reads it for a chunk)."""
    currency = price.currency
    time_zone = customer_time_zone(customer)
    if split is None:
        split = usage_aggregate_by_hours(
            customer=customer, metric=metric, start=start, end=end, time_zone=time_zone, hours=charge.peak_hours()
        )
    window = _peak_window_label(charge)
    # A custom price replaces the peak price too: both sides are billed at it, on their own lines.
    peak_price = price if custom else charge.peak_price_for(currency)
    title = charge_title(plan, charge)
    sides = [
        (
            PEAK,
            peak_price or price,
            gettext("%(title)s — peak hours %(window)s") % {"title": title, "window": window},
            gettext("Peak hours: %(window)s in %(time_zone)s (the customer's time zone), at the peak price.")
            % {"window": window, "time_zone": time_zone}
            if peak_price is not None
            else gettext(
                "Peak hours: %(window)s in %(time_zone)s (the customer's time zone), at the default price (the "
                "charge has no peak price in %(currency)s)."
            )
            % {"window": window, "time_zone": time_zone, "currency": currency},
        ),
        (
            OFF_PEAK,
            price,
            gettext("%(title)s — off-peak hours") % {"title": title},
            gettext("Off-peak: the hours outside %(window)s in %(time_zone)s (the customer's time zone).")
            % {"window": window, "time_zone": time_zone},
        ),
    ]
    drafts: list[LineDraft] = []
    for side, side_price, side_title, note in sides:
        quantity = split.get(side, Decimal(0))
        quote = pricing.price_quote(side_price.to_spec(), quantity=quantity)
        if quote.total == 0 and quantity == 0:
            continue
        single_unit_price = charge.price_model == PriceModelChoice.PER_UNIT and not side_price.included_units
        drafts.append(
            LineDraft(
                kind=InvoiceLineKind.USAGE,
                description=usage_line_description(side_title),
                period_start_at=start,
                period_end_at=end,
                quantity=quote.quantity,
                unit_amount=side_price.amount if single_unit_price else None,
                amount=quote.amount,
                currency=currency,
                explanation=(
                    _metric_note(metric, quote.quantity, str(metric.get_aggregation_display())),
                    note,
                    *custom,
                    *(line.description for line in quote.lines),
                ),
                charge=charge,
            )
        )
        if quote.minimum_true_up:
            drafts.append(
                LineDraft(
                    kind=InvoiceLineKind.MINIMUM,
                    description=gettext("%(title)s: minimum charge true-up") % {"title": side_title},
                    period_start_at=start,
                    period_end_at=end,
                    quantity=Decimal(1),
                    unit_amount=quote.minimum_true_up,
                    amount=quote.minimum_true_up,
                    currency=currency,
                    explanation=(_usage_minimum_note(side_price.minimum_amount, quote.amount, currency),),
                    charge=charge,
                )
            )
    return drafts


def _dimension_price_note(
    charge: Charge, price: "Price | SubscriptionPriceOverride", metric: BillableMetric, group: str
) -> tuple[str, ...]:
    """Which price a group was billed at, when the charge prices groups apart."""
    if not group or not charge.has_dimension_prices:
        return ()
    values = {"group": metric.group_label(group)}
    if price.dimension_values:
        return (gettext("Price for %(group)s.") % values,)
    return (gettext("Default price (the charge has no price of its own for %(group)s).") % values,)


def _metric_note(metric: BillableMetric, quantity: Decimal, aggregation: str) -> str:
    """What the metric measured: "API calls: 1,500 (Count of events)"."""
    return gettext("%(metric)s: %(quantity)s (%(aggregation)s)") % {
        "metric": metric.name,
        "quantity": pricing.format_quantity(quantity),
        "aggregation": aggregation,
    }


def _usage_minimum_note(minimum: Decimal | None, amount: Decimal, currency: str) -> str:
    """Why a usage charge has a true-up line: its minimum per period, and what the usage came to."""
    return gettext("Minimum charge per period %(minimum)s; the usage came to %(amount)s.") % {
        "minimum": pricing.format_price(minimum or Decimal(0), currency),
        "amount": pricing.format_price(amount, currency),
    }


def usage_values(
    *, customer: Customer, metric: BillableMetric, start: datetime, end: datetime, group_key: str
) -> list[Decimal]:
    """The amounts of each event in [start, end), oldest first (percentage prices price each one)."""
    values = UsageEvent.objects.filter(
        customer=customer, metric=metric, group_key=group_key, occurred_at__gte=start, occurred_at__lt=end
    ).order_by("occurred_at", "id")
    return [value if value is not None else Decimal(0) for value in values.values_list("value", flat=True)]
