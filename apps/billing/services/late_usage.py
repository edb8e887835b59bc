"""Usage that changes after its period was invoiced, and usage during a trial: the lines they add to
the subscription's next invoice.

- **Late usage and corrections.** Ingestion accepts an event dated in an invoiced period within the
  metric's lateness window after the period's end, and a void or replace of such an event within the
  same window (apps.usage); each is recorded as a `UsageEventChange` still to bill. The next invoice
  of the subscription prices the period's *full* usage again, at the prices of the charge that billed
  it, and bills the difference from what the invoices already hold for that charge and period (its
  usage and minimum lines, earlier late lines included): one line per charge and period, naming the
  period, "… (late usage, 1–31 Oct)". So tiers apply as if the usage had come on time, a negative
  difference is a credit line, and a change billed once is never billed again: the invoice lines are
  the record of what was billed, and the difference is always taken against them. Interim invoices
  (progressive billing) are not counted: the invoice closing their period bills its full usage and
  deducts them.
- **Settlement per subscription.** A change of the customer's usage can change what several of its
  subscriptions owe (a late session of one SIM moves where the pool of all its SIMs ran out). Each
  subscription takes every change in on its own next invoice — its own difference, or none — and
  records it (`UsageChangeSettlement`); the change is `settled_at` once every subscription it
  concerns has.
- **Trial usage.** The plan's `trial_usage` rule: `billed_after_trial` bills the trial's usage on the
  first invoice after the trial at the plan's prices; `free` shows it on that invoice at zero.

See docs/usage.md, "Late usage, trial usage and corrections".
"""

from collections import defaultdict
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Q, Sum
from django.utils.formats import date_format
from django.utils.translation import gettext, ngettext

from apps.catalog import pricing
from apps.catalog.constants import ChargeKind, TrialUsage
from apps.catalog.models import Charge
from apps.invoices.constants import BillingReason, InvoiceLineKind
from apps.invoices.models import InvoiceLine, UsageChangeSettlement
from apps.invoices.services.lifecycle import bill_language
from apps.subscriptions.constants import SubscriptionStatus
from apps.subscriptions.models import Subscription
from apps.usage.constants import UsageChangeKind
from apps.usage.models import UsageEventChange
from apps.usage.services import InvoicedSpan, usage_billing_lock

from .lines import LineDraft, charge_title, usage_charges, usage_line_description, usage_line_drafts

# The lines that hold what was billed for a usage charge's period.
BILLED_USAGE_KINDS = (InvoiceLineKind.USAGE, InvoiceLineKind.MINIMUM)


def late_usage_line_drafts(
    *, subscription: Subscription, billed_from: datetime, now: datetime, settle: bool = True
) -> list[LineDraft]:
    """The lines the invoice of the period starting at `billed_from` adds for the trial ending then
    and for usage changed in periods already invoiced. With `settle` (the billing run, in its
    transaction, under the customer's usage lock) the changes billed are marked settled; without (a
    preview), nothing is written."""
    if settle:  # in-flight batches land first; later ones see the period closed
        usage_billing_lock(customer_id=subscription.customer_id)
    with bill_language(subscription.customer):
        drafts = _trial_usage_drafts(subscription, billed_from)
        drafts += _late_drafts(subscription, now=now, settle=settle)
    return drafts


# --- trial usage -------------------------------------------------------------------------------------


def _trial_usage_drafts(subscription: Subscription, billed_from: datetime) -> list[LineDraft]:
    """The trial's usage, when the trial ends as this invoice's period begins."""
    if (
        subscription.status != SubscriptionStatus.TRIALING
        or subscription.trial_end_at is None
        or subscription.current_period_end_at != billed_from
        or subscription.trial_end_at > billed_from
    ):
        return []
    start, end = subscription.current_period_start_at, subscription.current_period_end_at
    drafts = usage_line_drafts(
        customer=subscription.customer, plan=subscription.plan, version=subscription.plan_version,
        currency=subscription.currency, start=start, end=end, subscription=subscription,
    )  # fmt: skip
    label = period_label(start, end)
    free = subscription.plan.trial_usage == TrialUsage.FREE
    result = []
    for draft in drafts:
        if free and draft.kind != InvoiceLineKind.USAGE:
            continue  # no minimum is due on free usage
        title = draft.description.removesuffix(usage_line_description(""))
        if free:
            result.append(
                replace(
                    draft,
                    description=gettext("%(title)s (usage during the trial, %(period)s, free)")
                    % {"title": title, "period": label},
                    unit_amount=None,
                    amount=Decimal(0),
                    explanation=(
                        *draft.explanation,
                        gettext("Usage during the trial is free under this plan (at its prices: %(amount)s).")
                        % {"amount": pricing.format_price(draft.amount, draft.currency)},
                    ),
                )
            )
        else:
            result.append(
                replace(
                    draft,
                    description=gettext("%(title)s (usage during the trial, %(period)s)")
                    % {"title": title, "period": label}
                    if draft.kind == InvoiceLineKind.USAGE
                    else draft.description,
                    explanation=(
                        *draft.explanation,
                        gettext("Usage during the trial, billed on the first invoice after it under this plan."),
                    ),
                )
            )
    return result


# --- late usage and corrections ------------------------------------------------------------------------


def _late_drafts(subscription: Subscription, *, now: datetime, settle: bool) -> list[LineDraft]:
    """The difference lines for the changes of the customer's usage that this subscription has not
    taken in yet. Each subscription settles a change on its own (`UsageChangeSettlement`): a late event
    of one SIM can move the point where the pool of all the customer's SIMs ran out, so every member
    of the pool bills its own difference, if any, on its own next invoice. A change dated in a period
    the subscription has not invoiced yet is settled too: that period's invoice bills it on time."""
    waiting = UsageEventChange.objects.filter(
        customer_id=subscription.customer_id, settled_at__isnull=True, billed_period_end_at__isnull=False
    ).exclude(settlements__subscription=subscription)
    if settle:
        waiting = waiting.select_for_update(of=("self",))
    changes = list(waiting.select_related("metric").order_by("id"))
    if not changes:
        return []
    span = InvoicedSpan(
        started_at=subscription.started_at, invoiced_until=subscription.current_period_start_at,
        trial_end_at=subscription.trial_end_at, anchor_at=subscription.billing_anchor_at,
        interval=subscription.plan.interval, interval_count=subscription.plan.interval_count,
    )  # fmt: skip
    # (charge, period start, period end) → the changes in it
    targets: dict[tuple[Charge, datetime, datetime], list[UsageEventChange]] = defaultdict(list)
    if span.invoiced_until > span.started_at:
        billed_lines = _billed_usage_lines(subscription)
        current_charges = {charge.metric_code: charge for charge in usage_charges(subscription.plan_version)}
        for change in changes:
            for moment in _moments(change):
                if not span.started_at <= moment < span.invoiced_until:
                    continue  # a period not invoiced yet (a replaced event's new time, say): billed with it
                target = _billed_period_of(billed_lines, change.metric.code, moment)
                if target is None and change.metric.code in current_charges:
                    # Nothing was billed for that period (no usage then): its period, the current charge.
                    target = (current_charges[change.metric.code], span.period_start(moment), span.period_end(moment))
                if target is not None:
                    targets[target].append(change)

    drafts = []
    for (charge, start, end), period_changes in sorted(targets.items(), key=lambda item: (item[0][1], item[0][0].pk)):
        draft = _delta_draft(subscription, charge, start, end, period_changes)
        if draft is not None:
            drafts.append(draft)
    if settle:
        _settle(subscription, changes, now=now)
    return drafts


def _moments(change: UsageEventChange) -> set[datetime]:
    """When the usage a change touches happened: the event's time, and a replaced event's former one."""
    return {change.occurred_at} | ({change.previous_occurred_at} if change.previous_occurred_at else set())


def _settle(subscription: Subscription, changes: list[UsageEventChange], *, now: datetime) -> None:
    """Record that `subscription` took `changes` in, and mark `settled_at` on those that every
    subscription they concern has now taken in. A constant number of statements however many changes:
    who settled each, and who each concerns (`_concerned_subscription_ids`), are read for all at once."""
    UsageChangeSettlement.objects.bulk_create(
        UsageChangeSettlement(change=change, subscription=subscription, settled_at=now) for change in changes
    )
    settled_by: dict[int, set[int]] = defaultdict(set)
    for change_id, subscription_id in UsageChangeSettlement.objects.filter(change__in=changes).values_list(
        "change_id", "subscription_id"
    ):
        settled_by[change_id].add(subscription_id)
    concerned = _concerned_subscription_ids(subscription.customer_id, changes)
    done = [change.pk for change in changes if concerned[change.pk] <= settled_by[change.pk]]
    if done:
        UsageEventChange.objects.filter(pk__in=done).update(settled_at=now)


def _concerned_subscription_ids(customer_id: int, changes: list[UsageEventChange]) -> dict[int, set[int]]:
    """Per change (by id): the subscriptions of the customer that may owe a difference for it, all of
    which must take it in before it is settled: those still billed (an ended one has no invoice left
    to carry it) that started before the end of the period it changes and bill its metric now, or
    billed a usage line of it for a period containing the change.

    Two statements for all the changes: the still-billed subscriptions billing their metrics, and the
    usage lines of those metrics for periods that may contain one of their moments (per metric, from
    its earliest moment to its latest); each change takes its own from them."""
    concerned: dict[int, set[int]] = {change.pk: set() for change in changes}
    if not changes:
        return concerned
    moments_by_code: dict[str, list[datetime]] = defaultdict(list)
    for change in changes:
        assert change.billed_period_end_at is not None
        moments_by_code[change.metric.code] += sorted(_moments(change))
    still_billed = Subscription.objects.filter(customer_id=customer_id, next_billing_at__isnull=False)
    billing: list[tuple[int, datetime, str]] = list(
        still_billed.filter(
            plan_version__charges__kind=ChargeKind.USAGE, plan_version__charges__metric_code__in=moments_by_code
        )
        .values_list("pk", "started_at", "plan_version__charges__metric_code")
        .distinct()
    )
    ranges = Q()
    for code, moments in moments_by_code.items():
        ranges |= Q(charge__metric_code=code, period_start_at__lte=max(moments), period_end_at__gt=min(moments))
    billed = InvoiceLine.objects.filter(ranges, kind=InvoiceLineKind.USAGE).filter(
        Q(subscription__in=still_billed) | Q(subscription__isnull=True, invoice__subscription__in=still_billed)
    )  # fmt: skip
    lines = list(
        billed.values_list(
            "charge__metric_code", "period_start_at", "period_end_at", "subscription_id", "invoice__subscription_id"
        )
    )
    for change in changes:
        code, ended_at, change_moments = change.metric.code, change.billed_period_end_at, _moments(change)
        assert ended_at is not None
        ids = concerned[change.pk]
        ids.update(pk for pk, started_at, metric_code in billing if metric_code == code and started_at < ended_at)
        for metric_code, start, end, line_subscription_id, invoice_subscription_id in lines:
            if metric_code != code or start is None or end is None:  # (the filter above leaves no empty period)
                continue
            if any(start <= moment < end for moment in change_moments):
                ids.add(line_subscription_id or invoice_subscription_id)
    return concerned


def _billed_usage_lines(subscription: Subscription) -> list[tuple[Charge, datetime, datetime]]:
    """The (charge, period) of every usage line billed to the subscription (its own invoices, or its
    lines on invoices grouping several subscriptions)."""
    rows = (
        InvoiceLine.objects.filter(_of_subscription(subscription), kind=InvoiceLineKind.USAGE, charge__isnull=False)
        .exclude(invoice__billing_reason=BillingReason.SUBSCRIPTION_THRESHOLD)
        .select_related("charge__plan_version__plan__product")
        .order_by("period_start_at", "id")
    )
    seen: dict[tuple[int, datetime, datetime], tuple[Charge, datetime, datetime]] = {}
    for line in rows:
        assert line.charge is not None and line.period_start_at is not None and line.period_end_at is not None
        seen.setdefault(
            (line.charge_id, line.period_start_at, line.period_end_at),
            (line.charge, line.period_start_at, line.period_end_at),
        )
    return list(seen.values())


def _billed_period_of(
    billed: list[tuple[Charge, datetime, datetime]], metric_code: str, moment: datetime
) -> tuple[Charge, datetime, datetime] | None:
    for charge, start, end in billed:
        if charge.metric_code == metric_code and start <= moment < end:
            return charge, start, end
    return None


def _of_subscription(subscription: Subscription) -> Q:
    return Q(subscription=subscription) | Q(subscription__isnull=True, invoice__subscription=subscription)


def _delta_draft(
    subscription: Subscription, charge: Charge, start: datetime, end: datetime, changes: list[UsageEventChange]
) -> LineDraft | None:
    """The difference between the period's full usage priced now and what its invoices billed for the
    charge: the line that makes the period right, or None when nothing changed."""
    currency = subscription.currency
    version = charge.plan_version
    plan = version.plan
    billed = InvoiceLine.objects.filter(
        _of_subscription(subscription), charge=charge, period_start_at=start, period_end_at=end,
        kind__in=BILLED_USAGE_KINDS,
    ).exclude(invoice__billing_reason=BillingReason.SUBSCRIPTION_THRESHOLD)  # fmt: skip
    billed_amount = billed.aggregate(total=Sum("amount"))["total"] or Decimal(0)
    billed_quantity = billed.filter(kind=InvoiceLineKind.USAGE).aggregate(total=Sum("quantity"))["total"] or Decimal(0)
    now_drafts = [
        draft
        for draft in usage_line_drafts(
            customer=subscription.customer,
            plan=plan,
            version=version,
            currency=currency,
            start=start,
            end=end,
            subscription=subscription,
        )
        if draft.charge is not None and draft.charge.pk == charge.pk
    ]
    free_trial = (
        subscription.trial_end_at is not None
        and end <= subscription.trial_end_at
        and plan.trial_usage == TrialUsage.FREE
    )
    now_amount = Decimal(0) if free_trial else sum((draft.amount for draft in now_drafts), Decimal(0))
    now_quantity = sum((draft.quantity for draft in now_drafts if draft.kind == InvoiceLineKind.USAGE), Decimal(0))
    delta_amount = now_amount - Decimal(billed_amount)
    delta_quantity = now_quantity - Decimal(billed_quantity)
    if delta_amount == 0 and delta_quantity == 0:
        return None

    label = period_label(start, end)
    title = charge_title(plan, charge)
    kinds = {change.kind for change in changes}
    if kinds == {UsageChangeKind.LATE}:
        description = gettext("%(title)s (late usage, %(period)s)")
    elif UsageChangeKind.LATE in kinds:
        description = gettext("%(title)s (late usage and corrections, %(period)s)")
    else:
        description = gettext("%(title)s (usage correction, %(period)s)")
    late = sum(1 for change in changes if change.kind == UsageChangeKind.LATE)
    voided = sum(1 for change in changes if change.kind == UsageChangeKind.VOID)
    replaced = sum(1 for change in changes if change.kind == UsageChangeKind.REPLACE)
    what = []
    if late:
        what.append(ngettext("%(count)s event received late", "%(count)s events received late", late) % {"count": late})
    if voided:
        what.append(ngettext("%(count)s event voided", "%(count)s events voided", voided) % {"count": voided})
    if replaced:
        what.append(ngettext("%(count)s event replaced", "%(count)s events replaced", replaced) % {"count": replaced})
    explanation = [
        gettext("Usage of %(period)s changed after it was invoiced: %(what)s.")
        % {"period": label, "what": ", ".join(what)},
        gettext("Quantity for the whole period: %(now)s now, %(billed)s billed before.")
        % {"now": pricing.format_quantity(now_quantity), "billed": pricing.format_quantity(Decimal(billed_quantity))},
    ]
    if free_trial:
        explanation.append(gettext("Usage during the trial is free under this plan."))
    else:
        for draft in now_drafts:
            explanation += list(draft.explanation)
        explanation.append(
            gettext("The whole period at its prices: %(now)s; already billed: %(billed)s; difference: %(delta)s.")
            % {
                "now": pricing.format_price(now_amount, currency),
                "billed": pricing.format_price(Decimal(billed_amount), currency),
                "delta": pricing.format_price(delta_amount, currency),
            }
        )
    return LineDraft(
        kind=InvoiceLineKind.USAGE,
        description=description % {"title": title, "period": label},
        period_start_at=start,
        period_end_at=end,
        quantity=delta_quantity,
        unit_amount=None,
        amount=delta_amount,
        currency=currency,
        explanation=tuple(explanation),
        charge=charge,
        late=True,
    )


def period_label(start: datetime, end: datetime) -> str:
    """A half-open period [start, end) by its days, in UTC: "1–31 Oct", "15 Oct – 14 Nov",
    "15 Dec 2026 – 14 Jan 2027"."""
    last = end - timedelta(microseconds=1)
    if start.year != last.year:
        return f"{date_format(start, 'j M Y')} – {date_format(last, 'j M Y')}"
    if start.month != last.month:
        return f"{date_format(start, 'j M')} – {date_format(last, 'j M')}"
    if start.day == last.day:
        return date_format(start, "j M")
    return f"{start.day}–{date_format(last, 'j M')}"


def late_usage_waiting_subscription_ids(subscriptions: list[Subscription]) -> set[int]:
    """Those of `subscriptions` with usage changes of their customer still to take in: the billing
    run's bulk path leaves them to the one-by-one path, which bills the difference."""
    customer_ids = {subscription.customer_id for subscription in subscriptions}
    waiting: dict[int, set[int]] = defaultdict(set)  # customer → the changes still to settle
    for customer_id, change_id in UsageEventChange.objects.filter(
        customer_id__in=customer_ids, settled_at__isnull=True, billed_period_end_at__isnull=False
    ).values_list("customer_id", "pk"):
        waiting[customer_id].add(change_id)
    if not waiting:
        return set()
    taken_in: dict[int, set[int]] = defaultdict(set)  # subscription → the changes it settled
    for subscription_id, change_id in UsageChangeSettlement.objects.filter(
        change_id__in={change_id for ids in waiting.values() for change_id in ids},
        subscription_id__in=[subscription.pk for subscription in subscriptions],
    ).values_list("subscription_id", "change_id"):
        taken_in[subscription_id].add(change_id)
    return {
        subscription.pk
        for subscription in subscriptions
        if waiting.get(subscription.customer_id, set()) - taken_in[subscription.pk]
    }
