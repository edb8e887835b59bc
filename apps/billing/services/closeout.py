"""Closing out a billing period: what is billed in arrears (usage, and fees set to bill in arrears),
stretch by stretch, each at the prices it was on.

A period is billed in arrears as one or more stretches: the stretches closed by a change made inside
the period (`SubscriptionSegment`: a plan or quantity change made now, a pause), each at the plan,
version and quantity the subscription had then, and the open stretch from the last change to the
period's end, at the prices in force when the period closes. Each stretch's usage is the usage of its
own window, priced by its own version's price (its tiers and included units applied to that usage
alone); each of its fees billed in arrears is the full-period fee × the stretch's exact share of the
period's seconds, rounded once. The closed stretches are billed once, on the subscription's next
invoice (the renewal that closes the period, the invoice made when it resumes, or its final invoice),
as lines naming their own dates. See docs/billing-rules.md, "Changes inside a period".
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from apps.catalog.models import BillableMetric, Plan, PlanVersion
from apps.subscriptions.models import Subscription, SubscriptionSegment
from apps.subscriptions.periods import Period, period_containing

from .lines import LineDraft, arrears_fee_line_drafts, usage_line_drafts


@dataclass(frozen=True)
class Stretch:
    """A part [start, end) of a billing period billed at one plan version and quantity."""

    plan: Plan
    version: PlanVersion
    quantity: int
    start: datetime
    end: datetime
    period: Period  # the whole billing period, whose share the stretch's fees are
    segment_id: int | None = None  # the closed segment it bills (None: the open stretch)


def subscription_open_segments(subscription: Subscription, *, lock: bool = False) -> list[SubscriptionSegment]:
    """The subscription's closed stretches not billed yet, oldest first."""
    segments = SubscriptionSegment.objects.filter(subscription=subscription, billed_at__isnull=True)
    if lock:
        segments = segments.select_for_update(of=("self",))
    return list(
        segments.select_related("plan__product", "plan_version")
        .prefetch_related("plan_version__charges__prices__tiers")
        .order_by("start_at", "id")
    )


def segment_stretches(segments: list[SubscriptionSegment]) -> list[Stretch]:
    return [
        Stretch(
            plan=segment.plan,
            version=segment.plan_version,
            quantity=segment.quantity,
            start=segment.start_at,
            end=segment.end_at,
            period=Period(segment.period_start_at, segment.period_end_at),
            segment_id=segment.pk,
        )  # fmt: skip
        for segment in segments
    ]


def open_stretch(subscription: Subscription, *, end: datetime) -> Stretch | None:
    """The current period's stretch from its last closed segment (or its start) to `end`, at the
    subscription's current plan, version and quantity."""
    last_end = (
        SubscriptionSegment.objects.filter(subscription=subscription, end_at__gt=subscription.current_period_start_at)
        .order_by("-end_at")
        .values_list("end_at", flat=True)
        .first()
    )
    start = max(subscription.current_period_start_at, last_end or subscription.current_period_start_at)
    if end <= start:
        return None
    plan = subscription.plan
    period = period_containing(subscription.billing_anchor_at, plan.interval, plan.interval_count, start)
    return Stretch(
        plan=plan, version=subscription.plan_version, quantity=subscription.quantity, start=start, end=end,
        period=period,
    )  # fmt: skip


def period_stretches(
    subscription: Subscription, *, segments: list[SubscriptionSegment], end: datetime | None
) -> list[Stretch]:
    """The closed segments waiting to be billed, then (`end` given: the current period closes, or the
    subscription ends, at `end`) the open stretch up to `end`."""
    stretches = segment_stretches(segments)
    if end is not None and (tail := open_stretch(subscription, end=end)) is not None:
        stretches.append(tail)
    return stretches


def stretch_line_drafts(
    *,
    subscription: Subscription,
    stretches: list[Stretch],
    currency: str,
    usage_until: datetime | None = None,
    metrics: dict[str, BillableMetric] | None = None,
    totals_by_charge: dict[int, dict[str, Decimal]] | None = None,
    values_by_charge: dict[int, dict[str, list[Decimal]]] | None = None,
) -> list[LineDraft]:
    """For each stretch in order: its fees billed in arrears, then its usage. `usage_until` caps the
    usage windows (the upcoming-invoice preview: usage so far). `metrics`, `totals_by_charge` and
    `values_by_charge` (the billing run's bulk reads) apply to a single open stretch."""
    drafts: list[LineDraft] = []
    for stretch in stretches:
        drafts += arrears_fee_line_drafts(
            plan=stretch.plan, version=stretch.version, quantity=stretch.quantity, currency=currency,
            period=stretch.period, start=stretch.start, end=stretch.end, subscription=subscription,
        )  # fmt: skip
        usage_end = stretch.end if usage_until is None else min(stretch.end, usage_until)
        drafts += usage_line_drafts(
            customer=subscription.customer, plan=stretch.plan, version=stretch.version, currency=currency,
            start=stretch.start, end=usage_end, metrics=metrics,
            totals_by_charge=totals_by_charge if stretch.segment_id is None else None, subscription=subscription,
            values_by_charge=values_by_charge if stretch.segment_id is None else None,
        )  # fmt: skip
    return drafts


def segments_mark_billed(segment_ids: list[int], *, now: datetime) -> None:
    if segment_ids:
        SubscriptionSegment.objects.filter(pk__in=segment_ids, billed_at__isnull=True).update(billed_at=now)
