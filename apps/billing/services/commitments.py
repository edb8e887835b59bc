"""A plan's minimum commitment per period: the true-up line on the invoice that closes a period.

The rule (docs/pricing.md, "Minimum commitment"):

- A plan version may commit its subscribers to a minimum per billing period, in each currency it is
  priced in. It is measured when the period closes, on the invoice that bills the period's usage
  (the renewal, or the final invoice when the subscription ends), never during a trial.
- What counts is the period's charges **before tax and before discounts**: its fees (recurring lines
  for the period, wherever they were invoiced, in advance or not), its usage, the charges' own minimum
  true-ups and the prorations of changes inside the period (credits for unused time count as
  negative). Lines of void invoices do not count; credit notes issued afterwards do not change it.
  Discounts are left out on purpose: a coupon lowers what the customer pays, not what they committed
  to; the true-up is then discounted like any other charge on its invoice (Lago's rule: "calculated on
  the pre-tax amount before discounts").
- A period billed in part (the first period of calendar billing, or a subscription ended before the
  period's end) commits to the minimum × the exact share of the period's seconds billed, rounded once
  (the proration rule of fees).
- When the period's charges fall short of the (prorated) minimum, one line of kind `minimum` with no
  charge makes up the difference; it names the period it belongs to and explains the sum.
"""

from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from django.db.models import Q
from django.utils.translation import gettext

from apps.catalog import pricing
from apps.catalog.models import MinimumCommitment, Plan, PlanVersion
from apps.core.money import quantize_fraction
from apps.invoices.constants import BillingReason, InvoiceLineKind, InvoiceStatus
from apps.invoices.models import InvoiceLine
from apps.invoices.services.lifecycle import bill_language
from apps.subscriptions.models import Subscription
from apps.subscriptions.periods import period_containing
from apps.subscriptions.proration import remaining_fraction

from .lines import LineDraft

# The kinds of lines that are the period's charges (discounts and credits from credit notes or
# payments are not).
COMMITTED_KINDS = frozenset(
    {InvoiceLineKind.RECURRING, InvoiceLineKind.USAGE, InvoiceLineKind.MINIMUM, InvoiceLineKind.PRORATION}
)


def commitment_title(plan: Plan) -> str:
    """The true-up line's name, in the active language (the bill's)."""
    return gettext("%(title)s: minimum commitment true-up") % {"title": f"{plan.product.name} — {plan.name}"}


def commitment_true_up_drafts(
    *,
    subscription: Subscription,
    plan: Plan,
    version: PlanVersion,
    currency: str,
    start: datetime,
    end: datetime,
    drafts: list[LineDraft],
) -> list[LineDraft]:
    """The true-up line for the part [start, end) of a billing period that closes now, or none.

    `plan` and `version` are the ones the period was billed on; `drafts` are this subscription's
    lines not stored on an invoice yet that go on the closing invoice (waiting items, the usage
    priced now); lines of the period already on invoices are read here."""
    commitment = _commitment(version, currency)
    if commitment is None or end <= start:
        return []
    period = period_containing(subscription.billing_anchor_at, plan.interval, plan.interval_count, start)
    # The exact share of the period's seconds in [start, end).
    billed = remaining_fraction(period, start) - remaining_fraction(period, min(end, period.end))
    partial = billed < 1
    due = quantize_fraction(Fraction(commitment.amount) * billed, currency) if partial else commitment.amount
    fees, usage = _period_charges(subscription, currency, period.start, period.end, drafts)
    charged = fees + usage
    if charged >= due:
        return []
    true_up = quantize_fraction(Fraction(due - charged), currency)
    with bill_language(subscription.customer):  # written on the customer's bill: in its language
        return [
            LineDraft(
                kind=InvoiceLineKind.MINIMUM,
                description=commitment_title(plan),
                period_start_at=start,
                period_end_at=end,
                quantity=Decimal(1),
                unit_amount=true_up,
                amount=true_up,
                currency=currency,
                explanation=_true_up_explanation(
                    minimum=commitment.amount,
                    billed=billed,
                    due=due,
                    fees=fees,
                    usage=usage,
                    true_up=true_up,
                    currency=currency,
                ),
            )
        ]


def _true_up_explanation(
    *, minimum: Decimal, billed: Fraction, due: Decimal, fees: Decimal, usage: Decimal, true_up: Decimal, currency: str
) -> tuple[str, ...]:
    """The minimum (× the share of the period billed), the period's charges, and the difference."""
    charged = fees + usage
    hundredths = billed.numerator * 10_000 // billed.denominator  # display only; the amount is exact
    values = {
        "minimum": pricing.format_price(minimum, currency),
        "share": f"{hundredths // 100}.{hundredths % 100:02d} %",
        "numerator": f"{billed.numerator:,}",
        "denominator": f"{billed.denominator:,}",
        "due": pricing.format_price(due, currency),
        "charged": pricing.format_price(charged, currency),
        "fees": pricing.format_price(fees, currency),
        "usage": pricing.format_price(usage, currency),
        "true_up": pricing.format_price(true_up, currency),
    }
    if billed < 1:
        minimum_text = gettext(
            "Minimum commitment per period: %(minimum)s × %(share)s of the period billed "
            "(%(numerator)s/%(denominator)s of its seconds) = %(due)s."
        )
    else:
        minimum_text = gettext("Minimum commitment per period: %(minimum)s.")
    return (
        minimum_text % values,
        gettext("The period's charges before tax and discounts: %(charged)s (fees %(fees)s, usage %(usage)s).")
        % values,
        gettext("True-up: %(due)s − %(charged)s = %(true_up)s.") % values,
    )


def _commitment(version: PlanVersion, currency: str) -> MinimumCommitment | None:
    if "minimum_commitments" in getattr(version, "_prefetched_objects_cache", {}):
        return version.minimum_commitment_for(currency)
    return MinimumCommitment.objects.filter(plan_version=version, currency=currency).first()


def _within(draft_start: datetime | None, draft_end: datetime | None, start: datetime, end: datetime) -> bool:
    return draft_start is not None and draft_end is not None and start <= draft_start and draft_end <= end


def _is_commitment_line(kind: str, charge_id: int | None) -> bool:
    return kind == InvoiceLineKind.MINIMUM and charge_id is None


def _period_charges(
    subscription: Subscription, currency: str, start: datetime, end: datetime, drafts: list[LineDraft]
) -> tuple[Decimal, Decimal]:
    """(fees, usage) of the period [start, end): every line of the subscription whose service period
    lies within it, on its non-void invoices, waiting for one, or about to go on one (`drafts`).
    Fees include prorations and the charges' minimum true-ups."""
    fees, usage = Decimal(0), Decimal(0)
    stored = (
        InvoiceLine.objects.filter(
            Q(invoice__subscription=subscription, subscription__isnull=True) | Q(subscription=subscription),
            kind__in=COMMITTED_KINDS,
            amount_currency=currency,
            period_start_at__gte=start,
            period_end_at__lte=end,
        )
        .exclude(invoice__status=InvoiceStatus.VOID)
        # Interim invoices (progressive billing) bill usage the period's final invoice bills in full again
        # and deducts: counted once, there.
        .exclude(invoice__billing_reason=BillingReason.SUBSCRIPTION_THRESHOLD)
        .values_list("kind", "charge_id", "amount")
    )
    pending = [
        (draft.kind, draft.charge.pk if draft.charge is not None else None, draft.amount)
        for draft in drafts
        if draft.currency == currency and _within(draft.period_start_at, draft.period_end_at, start, end)
    ]
    rows = [*stored, *pending]
    for kind, charge_id, amount in rows:
        if kind not in COMMITTED_KINDS or _is_commitment_line(kind, charge_id):
            continue
        if kind == InvoiceLineKind.USAGE:
            usage += amount
        else:
            fees += amount
    return fees, usage
