"""Billing a chunk of due subscriptions in bulk: the billing run's fast path.

A chunk (a few hundred subscription ids) is billed in one transaction with a handful of statements,
whatever its size: lock the due rows (`FOR UPDATE SKIP LOCKED`, so another worker or an overlapping
run never bills them too), read everything the invoices need at once (prices, usage of every usage
charge, tax rates), compute each invoice in memory with the same line functions as the
one-by-one path, then write the invoices, their lines, taxes and events with COPY (PostgreSQL) or
bulk inserts, and move every subscription to its new period.

Usage charges of every meter are billed here — on PostgreSQL count, sum and max read for the whole
chunk in one statement per source, weighted sums, percentiles and peak-hour splits in two or three,
unique counts, latest values and percentage prices' transactions in one each — except pooled ones
(see `_billable_in_bulk`).

Subscriptions that need more than a plain renewal — a trial ending, a scheduled change or version
migration, waiting prorations or credits, discounts, a plan's minimum commitment (its true-up reads
the period's earlier invoices), a custom price for one of its charges (`SubscriptionPriceOverride`,
read where every line gets its price), a pooled usage charge (its pool is shared with the customer's
other subscriptions), several periods to catch up — are left to the one-by-one path
(`subscription_bill_due`), which handles every case; so are all of the chunk's subscriptions if the
bulk write fails.

Exactly once: the rows stay locked until the chunk commits and are re-checked as due under the
lock; the unique constraint on (subscription, period start) backs that up. A crash rolls the whole
chunk back: the next run bills it.
"""

import gc
import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, models, transaction
from django.db.models import Q
from django.utils.translation import get_language

from apps.catalog.models import BillableMetric
from apps.catalog.pricing import PriceModel
from apps.core import clock
from apps.core.money import quantize_amount
from apps.invoices.constants import InvoiceEventType, InvoiceStatus
from apps.invoices.models import Invoice, InvoicedPeriod, InvoiceEvent, InvoiceItem, InvoiceLine, InvoiceTax, TaxRate
from apps.invoices.pricing import TaxRateSpec, invoice_totals, tax_added, tax_breakdown
from apps.invoices.services.lifecycle import (
    bill_language,
    customer_snapshot,
    invoices_finalized_send_on_commit,
    payment_terms_days,
)
from apps.invoices.services.numbering import invoice_numbers_allocate
from apps.invoices.services.taxes import (
    TaxTreatment,
    active_tax_rates,
    customer_tax_treatment_among,
    tax_rate_spec,
)
from apps.subscriptions.constants import SubscriptionStatus
from apps.subscriptions.models import ScheduledChange, Subscription, SubscriptionPriceOverride, SubscriptionSegment
from apps.subscriptions.periods import Period, period_containing
from apps.subscriptions.selectors import active_discounts
from apps.usage.selectors import (
    HoursWindow,
    UsageWindow,
    usage_aggregate_by_hours_many,
    usage_aggregate_many,
    usage_values_many,
)
from apps.usage.services import usage_billing_lock_many
from apps.wallets.selectors import customers_with_credits

from .closeout import Stretch, stretch_line_drafts
from .late_usage import late_usage_waiting_subscription_ids
from .lines import (
    LineDraft,
    arrears_fee_charges,
    customer_time_zone,
    invoice_span,
    recurring_line_drafts,
    usage_charges,
)

logger = logging.getLogger(__name__)


@dataclass
class ChunkOutcome:
    """What a chunk did: invoices made in bulk, and the subscriptions left to the one-by-one path."""

    invoice_ids: list[int] = field(default_factory=list)
    finalized_ids: list[int] = field(default_factory=list)
    billed_subscription_ids: list[int] = field(default_factory=list)
    one_by_one_ids: list[int] = field(default_factory=list)
    not_due_ids: list[int] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    copy_statements: int = 0  # COPYs bypass Django's cursor wrappers: counted here


@dataclass
class _Bill:
    subscription: Subscription
    period: Period
    billed_from: datetime
    drafts: list[LineDraft]
    taxes: list = field(default_factory=list)
    reverse_charge: bool = False
    subtotal: Decimal = Decimal(0)
    tax_total: Decimal = Decimal(0)
    total: Decimal = Decimal(0)


def billing_chunk_bill(*, subscription_ids: Sequence[int], now: datetime) -> ChunkOutcome:
    """Bill the next period of every subscription of the chunk that can be billed in bulk (see the
    module's docstring). The caller bills `one_by_one_ids` one by one; `not_due_ids` were not due
    any more or were being billed by someone else."""
    outcome = ChunkOutcome()
    try:
        with transaction.atomic(), _collector_paused():
            _bill_locked_chunk(subscription_ids, now, outcome)
    except DatabaseError:
        logger.exception("bulk billing of a chunk failed; billing its subscriptions one by one")
        return ChunkOutcome(one_by_one_ids=list(subscription_ids))
    return outcome


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a chunk is billed: the chunk makes tens of
    thousands of short-lived objects (rows, lines, decimals) and frees them all at the end, so the
    collector's passes in between find nothing to collect and only cost time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _bill_locked_chunk(subscription_ids: Sequence[int], now: datetime, outcome: ChunkOutcome) -> None:
    subscriptions = list(
        Subscription.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("customer", "plan__product")
        # Custom prices send a subscription the one-by-one way; read for the chunk at once, not per line.
        .prefetch_related("price_overrides")
        .due_for_billing(now)
        .filter(pk__in=subscription_ids)
        .order_by("pk")
    )
    locked_ids = {subscription.pk for subscription in subscriptions}
    outcome.not_due_ids = [sid for sid in subscription_ids if sid not in locked_ids]
    if not subscriptions:
        return
    _load_versions(subscriptions)
    metrics = _load_metrics(subscriptions)
    bulk = [s for s in subscriptions if _billable_in_bulk(s, now, metrics)]
    not_plain = _with_waiting_work(bulk)
    bulk = [s for s in bulk if s.pk not in not_plain]
    bulk_ids = {s.pk for s in bulk}
    outcome.one_by_one_ids = [s.pk for s in subscriptions if s.pk not in bulk_ids]
    if not bulk:
        return

    # In-flight usage batches of these customers land first; later ones see the period closed.
    usage_billing_lock_many(customer_ids={s.customer_id for s in bulk})
    bills = _compute(bulk, now, metrics, outcome)
    # A period that comes to no line (a usage-only plan without usage) makes no invoice: it is recorded
    # as billed without one, and its subscription moves on, as on the one-by-one path.
    empty = [bill for bill in bills if not bill.drafts]
    bills = [bill for bill in bills if bill.drafts]
    if empty:
        _record_without_invoice(empty, now, outcome)
    outcome.billed_subscription_ids = [bill.subscription.pk for bill in empty]
    if not bills:
        return
    finalize = settings.INVOICE_DRAFT_GRACE_HOURS == 0
    invoice_ids = _write(bills, now, finalize=finalize, outcome=outcome)
    outcome.invoice_ids = invoice_ids
    outcome.billed_subscription_ids += [bill.subscription.pk for bill in bills]
    if finalize:
        outcome.finalized_ids = invoice_ids
        invoices_finalized_send_on_commit(invoice_ids)


def _load_versions(subscriptions: list[Subscription]) -> None:
    """Attach each subscription's plan version, with its charges, prices and tiers, loaded once per
    version for the whole chunk."""
    from apps.catalog.models import PlanVersion

    version_ids = {s.plan_version_id for s in subscriptions}
    versions = {
        version.pk: version
        for version in PlanVersion.objects.filter(pk__in=version_ids).prefetch_related(
            "charges__prices__tiers", "minimum_commitments"
        )
    }
    for version in versions.values():
        for charge in version.charges.all():
            for price in charge.prices.all():
                price.frozen_spec = price.to_spec()  # quoted many times below, never changed
            # Looked up several times per subscription below (`Charge.price_for`), never changed.
            vars(charge)["frozen_default_prices"] = {
                currency: default
                for currency in {price.currency for price in charge.prices.all()}
                if (default := charge.price_for(currency)) is not None
            }
    for subscription in subscriptions:
        subscription.plan_version = versions[subscription.plan_version_id]


def _load_metrics(subscriptions: list[Subscription]) -> dict[str, BillableMetric]:
    codes = {charge.metric_code for s in subscriptions for charge in usage_charges(s.plan_version)}
    return {metric.code: metric for metric in BillableMetric.objects.filter(code__in=codes)} if codes else {}


def _billable_in_bulk(subscription: Subscription, now: datetime, metrics: dict[str, BillableMetric]) -> bool:
    """A plain renewal: one period due, nothing to apply first, usage readable in bulk."""
    if subscription.status == SubscriptionStatus.TRIALING or subscription.pending_plan_version_id is not None:
        return False
    if subscription.customer.test_clock_id is not None:
        return False
    if subscription.interim_invoices_pending:
        return False  # progressive billing: interim invoices to deduct (read from the row: no statement)
    period = _period(subscription)
    if period.end <= now:  # more than one period to catch up
        return False
    if subscription.plan_version.minimum_commitment_for(subscription.currency) is not None:
        return False
    for charge in usage_charges(subscription.plan_version):
        metric = metrics.get(charge.metric_code)
        price = charge.price_for(subscription.currency)
        if metric is None or price is None:
            return False  # the one-by-one path reports the error with its reason
        # Any aggregation, a percentage price and peak hours are billed here as one by one: the lines
        # come from the same `usage_line_drafts`, with the usage `usage_aggregate` and
        # `usage_aggregate_by_hours` return (read for the whole chunk by their `_many` versions), and
        # a percentage price's transactions as `usage_values` reads them (`usage_values_many`). The equivalence test
        # (tests/services/test_bulk_meters.py) holds the two paths to the same invoices.
        if charge.is_pooled:
            # A pooled charge stays one by one. Its line is not a function of this subscription's usage
            # alone: the pool's members are the customer's other subscriptions on the plan that share the
            # period (read from their rows, which other chunks and the one-by-one path are moving on at
            # the same time), and its share depends on every member's events in event order. Priced
            # here it would still cost two statements per subscription (members, shares), the reads of
            # the whole customer's pool that the one-by-one path makes; billing pools in bulk means
            # reading each customer's pool once for all its members, with tests that members billed in
            # different chunks, or some in bulk and some one by one, get the shares they get one by one.
            return False
    return True


def _with_waiting_work(subscriptions: list[Subscription]) -> set[int]:
    """Subscriptions with a scheduled change, waiting invoice items (theirs or their customer's), a
    stretch closed by a change inside the period, an active discount or a custom price: the one-by-one
    path applies those."""
    ids = [s.pk for s in subscriptions]
    customer_ids = {s.customer_id for s in subscriptions}
    busy = set(
        ScheduledChange.objects.filter(
            subscription_id__in=ids, applied_at__isnull=True, canceled_at__isnull=True
        ).values_list("subscription_id", flat=True)
    )
    busy |= set(
        InvoiceItem.objects.filter(subscription_id__in=ids, invoice__isnull=True).values_list(
            "subscription_id", flat=True
        )
    )
    customers = set(
        InvoiceItem.objects.filter(
            customer_id__in=customer_ids, subscription__isnull=True, invoice__isnull=True
        ).values_list("customer_id", flat=True)
    )
    busy |= set(
        SubscriptionSegment.objects.filter(subscription_id__in=ids, billed_at__isnull=True).values_list(
            "subscription_id", flat=True
        )
    )
    discounted = active_discounts().filter(Q(subscription_id__in=ids) | Q(customer_id__in=customer_ids))
    for subscription_id, customer_id in discounted.values_list("subscription_id", "customer_id"):
        if subscription_id is not None:
            busy.add(subscription_id)
        if customer_id is not None:
            customers.add(customer_id)
    busy |= late_usage_waiting_subscription_ids(subscriptions)  # late usage to bill: one by one
    # Custom prices (docs/credits.md): the one-by-one path reads them where every line gets its price.
    busy |= set(
        SubscriptionPriceOverride.objects.filter(subscription_id__in=ids).values_list("subscription_id", flat=True)
    )
    customers |= customers_with_credits(customer_ids=customer_ids)  # prepaid credits: applied at finalization
    return busy | {s.pk for s in subscriptions if s.customer_id in customers}


def _period(subscription: Subscription) -> Period:
    """The period that begins (or began) at `next_billing_at`, computed once per subscription."""
    period = subscription.__dict__.get("_billing_period")
    if period is None:
        plan = subscription.plan
        period = period_containing(
            subscription.billing_anchor_at, plan.interval, plan.interval_count, subscription.next_billing_at
        )
        subscription.__dict__["_billing_period"] = period
    return period


def _compute(
    subscriptions: list[Subscription], now: datetime, metrics: dict[str, BillableMetric], outcome: ChunkOutcome
) -> list[_Bill]:
    # Usage of the period that ends as the new one begins, for every usage charge, read at once.
    windows: list[UsageWindow] = []
    window_keys: list[tuple[int, int]] = []
    # Charges with peak hours: their usage split by the local hour of the day, read at once too.
    hour_windows: list[HoursWindow] = []
    hour_keys: list[tuple[int, int]] = []
    for subscription in subscriptions:
        if subscription.current_period_end_at != max(_period(subscription).start, subscription.next_billing_at):
            continue
        for charge in usage_charges(subscription.plan_version):
            if charge.has_peak_hours:
                hour_windows.append(
                    HoursWindow(
                        customer_id=subscription.customer_id,
                        metric=metrics[charge.metric_code],
                        start=subscription.current_period_start_at,
                        end=subscription.current_period_end_at,
                        time_zone=customer_time_zone(subscription.customer),
                        hours=charge.peak_hours(),
                    )  # fmt: skip
                )
                hour_keys.append((subscription.pk, charge.pk))
                continue
            windows.append(
                UsageWindow(
                    customer_id=subscription.customer_id,
                    metric=metrics[charge.metric_code],
                    start=subscription.current_period_start_at,
                    end=subscription.current_period_end_at,
                )
            )
            window_keys.append((subscription.pk, charge.pk))
    usage: dict[int, dict[int, dict[str, Decimal]]] = {}
    values = _percentage_values(subscriptions, windows, window_keys)
    for (subscription_id, charge_id), totals in zip(window_keys, usage_aggregate_many(windows), strict=True):
        usage.setdefault(subscription_id, {})[charge_id] = totals
    for (subscription_id, charge_id), split in zip(hour_keys, usage_aggregate_by_hours_many(hour_windows), strict=True):
        usage.setdefault(subscription_id, {})[charge_id] = split

    rates = active_tax_rates(countries={str(s.customer.country.code) for s in subscriptions})
    recurring_cache: dict[tuple[Any, ...], list[LineDraft]] = {}
    treatments: dict[tuple[Any, ...], tuple[TaxTreatment, TaxRateSpec | None]] = {}
    bills = []
    for subscription in subscriptions:
        try:
            bill = _bill_of(
                subscription, usage.get(subscription.pk), metrics, rates, recurring_cache, treatments,
                values.get(subscription.pk),
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - one subscription must not stop the chunk
            logger.exception("billing subscription %s failed", subscription.pk)
            outcome.errors.append({"subscription": subscription.pk, "error": f"{type(exc).__name__}: {exc}"})
            continue
        if bill.total < 0:
            # A plain renewal never comes to below zero (its lines are fees and usage); should one
            # ever do, the one-by-one path issues it and credits the excess to the balance.
            outcome.one_by_one_ids.append(subscription.pk)
            continue
        bills.append(bill)
    return bills


def _percentage_values(
    subscriptions: list[Subscription], windows: list[UsageWindow], window_keys: list[tuple[int, int]]
) -> dict[int, dict[int, dict[str, list[Decimal]]]]:
    """The event values that percentage prices price one by one (subscription id → charge id → group →
    values), read for the chunk's percentage charges at once."""
    percentage = {
        charge.pk
        for subscription in subscriptions
        for charge in usage_charges(subscription.plan_version)
        if charge.price_model == PriceModel.PERCENTAGE
    }
    wanted = [position for position, (_, charge_id) in enumerate(window_keys) if charge_id in percentage]
    values: dict[int, dict[int, dict[str, list[Decimal]]]] = {}
    read = usage_values_many([windows[position] for position in wanted])
    for position, groups in zip(wanted, read, strict=True):
        subscription_id, charge_id = window_keys[position]
        values.setdefault(subscription_id, {})[charge_id] = groups
    return values


def _bill_of(
    subscription: Subscription,
    usage: dict[int, dict[str, Decimal]] | None,
    metrics: dict[str, BillableMetric],
    rates: list[TaxRate],
    recurring_cache: dict[tuple[Any, ...], list[LineDraft]],
    treatments: dict[tuple[Any, ...], tuple[TaxTreatment, TaxRateSpec | None]],
    values: dict[int, dict[str, list[Decimal]]] | None = None,
) -> _Bill:
    currency = subscription.currency
    period = _period(subscription)
    billed_from = max(period.start, subscription.next_billing_at)
    drafts: list[LineDraft] = []
    if subscription.current_period_end_at == billed_from:
        # The period closing, in arrears (one stretch: changes inside it go one by one): its fees billed
        # in arrears, then its usage, as `closeout.stretch_line_drafts` bills them on the one-by-one path.
        plan = subscription.plan
        start = subscription.current_period_start_at
        stretch = Stretch(
            plan=plan, version=subscription.plan_version, quantity=subscription.quantity, start=start,
            end=subscription.current_period_end_at,
            period=period_containing(subscription.billing_anchor_at, plan.interval, plan.interval_count, start),
        )  # fmt: skip
        # Fees and usage lines are named and explained in the customer's language ("(usage)"): an English
        # customer's usage-only lines need no translation activated when English is the active language.
        translated = (
            arrears_fee_charges(stretch.version) or not _writes_english(subscription.customer) or not _english_active()
        )
        language = bill_language(subscription.customer) if translated else nullcontext()
        with language:
            drafts += stretch_line_drafts(
                subscription=subscription, stretches=[stretch], currency=currency, metrics=metrics,
                totals_by_charge=usage if usage is not None else {}, values_by_charge=values or {},
            )  # fmt: skip
    # The recurring lines depend only on these: computed once per distinct key in the chunk.
    key = (
        subscription.plan_id, subscription.plan_version_id, subscription.quantity, currency, period, billed_from,
        subscription.customer.preferred_language,
    )  # fmt: skip
    if key not in recurring_cache:
        with bill_language(subscription.customer):
            recurring_cache[key] = recurring_line_drafts(
                plan=subscription.plan, version=subscription.plan_version, quantity=subscription.quantity,
                currency=currency, period=period, billed_from=billed_from,
            )  # fmt: skip
    drafts += recurring_cache[key]
    treatment, spec = _tax_treatment(subscription.customer, rates, treatments)
    taxes = tax_breakdown(lines=[(draft.amount, spec) for draft in drafts], currency=currency)
    tax_total = quantize_amount(tax_added(taxes), currency)
    subtotal, total = invoice_totals(
        line_amounts=[draft.amount for draft in drafts], tax_total=tax_total, currency=currency
    )
    return _Bill(
        subscription=subscription, period=period, billed_from=billed_from, drafts=drafts, taxes=taxes,
        reverse_charge=treatment.reverse_charge, subtotal=subtotal, tax_total=tax_total, total=total,
    )  # fmt: skip


def _tax_treatment(
    customer: Any, rates: list[TaxRate], treatments: dict[tuple[Any, ...], tuple[TaxTreatment, TaxRateSpec | None]]
) -> tuple[TaxTreatment, TaxRateSpec | None]:
    """`customer_tax_treatment_among` and its rate's spec, worked out once per distinct set of the
    customer fields it reads (exemption, country, region, tax id): most of a chunk's customers share
    one."""
    key = (
        customer.tax_exempt, str(customer.country.code), customer.state, customer.tax_id_type,
        customer.tax_id_status, customer.tax_id,
    )  # fmt: skip
    known = treatments.get(key)
    if known is None:
        treatment = customer_tax_treatment_among(customer=customer, rates=rates)
        known = treatments[key] = (treatment, tax_rate_spec(treatment.rate))
    return known


# --- writing ----------------------------------------------------------------------------------------


_Row = tuple[Any, ...]

# The columns the bulk path writes, in the order of the tuples built below (the other columns take
# their field's default). The rows are tuples, not dicts: a chunk writes thousands of them.
_INVOICE_COLUMNS = (
    "created_at", "updated_at", "customer_id", "subscription_id", "period_start_at", "period_end_at", "subtotal",
    "subtotal_currency", "tax_total", "tax_total_currency", "total", "total_currency", "amount_paid",
    "amount_paid_currency", "reverse_charge",
)  # fmt: skip
_DRAFT_COLUMNS = ("status", "auto_finalize_at")
_ISSUED_COLUMNS = (
    "number", "status", "issued_at", "due_on", "seller_details", "customer_details", "auto_finalize_at",
    "collection_method", "paid_at",
)  # fmt: skip
_LINE_COLUMNS = (
    "invoice_id", "position", "description", "period_start_at", "period_end_at", "kind", "charge_id", "quantity",
    "unit_amount", "unit_amount_currency", "amount", "amount_currency", "explanation",
)  # fmt: skip
_TAX_COLUMNS = (
    "invoice_id", "rate_id", "name", "percentage", "inclusive", "taxable_amount", "taxable_amount_currency",
    "tax_amount", "tax_amount_currency",
)  # fmt: skip
_PERIOD_COLUMNS = ("invoice_id", "subscription_id", "period_start_at", "period_end_at")
_EVENT_COLUMNS = ("invoice_id", "type", "occurred_at", "data")


def _write(bills: list[_Bill], now: datetime, *, finalize: bool, outcome: ChunkOutcome) -> list[int]:
    written_at = clock.now()
    auto_finalize_at = now + timedelta(hours=settings.INVOICE_DRAFT_GRACE_HOURS)
    zero = Decimal(0)
    invoice_rows = []
    for bill in bills:
        subscription, currency = bill.subscription, bill.subscription.currency
        period_start_at, period_end_at = invoice_span(bill.drafts, start=bill.billed_from, end=bill.period.end)
        invoice_rows.append(
            (
                written_at, written_at, subscription.customer_id, subscription.pk, period_start_at, period_end_at,
                bill.subtotal, currency, bill.tax_total, currency, bill.total, currency, zero, currency,
                bill.reverse_charge,
            )
        )  # fmt: skip
    draft_fields = (InvoiceStatus.DRAFT, auto_finalize_at)
    # On PostgreSQL the invoices are written last, already issued, with ids taken first: their lines
    # and taxes go in before them (foreign keys are checked at commit), since the database refuses
    # lines on an issued invoice. Elsewhere: drafts first, issued afterwards.
    copying = connection.vendor == "postgresql"
    invoice_ids = (
        _allocate_ids(Invoice, len(bills))
        if copying
        else _insert_rows(
            Invoice, _INVOICE_COLUMNS + _DRAFT_COLUMNS, [row + draft_fields for row in invoice_rows], returning_ids=True
        )
    )

    lines, taxes, periods, events = [], [], [], []
    created = InvoiceEventType.CREATED
    for invoice_id, bill in zip(invoice_ids, bills, strict=True):
        subscription, currency = bill.subscription, bill.subscription.currency
        for position, draft in enumerate(bill.drafts, start=1):
            lines.append(
                (
                    invoice_id, position, draft.description, draft.period_start_at, draft.period_end_at, draft.kind,
                    draft.charge.pk if draft.charge is not None else None, draft.quantity, draft.unit_amount,
                    currency, draft.amount, currency, list(draft.explanation),
                )
            )  # fmt: skip
        for tax in bill.taxes:
            taxes.append(
                (
                    invoice_id, tax.rate_id, tax.name, tax.percentage, tax.inclusive, tax.taxable_amount, currency,
                    tax.tax_amount, currency,
                )
            )  # fmt: skip
        periods.append((invoice_id, subscription.pk, bill.billed_from, bill.period.end))
        events.append(
            (
                invoice_id, created, now,
                {"subscription": subscription.pk, "period_start": bill.billed_from.isoformat(),
                 "period_end": bill.period.end.isoformat()},
            )
        )  # fmt: skip
    _insert_rows(InvoiceLine, _LINE_COLUMNS, lines)
    _insert_rows(InvoiceTax, _TAX_COLUMNS, taxes)
    _insert_rows(InvoicedPeriod, _PERIOD_COLUMNS, periods)
    if finalize:
        issued, issue_events = _issue(invoice_ids, bills, now)
        events += issue_events
        if copying:
            rows = [row + fields for row, fields in zip(invoice_rows, issued, strict=True)]
            _insert_rows(Invoice, _INVOICE_COLUMNS + _ISSUED_COLUMNS, rows, ids=invoice_ids)
        else:
            for invoice_id, fields in zip(invoice_ids, issued, strict=True):
                Invoice.objects.filter(pk=invoice_id).update(**dict(zip(_ISSUED_COLUMNS, fields, strict=True)))
    elif copying:
        rows = [row + draft_fields for row in invoice_rows]
        _insert_rows(Invoice, _INVOICE_COLUMNS + _DRAFT_COLUMNS, rows, ids=invoice_ids)
    _insert_rows(InvoiceEvent, _EVENT_COLUMNS, events)
    if copying:
        outcome.copy_statements += sum(1 for rows in (invoice_rows, lines, taxes, periods, events) if rows)
    _advance_periods(bills, written_at)
    return invoice_ids


def _issue(invoice_ids: list[int], bills: list[_Bill], now: datetime) -> tuple[list[_Row], list[_Row]]:
    """Issue the chunk's invoices as `invoice_finalize` does, all at once: consecutive numbers of the
    series (one locked counter update), seller and buyer snapshots, due dates by the customer's
    terms; a zero-amount invoice is paid at once. Returns each invoice's issued fields (the values of
    `_ISSUED_COLUMNS`) and the events to record (the values of `_EVENT_COLUMNS`)."""
    numbers = invoice_numbers_allocate(issued_at=now, count=len(bills))
    seller = dict(settings.SELLER)
    issued, events = [], []
    due_on_by_terms: dict[int, Any] = {}
    for invoice_id, bill, number in zip(invoice_ids, bills, numbers, strict=True):
        customer = bill.subscription.customer
        paid = bill.total == 0
        terms = payment_terms_days(customer)
        due_on = due_on_by_terms.get(terms)
        if due_on is None:
            due_on = due_on_by_terms[terms] = (now + timedelta(days=terms)).date()
        issued.append(
            (
                number, InvoiceStatus.PAID if paid else InvoiceStatus.OPEN, now, due_on, seller,
                customer_snapshot(customer), None, customer.collection_method, now if paid else None,
            )
        )  # fmt: skip
        events.append(
            (
                invoice_id, InvoiceEventType.FINALIZED, now,
                {"number": number, "total": str(bill.total), "currency": bill.subscription.currency},
            )
        )  # fmt: skip
        if paid:
            events.append((invoice_id, InvoiceEventType.PAID, now, {"reason": "zero amount"}))
    return issued, events


def _record_without_invoice(bills: list[_Bill], now: datetime, outcome: ChunkOutcome) -> None:
    """Record periods that came to no line as billed, without an invoice, and move their
    subscriptions on."""
    written_at = clock.now()
    periods = [
        {"invoice_id": None, "subscription_id": bill.subscription.pk, "period_start_at": bill.billed_from,
         "period_end_at": bill.period.end, "billed_at": now}
        for bill in bills
    ]  # fmt: skip
    _insert(InvoicedPeriod, periods)
    if connection.vendor == "postgresql":
        outcome.copy_statements += 1
    _advance_periods(bills, written_at)


def _advance_periods(bills: list[_Bill], written_at: datetime) -> None:
    """Make each billed period the subscription's current one."""
    if connection.vendor == "postgresql":
        table = Subscription._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE {table} AS s
                SET current_period_start_at = v.period_start, current_period_end_at = v.period_end,
                    next_billing_at = v.period_end, updated_at = %s
                FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[]) AS v(id, period_start, period_end)
                WHERE s.id = v.id
                """,  # noqa: S608 - our table name; values are parameters
                [
                    written_at,
                    [bill.subscription.pk for bill in bills],
                    [bill.billed_from for bill in bills],
                    [bill.period.end for bill in bills],
                ],
            )
        return
    for bill in bills:
        bill.subscription.current_period_start_at = bill.billed_from
        bill.subscription.current_period_end_at = bill.period.end
        bill.subscription.next_billing_at = bill.period.end
        bill.subscription.updated_at = written_at
    Subscription.objects.bulk_update(
        [bill.subscription for bill in bills],
        ["current_period_start_at", "current_period_end_at", "next_billing_at", "updated_at"],
        batch_size=500,
    )


def _allocate_ids(model: type[models.Model], count: int) -> list[int]:
    """Take `count` ids from the table's sequence (PostgreSQL), for rows written later with COPY."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [model._meta.db_table, model._meta.pk.column, count],
        )
        return [value for (value,) in cursor.fetchall()]


def _insert(
    model: type[models.Model],
    rows: list[dict[str, Any]],
    *,
    returning_ids: bool = False,
    ids: list[int] | None = None,
) -> list[int]:
    """Insert rows given as {attname: value}; columns not given take their field's default.

    PostgreSQL: COPY (ids taken from the table's sequence first, when asked for). Elsewhere:
    `bulk_create`."""
    if not rows:
        return []
    columns = tuple(dict.fromkeys(name for row in rows for name in row))
    missing = object()
    values = [tuple(row.get(name, missing) for name in columns) for row in rows]
    if any(value is missing for row in values for value in row):
        # Rows naming different columns: each row's own, with the defaults of the others.
        defaults = {f.attname: f.get_default() for f in model._meta.concrete_fields if not f.primary_key}
        values = [tuple(row[name] if name in row else defaults[name] for name in columns) for row in rows]
    return _insert_rows(model, columns, values, returning_ids=returning_ids, ids=ids)


def _insert_rows(
    model: type[models.Model],
    columns: Sequence[str],
    rows: list[_Row],
    *,
    returning_ids: bool = False,
    ids: list[int] | None = None,
) -> list[int]:
    """Insert rows given as tuples of the values of `columns` (attnames, JSON columns as Python
    values); the model's other columns take their field's default, computed once for all the rows.

    PostgreSQL: COPY, each row the given values followed by the defaults (ids taken from the table's
    sequence first, when asked for). Elsewhere: `bulk_create`."""
    if not rows:
        return []
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    by_name = {f.attname: f for f in fields}
    others = [f for f in fields if f.attname not in set(columns)]
    if connection.vendor != "postgresql":
        defaults = {f.attname: f.get_default() for f in others}
        created = model.objects.bulk_create(
            [model(**defaults, **dict(zip(columns, row, strict=True))) for row in rows], batch_size=500
        )
        return [obj.pk for obj in created]
    table = model._meta.db_table
    pk_column = model._meta.pk.column
    if ids is None:
        ids = _allocate_ids(model, len(rows)) if returning_ids else []
    # The same JSON text as json.dumps(value, cls=field.encoder), with one encoder for all the rows.
    encoders = {
        index: (by_name[name].encoder or json.JSONEncoder)()  # type: ignore[attr-defined]
        for index, name in enumerate(columns)
        if isinstance(by_name[name], models.JSONField)
    }
    tail = tuple(_copy_value(f, f.get_default()) for f in others)
    names = ", ".join(
        connection.ops.quote_name(column)
        for column in ([pk_column] if ids else [])
        + [by_name[name].column for name in columns]
        + [f.column for f in others]
    )
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {connection.ops.quote_name(table)} ({names}) FROM STDIN") as copy:
            write_row = copy.write_row
            for index, row in enumerate(rows):
                values: Sequence[Any] = row
                if encoders:
                    values = list(row)
                    for position, encoder in encoders.items():
                        if values[position] is not None:
                            values[position] = encoder.encode(values[position])
                write_row((ids[index], *values, *tail) if ids else (*values, *tail))
    return ids


def _copy_value(field: models.Field, value: Any) -> Any:
    if isinstance(field, models.JSONField) and value is not None:
        return json.dumps(value, cls=field.encoder)
    return value


def _english_active() -> bool:
    return (get_language() or settings.LANGUAGE_CODE).lower().startswith("en")


def _writes_english(customer: Any) -> bool:
    return bool((customer.preferred_language or settings.LANGUAGE_CODE).lower().startswith("en"))
