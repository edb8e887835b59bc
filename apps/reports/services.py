"""Keeping the summary tables of the finance reports up to date (see docs/reports.md).

`reports_refresh` is the one entry point: Celery beat runs it every few minutes, the end of every
billing run queues it, and `manage.py reports_rebuild` runs it with `full=True`. An incremental
refresh re-derives only what changed since the previous one: the MRR history of the subscriptions
whose rows, events or discounts changed, and revenue and cash from the earliest month touched by an
invoice or credit note written since.
"""

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, DateTimeField, F, Min, Q, Sum
from django.db.models.functions import Coalesce, TruncMonth
from django.utils import timezone

from apps.billing.services.lines import charge_quote, recurring_charges
from apps.catalog.models import Plan, PlanVersion
from apps.core import clock
from apps.invoices.constants import CreditNoteLineKind, CreditNoteStatus, InvoiceLineKind
from apps.invoices.models import CreditNote, CreditNoteLine, Invoice, InvoiceLine
from apps.invoices.selectors import invoices_with_amount_due
from apps.payments.constants import PaymentStatus, RefundStatus
from apps.payments.models import Payment, Refund
from apps.subscriptions.constants import SubscriptionEventType, SubscriptionStatus
from apps.subscriptions.models import Discount, Subscription, SubscriptionEvent, SubscriptionPriceOverride
from apps.subscriptions.periods import boundary
from apps.wallets.constants import WalletEntryKind
from apps.wallets.models import WalletEntry

from . import metrics
from .constants import ISSUED_STATUSES, RECEIVABLE_STATUSES, ReportScope
from .history import BilledState, StateChange, Window, mrr_stretches
from .models import CashMonth, MrrMonth, MrrSegment, ReceivablesAging, ReportRefresh, RevenueMonth

logger = logging.getLogger(__name__)

SEGMENT_BATCH = 2000
# Row writes happen wall-clock seconds apart from the refresh that reads them: look back a little.
WATERMARK_OVERLAP = timedelta(minutes=2)
ADVISORY_LOCK_KEY = 7_302_113  # any constant unique to this lock


# --- Segments: each subscription's MRR history --------------------------------------------------


class _Catalog:
    """Plans and versions loaded once per refresh, and each (version, quantity, currency)'s recurring
    fee per interval priced once (with the billing run's own pricing)."""

    def __init__(self) -> None:
        self.plans = {plan.pk: plan for plan in Plan.objects.all()}
        self.plan_by_code = {plan.code: plan for plan in self.plans.values()}
        self.versions: dict[int, PlanVersion] = {}
        self.version_by_number: dict[tuple[int, int], int] = {}
        for version in PlanVersion.objects.prefetch_related("charges__prices__tiers"):
            self.versions[version.pk] = version
            self.version_by_number[(version.plan_id, version.number)] = version.pk
        self.charges = {charge.pk: charge for version in self.versions.values() for charge in version.charges.all()}
        self._fees: dict[tuple[Any, ...], Decimal] = {}

    def period_fee(self, state: BilledState, currency: str, custom_prices: Iterable["_CustomPrice"] = ()) -> Decimal:
        """The recurring fee of one interval at `state`, each charge at the subscription's custom price
        for it when one is in force (`custom_prices`; those of other versions' charges do not apply),
        else at the plan's price — as the billing run prices it (`charge_price`)."""
        charges = recurring_charges(self.versions[state.version_id])
        in_force = [
            custom
            for custom in custom_prices
            if custom.override.currency == currency and any(charge.pk == custom.charge_id for charge in charges)
        ]
        overrides = {custom.charge_id: custom.override for custom in in_force}
        key = (state.version_id, state.quantity, currency, tuple(sorted(custom.source for custom in in_force)))
        if key not in self._fees:
            total = Decimal(0)
            for charge in charges:
                quote, _ = charge_quote(charge, currency=currency, quantity=state.quantity, overrides=overrides)
                total += quote.total
            self._fees[key] = total
        return self._fees[key]


def _replayed_changes(subscription: Subscription, events: list[SubscriptionEvent], catalog: _Catalog):
    """The initial billed state and the changes, replayed from the subscription's events. A
    subscription without a creation event (imported rows) is taken as it is now, all along."""
    current = BilledState(subscription.plan_id, subscription.plan_version_id, subscription.quantity)
    created = next((event for event in events if event.type == SubscriptionEventType.CREATED), None)
    initial = _state_from(created.data, catalog) if created is not None else None
    if initial is None:
        return current, []
    changes: list[StateChange] = []
    state = initial
    for event in events:
        if event.type == SubscriptionEventType.CHANGED:
            new_state = _state_from(event.data.get("to", {}), catalog)
            effective = event.data.get("effective_at")
            at = datetime.fromisoformat(effective) if effective else event.occurred_at
        elif event.type == SubscriptionEventType.VERSION_MIGRATED:
            version_id = catalog.version_by_number.get((state.plan_id, event.data.get("to_version")))
            new_state = BilledState(state.plan_id, version_id, state.quantity) if version_id else None
            at = event.occurred_at
        else:
            continue
        if new_state is None:  # a plan or version since deleted: keep what we know
            continue
        changes.append(StateChange(at=at, state=new_state))
        state = new_state
    if state != current:
        # Something changed the subscription without an event: trust the row from its last write on.
        changes.append(StateChange(at=subscription.updated_at, state=current))
    return initial, changes


def _state_from(data: dict[str, Any], catalog: _Catalog) -> BilledState | None:
    plan = catalog.plan_by_code.get(data.get("plan", ""))
    if plan is None:
        return None
    version_id = catalog.version_by_number.get((plan.pk, data.get("version")))
    quantity = data.get("quantity")
    if version_id is None or not isinstance(quantity, int):
        return None
    return BilledState(plan.pk, version_id, quantity)


def _pauses(events: list[SubscriptionEvent]) -> list[Window]:
    windows: list[Window] = []
    paused_at: datetime | None = None
    for event in events:
        if event.type == SubscriptionEventType.PAUSED:
            paused_at = event.occurred_at
        elif event.type == SubscriptionEventType.RESUMED and paused_at is not None:
            windows.append(Window(paused_at, event.occurred_at))
            paused_at = None
    if paused_at is not None:
        windows.append(Window(paused_at, None))
    return windows


def _discount_windows(subscription: Subscription, discounts: list[Discount]) -> list[Window]:
    """Recurring discounts (forever, repeating) in force on the subscription, oldest first. A repeating
    discount ends when its last invoice is billed; that invoice covers one more interval in advance."""
    plan = subscription.plan
    windows = []
    for discount in sorted(discounts, key=lambda d: (d.starts_at, d.pk)):
        coupon = discount.coupon
        if coupon.duration == "once":
            continue
        end = discount.ended_at
        if end is not None and coupon.duration == "repeating":
            end = boundary(end, plan.interval, plan.interval_count, 1)
        amount_row = coupon.amount_for(subscription.currency)
        terms = metrics.DiscountTerms(
            discount_type=coupon.discount_type,
            percent_off=coupon.percent_off,
            amount_off=amount_row.amount_off if amount_row is not None else None,
            applies=coupon.applies_to_product(plan.product_id),
        )
        windows.append(Window(discount.starts_at, end, key=terms))
    return windows


@dataclass(frozen=True)
class _CustomPrice:
    """A custom price of one charge as it was in force for a while: the price a `price_override_set`
    event recorded (`source` ("event", its id)), or the subscription's current row (("row", its id))."""

    charge_id: int
    source: tuple[str, int]
    override: SubscriptionPriceOverride = field(compare=False, hash=False)


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _recorded_price(event: SubscriptionEvent, charge_id: int, catalog: _Catalog) -> _CustomPrice | None:
    """The custom price a `price_override_set` event recorded (its `price_fields`), as an unsaved row
    to price with; None for events recorded before the price itself was (only its description)."""
    fields = event.data.get("price_fields")
    charge = catalog.charges.get(charge_id)
    if not isinstance(fields, dict) or charge is None:
        return None
    override = SubscriptionPriceOverride(
        subscription_id=event.subscription_id,
        charge=charge,
        currency=fields.get("currency", ""),
        amount=_decimal(fields.get("amount")) or Decimal(0),
        tiers=fields.get("tiers") or [],
        package_size=int(fields.get("package_size") or 1),
        package_rounding=fields.get("package_rounding") or "up",
        included_units=_decimal(fields.get("included_units")) or Decimal(0),
        percentage=_decimal(fields.get("percentage")) or Decimal(0),
        fixed_fee=_decimal(fields.get("fixed_fee")) or Decimal(0),
        min_per_transaction=_decimal(fields.get("min_per_transaction")),
        max_per_transaction=_decimal(fields.get("max_per_transaction")),
        minimum_amount=_decimal(fields.get("minimum_amount")),
    )
    return _CustomPrice(charge_id, ("event", event.pk), override)


def _custom_price_windows(
    subscription: Subscription, events: list[SubscriptionEvent], catalog: _Catalog
) -> list[Window]:
    """The subscription's custom prices (`SubscriptionPriceOverride`) over time, charge by charge: each
    `price_override_set` event starts the price it recorded, in force until the charge's next set or
    `price_override_removed` event. So a custom price since replaced is replayed for the time it was
    in force. A set event recorded before events carried the price (only its description) is replayed
    from the subscription's current row when it is the charge's last one; an earlier such price is
    not known, and that time is valued at the plan's price. A row without any set event (imported)
    counts from its creation (docs/reports.md)."""
    rows = {override.charge_id: override for override in subscription.price_overrides.all()}
    history: dict[int, list[SubscriptionEvent]] = defaultdict(list)
    for event in events:
        charge_id = event.data.get("charge_id")
        kinds = (SubscriptionEventType.PRICE_OVERRIDE_SET, SubscriptionEventType.PRICE_OVERRIDE_REMOVED)
        if event.type in kinds and isinstance(charge_id, int):
            history[charge_id].append(event)
    windows = []
    for charge_id in sorted(set(history) | set(rows)):
        charge_events = history.get(charge_id, [])
        row = rows.get(charge_id)
        current = _CustomPrice(charge_id, ("row", row.pk), row) if row is not None else None
        sets = [event for event in charge_events if event.type == SubscriptionEventType.PRICE_OVERRIDE_SET]
        if not sets and current is not None:
            windows.append(Window(row.created_at, None, key=current))  # type: ignore[union-attr]
        for index, event in enumerate(charge_events):
            if event.type != SubscriptionEventType.PRICE_OVERRIDE_SET:
                continue
            end = charge_events[index + 1].occurred_at if index + 1 < len(charge_events) else None
            price = _recorded_price(event, charge_id, catalog)
            if price is None and end is None:
                price = current  # the last one set: the row holds its price
            if price is not None:
                windows.append(Window(event.occurred_at, end, key=price))
    return windows


def subscription_segments(
    subscription: Subscription, *, events: list[SubscriptionEvent], discounts: list[Discount], catalog: _Catalog
) -> list[MrrSegment]:
    """The MRR segments of one subscription (unsaved): from the end of its trial (or its start) to its
    end, outside pauses, at the plan, quantity and recurring discounts in force."""
    if subscription.status == SubscriptionStatus.INCOMPLETE:
        return []
    begins_at = max(subscription.started_at, subscription.trial_end_at or subscription.started_at)
    ends_at = subscription.ended_at
    if subscription.status == SubscriptionStatus.CANCELED and ends_at is None:
        ends_at = subscription.canceled_at or subscription.updated_at
    initial, changes = _replayed_changes(subscription, events, catalog)
    stretches = mrr_stretches(
        begins_at=begins_at,
        ends_at=ends_at,
        initial=initial,
        changes=changes,
        pauses=_pauses(events),
        discounts=_discount_windows(subscription, discounts),
        custom_prices=_custom_price_windows(subscription, events, catalog),
    )
    segments: list[MrrSegment] = []
    currency = subscription.currency
    for stretch in stretches:
        plan = catalog.plans[stretch.state.plan_id]
        fee = catalog.period_fee(stretch.state, currency, stretch.custom_price_keys)  # type: ignore[arg-type]
        net = metrics.discounted_period_amount(fee, stretch.discount_keys, currency=currency)  # type: ignore[arg-type]
        mrr = metrics.monthly_amount(net, interval=plan.interval, interval_count=plan.interval_count, currency=currency)
        last = segments[-1] if segments else None
        if last is not None and last.valid_to == stretch.start and (last.plan_id, last.mrr) == (plan.pk, mrr):
            last.valid_to = stretch.end
            continue
        segments.append(
            MrrSegment(
                subscription_id=subscription.pk,
                customer_id=subscription.customer_id,
                currency=currency,
                product_id=plan.product_id,
                plan_id=plan.pk,
                mrr=mrr,
                valid_from=stretch.start,
                valid_to=stretch.end,
            )
        )
    return [segment for segment in segments if segment.mrr > 0]


def _reportable_subscriptions():
    """Subscriptions of customers on the real clock (test clocks are simulations, left out)."""
    return Subscription.objects.filter(customer__test_clock__isnull=True)


def segments_rebuild(*, subscription_ids: Iterable[int] | None = None) -> int:
    """Re-derive the segments of these subscriptions (all when None); returns how many were looked at."""
    catalog = _Catalog()
    if subscription_ids is None:
        MrrSegment.objects.all().delete()
        ids: list[int] = list(_reportable_subscriptions().order_by("pk").values_list("pk", flat=True))
    else:
        ids = sorted(set(subscription_ids))
    done = 0
    for start in range(0, len(ids), SEGMENT_BATCH):
        batch = ids[start : start + SEGMENT_BATCH]
        subscriptions = list(
            _reportable_subscriptions()
            .filter(pk__in=batch)
            .select_related("plan")
            .prefetch_related("price_overrides")
            .order_by("pk")
        )
        events: dict[int, list[SubscriptionEvent]] = defaultdict(list)
        for event in SubscriptionEvent.objects.filter(subscription_id__in=batch).order_by("occurred_at", "id"):
            events[event.subscription_id].append(event)
        customer_ids = {subscription.customer_id for subscription in subscriptions}
        discounts_by_subscription: dict[int, list[Discount]] = defaultdict(list)
        discounts_by_customer: dict[int, list[Discount]] = defaultdict(list)
        for discount in (
            Discount.objects.filter(Q(subscription_id__in=batch) | Q(customer_id__in=customer_ids))
            .select_related("coupon")
            .prefetch_related("coupon__products", "coupon__amounts")
        ):
            if discount.subscription_id is not None:
                discounts_by_subscription[discount.subscription_id].append(discount)
            else:
                discounts_by_customer[discount.customer_id].append(discount)  # type: ignore[index]
        rows: list[MrrSegment] = []
        for subscription in subscriptions:
            rows.extend(
                subscription_segments(
                    subscription,
                    events=events[subscription.pk],
                    discounts=discounts_by_subscription[subscription.pk]
                    + discounts_by_customer[subscription.customer_id],
                    catalog=catalog,
                )
            )
        with transaction.atomic():
            if subscription_ids is not None:
                MrrSegment.objects.filter(subscription_id__in=batch).delete()
            MrrSegment.objects.bulk_create(rows, batch_size=2000)
        done += len(batch)
    return done


# --- MRR per month, with movements --------------------------------------------------------------


@dataclass(frozen=True)
class _SegmentRow:
    customer_id: int
    currency: str
    product_id: int
    plan_id: int
    mrr: Decimal
    first_month: date
    last_month: date  # the last month at whose end the segment is in force


def _segment_rows(as_of: datetime) -> Iterator[list[_SegmentRow]]:
    """The segments in force at some month end up to now, customer by customer."""
    current_month = metrics.month_of(as_of)
    rows = (
        MrrSegment.objects.filter(valid_from__lte=as_of)
        .order_by("customer_id")
        .values_list("customer_id", "currency", "product_id", "plan_id", "mrr", "valid_from", "valid_to")
    )
    batch: list[_SegmentRow] = []
    for customer_id, currency, product_id, plan_id, mrr, valid_from, valid_to in rows.iterator(chunk_size=5000):
        if batch and batch[0].customer_id != customer_id:
            yield batch
            batch = []
        if valid_to is None or valid_to > as_of:
            last = current_month  # in force now: counts for the month so far
        else:
            last = metrics.previous_month(metrics.month_of(valid_to))
        first = metrics.month_of(valid_from)
        if last < first:
            continue  # began and ended within one month: never in force at a month end
        batch.append(_SegmentRow(customer_id, currency, product_id, plan_id, Decimal(mrr), first, last))
    if batch:
        yield batch


def _month_index(month: date) -> int:
    return month.year * 12 + month.month - 1


def _month_at(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)


def mrr_months_rebuild(*, as_of: datetime) -> int:
    """Recompute every `MrrMonth` row from the segments; returns the number of rows written.

    Each customer's MRR in a scope is constant between the months where one of its segments begins
    or ends, so only those months are looked at: there the customer's movement is classified, and
    the change of its MRR (and of whether it has any) is added to the scope's running totals."""
    current = _month_index(metrics.month_of(as_of))
    moves: dict[tuple[str, int, str, int], metrics.Movements] = defaultdict(metrics.Movements)
    deltas: dict[tuple[str, int, str], dict[int, list]] = defaultdict(lambda: defaultdict(lambda: [Decimal(0), 0]))
    first_of_scope: dict[tuple[str, int, str], int] = {}
    for customer_rows in _segment_rows(as_of):
        changes: dict[tuple[str, int, str], dict[int, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        for row in customer_rows:
            first, after_last = _month_index(row.first_month), _month_index(row.last_month) + 1
            for key in (
                (ReportScope.ALL, 0, row.currency),
                (ReportScope.PRODUCT, row.product_id, row.currency),
                (ReportScope.PLAN, row.plan_id, row.currency),
            ):
                by_month = changes[key]
                by_month[first] += row.mrr
                if after_last <= current:
                    by_month[after_last] -= row.mrr
        for key, by_month in changes.items():
            value, seen = Decimal(0), False
            first_of_scope[key] = min(first_of_scope.get(key, current), min(by_month))
            running = deltas[key]
            for index in sorted(by_month):
                new = value + by_month[index]
                if new == value:
                    continue
                moves[(*key, index)].add(value, new, seen_before=seen)
                running[index][0] += new - value
                running[index][1] += (new > 0) - (value > 0)
                seen = seen or new > 0
                value = new
    rows = []
    for key, first in first_of_scope.items():
        scope, scope_id, currency = key
        mrr, customers = Decimal(0), 0
        running = deltas[key]
        for index in range(first, current + 1):
            start_mrr, start_customers = mrr, customers
            if index in running:
                mrr += running[index][0]
                customers += running[index][1]
            moved = moves.get((*key, index)) or metrics.Movements()
            rows.append(
                MrrMonth(
                    month=_month_at(index),
                    currency=currency,
                    scope=scope,
                    scope_id=scope_id,
                    mrr=mrr,
                    customers=customers,
                    start_mrr=start_mrr,
                    start_customers=start_customers,
                    new_mrr=moved.new,
                    expansion_mrr=moved.expansion,
                    contraction_mrr=moved.contraction,
                    churned_mrr=moved.churn,
                    reactivation_mrr=moved.reactivation,
                    new_customers=moved.new_customers,
                    churned_customers=moved.churned_customers,
                    reactivated_customers=moved.reactivated_customers,
                )  # fmt: skip
            )
    with transaction.atomic():
        MrrMonth.objects.all().delete()
        MrrMonth.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


# --- Revenue recognition ------------------------------------------------------------------------


def _issued_invoices():
    return Invoice.objects.filter(status__in=ISSUED_STATUSES, customer__test_clock__isnull=True)


# Balance settlements, not revenue: a credit note's credit (already taken off revenue by the credit
# note itself), a payment's credit (money received in advance) or an invoice's credit (already taken
# off revenue by the lines of the invoice that came to below zero) applied on a later invoice.
# Prepaid credits (apps.wallets) are settlements too: credits bought are money received in advance
# (deferred until consumed, `_purchased_credits_by_month`; then the lines of the invoices they pay are
# the revenue), so neither the purchase line nor the credits line is revenue; granted credits are a
# discount, taken off revenue separately below (`_granted_credits_rows`).
SETTLEMENT_LINE_KINDS = (
    InvoiceLineKind.CREDIT_NOTE,
    InvoiceLineKind.PAYMENT_CREDIT,
    InvoiceLineKind.INVOICE_CREDIT,
    InvoiceLineKind.PREPAID_CREDITS,
    InvoiceLineKind.CREDIT_PURCHASE,
)


def _granted_credits_rows(since: datetime | None):
    """Granted (free) credits consumed by issued invoices: a discount, taken off revenue in the month
    the invoice was issued, like a discount line without a service period. (amount, currency, month
    of issue, plan of the invoice's subscription); amounts are negative."""
    granted = Q(lot__kind=WalletEntryKind.GRANT) | Q(
        lot__kind=WalletEntryKind.RETURN, lot__returned_from__kind=WalletEntryKind.GRANT
    )
    entries = WalletEntry.objects.filter(granted, kind=WalletEntryKind.CONSUMPTION, invoice__in=_issued_invoices())
    if since is not None:
        entries = entries.filter(invoice__issued_at__gte=since)
    return entries.annotate(issued_month=TruncMonth("invoice__issued_at", tzinfo=UTC)).values_list(
        "amount", "amount_currency", "issued_month", "invoice__subscription__plan_id"
    )


def _granted_credits_returned_rows(since: datetime | None):
    """Granted credits that a credit note gave back to the wallet: the discount they were is undone
    in the month of the credit note (the credit note takes the invoice's charges off revenue in
    full). (amount, currency, month, plan of the invoice's subscription); amounts are positive."""
    entries = WalletEntry.objects.filter(
        kind=WalletEntryKind.RETURN, returned_from__kind=WalletEntryKind.GRANT,
        credit_note__status=CreditNoteStatus.ISSUED, invoice__in=_issued_invoices(),
    )  # fmt: skip
    if since is not None:
        entries = entries.filter(occurred_at__gte=since)
    return entries.annotate(month=TruncMonth("occurred_at", tzinfo=UTC)).values_list(
        "amount", "amount_currency", "month", "invoice__subscription__plan_id"
    )


def _issued_credit_note_lines():
    """What issued credit notes take off revenue: the invoice lines they credit, the plain amounts, and
    the share of the invoice's discounts they give back (negative); not the share of the balance
    credit applied on the invoice, a settlement like the balance credit itself."""
    return CreditNoteLine.objects.filter(
        credit_note__status=CreditNoteStatus.ISSUED,
        credit_note__invoice__in=_issued_invoices(),
    ).exclude(kind=CreditNoteLineKind.BALANCE_SHARE)


def _recognize(
    sums: dict[tuple[date, str, int | None], list[Decimal]],
    amount: Decimal,
    *,
    currency: str,
    start_at: datetime | None,
    end_at: datetime | None,
    issued_month: date,
    plan_id: int | None,
    count: int,
    current_month: date,
    from_month: date | None,
    catch_up: bool,
) -> None:
    """Add one line's recognized and deferred amounts (times `count` identical lines) to `sums`.
    `catch_up`: what the schedule puts before the month of issue is recognized in that month (a
    credit note changes no month before its own)."""
    schedule = metrics.recognition_schedule(
        amount, currency=currency, start_at=start_at, end_at=end_at, issued_at=metrics.month_start_at(issued_month)
    ).recognized
    if catch_up and min(schedule) < issued_month:
        caught_up = sum((value for month, value in schedule.items() if month <= issued_month), Decimal(0))
        later = {month: value for month, value in schedule.items() if month > issued_month}
        schedule = {issued_month: caught_up} | later
    months = sorted(schedule)
    recognized_so_far = Decimal(0)
    for month in months:
        recognized_so_far += schedule[month]
        if month > current_month:
            break
        if (from_month is None or month >= from_month) and schedule[month]:
            sums[(month, currency, plan_id)][0] += schedule[month] * count
        if month >= issued_month and (from_month is None or month >= from_month):
            left = amount - recognized_so_far
            if left:
                sums[(month, currency, plan_id)][1] += left * count
    # Issued before the service began: deferred in full at the end of the months in between.
    for month in metrics.months_between(issued_month, min(metrics.previous_month(months[0]), current_month)):
        if from_month is None or month >= from_month:
            sums[(month, currency, plan_id)][1] += amount * count


def _purchased_credits_by_month(*, from_month: date | None, current_month: date) -> Iterator[tuple]:
    """Credits bought (apps.wallets), as (month, currency, recognized, deferred at month end): what was
    paid for them is deferred from the month the purchase invoice was paid until they are consumed
    (then the lines of the invoice they pay are the revenue) or voided; credits bought that expire
    unused are recognized in the month they expire (breakage)."""
    real = WalletEntry.objects.filter(wallet__customer__test_clock__isnull=True)
    fields = ("kind", "amount", "amount_currency", "occurred_at")
    # Credits bought that a credit note or a void gave back are deferred again (a return lot).
    bought_lot = Q(kind=WalletEntryKind.PURCHASE) | Q(
        kind=WalletEntryKind.RETURN, returned_from__kind=WalletEntryKind.PURCHASE
    )
    bought_draw = Q(lot__kind=WalletEntryKind.PURCHASE) | Q(
        lot__kind=WalletEntryKind.RETURN, lot__returned_from__kind=WalletEntryKind.PURCHASE
    )
    lots = real.filter(bought_lot).values_list(*fields)
    draws = real.filter(bought_draw).values_list(*fields)
    by_currency: dict[str, list[tuple[date, str, Decimal]]] = defaultdict(list)
    for kind, amount, currency, occurred_at in sorted([*lots, *draws], key=lambda row: row[3]):
        by_currency[currency].append((metrics.month_of(occurred_at), kind, Decimal(amount)))
    for currency, moves in by_currency.items():
        balance = Decimal(0)
        index = 0
        for month in metrics.months_between(moves[0][0], current_month):
            breakage = Decimal(0)
            while index < len(moves) and moves[index][0] == month:
                _, kind, amount = moves[index]
                balance += amount
                if kind == WalletEntryKind.EXPIRY:
                    breakage -= amount
                index += 1
            if (from_month is None or month >= from_month) and (balance or breakage):
                yield month, currency, breakage, balance


def revenue_months_rebuild(*, from_month: date | None, as_of: datetime) -> int:
    """Recompute recognized and deferred revenue for every month from `from_month` (all when None) to
    the current one, line by line (see `metrics.recognition_schedule`), less what credit notes credit
    (over the rest of the credited line's service period, what fell before the credit note's month
    caught up in that month)."""
    current_month = metrics.month_of(as_of)
    plans = {plan.pk: plan.product_id for plan in Plan.objects.all()}
    lines = InvoiceLine.objects.filter(invoice__in=_issued_invoices()).exclude(kind__in=SETTLEMENT_LINE_KINDS)
    credits = _issued_credit_note_lines()
    if from_month is not None:
        since = metrics.month_start_at(from_month)
        lines = lines.filter(Q(period_end_at__gt=since) | Q(period_end_at__isnull=True, invoice__issued_at__gte=since))
        credits = credits.filter(Q(invoice_line__period_end_at__gt=since) | Q(credit_note__issued_at__gte=since))
    # Identical lines (same amount, period, plan and month of issue: every subscription of a plan
    # renewing on the same day) are counted once, times their number.
    groups = (
        lines.annotate(issued_month=TruncMonth("invoice__issued_at", tzinfo=UTC))
        .values(
            "amount", "amount_currency", "period_start_at", "period_end_at", "issued_month",
            "charge__plan_version__plan_id", "subscription__plan_id", "invoice__subscription__plan_id",
        )
        .annotate(count=Count("id"))
        .values_list(
            "amount", "amount_currency", "period_start_at", "period_end_at", "issued_month",
            "charge__plan_version__plan_id", "subscription__plan_id", "invoice__subscription__plan_id", "count",
        )
        .order_by()
    )  # fmt: skip
    credit_rows = credits.annotate(issued_month=TruncMonth("credit_note__issued_at", tzinfo=UTC)).values_list(
        "amount", "amount_currency", "invoice_line__period_start_at", "invoice_line__period_end_at", "issued_month",
        "invoice_line__charge__plan_version__plan_id", "invoice_line__subscription__plan_id",
        "credit_note__invoice__subscription__plan_id",
    )  # fmt: skip
    sums: dict[tuple[date, str, int | None], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    since = metrics.month_start_at(from_month) if from_month is not None else None
    for month, currency, breakage, deferred in _purchased_credits_by_month(
        from_month=from_month, current_month=current_month
    ):
        sums[(month, currency, None)][0] += breakage
        sums[(month, currency, None)][1] += deferred
    granted = [
        *_granted_credits_rows(since).iterator(chunk_size=10_000),
        *_granted_credits_returned_rows(since).iterator(chunk_size=10_000),
    ]
    for amount, currency, issued_at, invoice_plan in granted:
        if amount:
            _recognize(
                sums, Decimal(amount), currency=currency, start_at=None, end_at=None,
                issued_month=metrics.month_of(issued_at), plan_id=invoice_plan, count=1,
                current_month=current_month, from_month=from_month, catch_up=False,
            )  # fmt: skip
    for amount, currency, start_at, end_at, issued_at, charge_plan, line_plan, invoice_plan, count in groups.iterator(
        chunk_size=10_000
    ):
        amount = Decimal(amount)
        if amount:
            _recognize(
                sums, amount, currency=currency, start_at=start_at, end_at=end_at,
                issued_month=metrics.month_of(issued_at), plan_id=charge_plan or line_plan or invoice_plan,
                count=count, current_month=current_month, from_month=from_month, catch_up=False,
            )  # fmt: skip
    for amount, currency, start_at, end_at, issued_at, charge_plan, line_plan, invoice_plan in credit_rows.iterator(
        chunk_size=10_000
    ):
        amount = -Decimal(amount)
        if amount:
            _recognize(
                sums, amount, currency=currency, start_at=start_at, end_at=end_at,
                issued_month=metrics.month_of(issued_at), plan_id=charge_plan or line_plan or invoice_plan,
                count=1, current_month=current_month, from_month=from_month, catch_up=True,
            )  # fmt: skip
    rows = [
        RevenueMonth(
            month=month,
            currency=currency,
            plan_id=plan_id,
            product_id=plans.get(plan_id) if plan_id else None,
            recognized=recognized,
            deferred=deferred,
        )
        for (month, currency, plan_id), (recognized, deferred) in sums.items()
    ]
    with transaction.atomic():
        stale = RevenueMonth.objects.all()
        if from_month is not None:
            stale = stale.filter(month__gte=from_month)
        stale.delete()
        RevenueMonth.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


# --- Invoiced, credited, collected --------------------------------------------------------------


def _by_month(queryset, moment_field: str, amount_field: str) -> dict[tuple[date, str], tuple[Decimal, int]]:
    """Sum `amount_field` per month of `moment_field` (UTC) and currency, in the database."""
    rows = (
        queryset.annotate(month=TruncMonth(moment_field, tzinfo=UTC, output_field=DateTimeField()))
        .values("month", f"{amount_field}_currency")
        .annotate(total=Sum(amount_field), count=Count("id"))
        .values_list("month", f"{amount_field}_currency", "total", "count")
        .order_by()
    )
    return {(metrics.month_of(month), currency): (Decimal(total), count) for month, currency, total, count in rows}


def collected_by_month(*, since: datetime | None) -> dict[tuple[date, str], tuple[Decimal, int]]:
    """Money received per month and currency: succeeded payments by the day the money arrived
    (reversed ones, undone as recorded in error, are left out; refunds are counted apart)."""
    payments = Payment.objects.filter(status=PaymentStatus.SUCCEEDED, customer__test_clock__isnull=True).annotate(
        received=Coalesce("received_at", "created_at")
    )
    if since is not None:
        payments = payments.filter(received__gte=since)
    return _by_month(payments, "received", "amount")


def refunded_by_month(*, since: datetime | None) -> dict[tuple[date, str], tuple[Decimal, int]]:
    """Money paid back per month and currency: succeeded refunds by the day they succeeded."""
    refunds = Refund.objects.filter(status=RefundStatus.SUCCEEDED, payment__customer__test_clock__isnull=True).annotate(
        refunded=Coalesce("succeeded_at", "created_at")
    )
    if since is not None:
        refunds = refunds.filter(refunded__gte=since)
    return _by_month(refunds, "refunded", "amount")


def cash_months_rebuild(*, from_month: date | None) -> int:
    since = metrics.month_start_at(from_month) if from_month is not None else None
    invoices = _issued_invoices().filter(issued_at__isnull=False)
    credit_notes = CreditNote.objects.filter(status="issued", customer__test_clock__isnull=True)
    if since is not None:
        invoices = invoices.filter(issued_at__gte=since)
        credit_notes = credit_notes.filter(issued_at__gte=since)
    invoiced = _by_month(invoices, "issued_at", "total")
    # What an invoice came to below zero is invoiced (negative) when that invoice is issued; the credit
    # it left, taken off a later invoice, is a settlement there and is added back, so it counts once.
    invoice_credits = InvoiceLine.objects.filter(
        kind=InvoiceLineKind.INVOICE_CREDIT, invoice__in=invoices.values("pk")
    ).annotate(issued_at=F("invoice__issued_at"))
    for key, (amount, _) in _by_month(invoice_credits, "issued_at", "amount").items():
        total, count = invoiced.get(key, (Decimal(0), 0))
        invoiced[key] = (total - amount, count)
    credited = _by_month(credit_notes, "issued_at", "total")
    collected = collected_by_month(since=since)
    refunded = refunded_by_month(since=since)
    rows = []
    for month, currency in sorted(set(invoiced) | set(credited) | set(collected) | set(refunded)):
        key = (month, currency)
        rows.append(
            CashMonth(
                month=month,
                currency=currency,
                invoiced=invoiced.get(key, (Decimal(0), 0))[0],
                invoice_count=invoiced.get(key, (Decimal(0), 0))[1],
                credited=credited.get(key, (Decimal(0), 0))[0],
                collected=collected.get(key, (Decimal(0), 0))[0],
                collected_count=collected.get(key, (Decimal(0), 0))[1],
                refunded=refunded.get(key, (Decimal(0), 0))[0],
            )
        )
    with transaction.atomic():
        stale = CashMonth.objects.all()
        if from_month is not None:
            stale = stale.filter(month__gte=from_month)
        stale.delete()
        CashMonth.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


# --- Receivables aging --------------------------------------------------------------------------


def receivables_aging_rebuild(*, as_of: datetime) -> int:
    """What is due on open invoices (total − paid − credit notes' reductions, never below zero), by
    days past due on `as_of`'s day, per currency."""
    today = as_of.date()
    open_invoices = invoices_with_amount_due(_issued_invoices().filter(status__in=RECEIVABLE_STATUSES)).annotate(
        due=F("total") - F("amount_paid") - F("credit_notes_amount_due_reduction")
    )
    buckets: dict[tuple[str, str], tuple[Decimal, int]] = {}
    rows_seen = open_invoices.filter(due__gt=0).values_list("total_currency", "due", "due_on")
    for currency, due, due_on in rows_seen.iterator(chunk_size=10_000):
        key = (currency, metrics.aging_bucket(due_on, as_of=today))
        amount, count = buckets.get(key, (Decimal(0), 0))
        buckets[key] = (amount + Decimal(due), count + 1)
    currencies = {currency for currency, _ in buckets}
    rows = [
        ReceivablesAging(
            as_of=today,
            currency=currency,
            bucket=bucket,
            amount_due=buckets.get((currency, bucket), (Decimal(0), 0))[0],
            invoice_count=buckets.get((currency, bucket), (Decimal(0), 0))[1],
        )
        for currency in sorted(currencies)
        for bucket in metrics.AGING_BUCKETS
    ]
    with transaction.atomic():
        ReceivablesAging.objects.all().delete()
        ReceivablesAging.objects.bulk_create(rows)
    return len(rows)


# --- The refresh --------------------------------------------------------------------------------


def _changed_since(last: ReportRefresh, as_of: datetime) -> tuple[set[int], date | None]:
    """Subscriptions to re-segment and the earliest month whose revenue or cash may have changed."""
    since = last.started_at - WATERMARK_OVERLAP
    subscription_ids = set(_reportable_subscriptions().filter(updated_at__gte=since).values_list("pk", flat=True))
    subscription_ids.update(
        SubscriptionEvent.objects.filter(pk__gt=last.last_subscription_event_id).values_list(
            "subscription_id", flat=True
        )
    )
    for subscription_id, customer_id in Discount.objects.filter(updated_at__gte=since).values_list(
        "subscription_id", "customer_id"
    ):
        if subscription_id is not None:
            subscription_ids.add(subscription_id)
        else:
            subscription_ids.update(Subscription.objects.filter(customer_id=customer_id).values_list("pk", flat=True))
    changed_invoices = Invoice.objects.filter(updated_at__gte=since)
    moments = [
        Payment.objects.filter(updated_at__gte=since).aggregate(first=Min("received_at"))["first"],
        Refund.objects.filter(updated_at__gte=since).aggregate(first=Min("succeeded_at"))["first"],
        changed_invoices.aggregate(first=Min("issued_at"))["first"],
        InvoiceLine.objects.filter(invoice__in=changed_invoices).aggregate(first=Min("period_start_at"))["first"],
        CreditNote.objects.filter(updated_at__gte=since).aggregate(first=Min("issued_at"))["first"],
        changed_invoices.aggregate(first=Min("paid_at"))["first"],
    ]
    # The months around now always: today's invoices, and last month's tail of late payments.
    from_month = metrics.previous_month(metrics.month_of(as_of))
    for moment in moments:
        if moment is not None:
            from_month = min(from_month, metrics.month_of(moment))
    return subscription_ids, from_month


@transaction.atomic
def reports_refresh(*, full: bool = False, now: datetime | None = None) -> ReportRefresh:
    """Bring the summary tables up to date as of `now` (business time; default the clock's now).
    Two refreshes never run at once (a PostgreSQL advisory lock; SQLite serializes writers)."""
    started = time.monotonic()
    as_of = clock.ensure_aware(now) if now is not None else clock.now()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_LOCK_KEY])
    last = ReportRefresh.objects.order_by("-started_at", "-id").first()
    last_event_id = SubscriptionEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    refresh = ReportRefresh(started_at=timezone.now(), as_of=as_of, full=full or last is None)
    if refresh.full:
        refresh.subscriptions_resegmented = segments_rebuild()
        from_month = None
    else:
        assert last is not None
        subscription_ids, from_month = _changed_since(last, as_of)
        refresh.subscriptions_resegmented = (
            segments_rebuild(subscription_ids=subscription_ids) if subscription_ids else 0
        )
    mrr_months_rebuild(as_of=as_of)
    revenue_months_rebuild(from_month=from_month, as_of=as_of)
    cash_months_rebuild(from_month=from_month)
    receivables_aging_rebuild(as_of=as_of)
    refresh.from_month = from_month
    refresh.last_subscription_event_id = last_event_id
    refresh.finished_at = timezone.now()
    refresh.duration_ms = int((time.monotonic() - started) * 1000)
    refresh.save()
    logger.info(
        "reports refreshed as of %s (%s): %s subscriptions re-segmented, from %s, in %.1f s",
        as_of.isoformat(), "full" if refresh.full else "incremental", refresh.subscriptions_resegmented,
        from_month or "the beginning", refresh.duration_ms / 1000,
    )  # fmt: skip
    return refresh
