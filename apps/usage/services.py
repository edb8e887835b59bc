"""Usage ingestion: validate a batch of usage events, store the good ones exactly once, and keep the
rollups up to date in the same transaction.

A batch is all-or-nothing only for the database write: each bad event is refused on its own (with its
index, a code and a reason), and the good events of the same batch are stored. A transaction id seen
before (in an earlier batch or earlier in the same batch) is acknowledged as a duplicate and not
counted again, also when two batches carrying it arrive at the same time: the batch claims its
transaction ids with `INSERT … ON CONFLICT (transaction_id) DO NOTHING RETURNING` into the key table
(`UsageEventKey`, which keeps them unique across the monthly partitions of the events) and inserts
only the events it claimed, so each batch learns exactly which rows it inserted and rolls up only
those. See docs/usage.md for every rule.

Nothing reaches the database that it would refuse (which would fail the whole batch): text with NUL
or an unpaired surrogate, numbers that are not finite, properties nested too deep or too large are
refused event by event, in one cheap pass per event (the properties' JSON text is made once, checked,
and is what gets stored).
"""

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, cast

import orjson
from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Field as DjangoField
from django.db.models import JSONField, Model
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext, ngettext

from apps.accounts.models import Customer
from apps.catalog.constants import NUMERIC_AGGREGATIONS, ChargeKind, MetricAggregation
from apps.catalog.models import GROUP_KEY_SEPARATOR, BillableMetric, group_key_of
from apps.core import clock
from apps.core.validation import json_path, json_problem, text_problem, text_storable
from apps.subscriptions.periods import period_containing

from .constants import (
    POOL_MEMBER_PROPERTY,
    VALUE_DECIMAL_PLACES,
    VALUE_MAX_DIGITS,
    EventRejection,
    UsageChangeKind,
)
from .keys import taken_transaction_ids
from .models import (
    UsageDistinctValue,
    UsageEvent,
    UsageEventChange,
    UsageEventKey,
    UsageIntervalRollup,
    UsageRollup,
)
from .signals import usage_recorded_send_on_commit

INSERT_CHUNK = 500
MAX_TEXT_LENGTH = 255
# An event's properties: objects and lists nested at most this deep (the properties object is level 1)…
MAX_PROPERTIES_DEPTH = 5
# …and at most this many bytes as JSON (UTF-8). See docs/usage.md.
MAX_PROPERTIES_BYTES = 16_384


@dataclass(frozen=True)
class RejectedEvent:
    """An event of a batch that was not stored, and why."""

    index: int  # its position in the batch, from 0
    transaction_id: str  # as sent ("" when missing or not a string)
    code: str  # an `EventRejection`
    reason: str  # a sentence for the sender

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "transaction_id": self.transaction_id, "code": self.code, "reason": self.reason}


@dataclass(frozen=True)
class IngestResult:
    """What became of a batch: every event is accepted, a duplicate, or rejected with a reason."""

    accepted: int
    duplicates: int
    rejected: list[RejectedEvent] = field(default_factory=list)


class _Rejected(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class UnreadableEvent:
    """An event of a batch whose JSON could not be read on its own (nested deeper than the JSON parser
    goes): the API hands it in at its place, and it is refused alone, with this reason."""

    reason: str


@dataclass
class _ValidEvent:
    transaction_id: str
    customer: Customer
    metric: BillableMetric
    occurred_at: datetime
    properties: dict[str, Any]
    properties_json: str
    value: Decimal | None
    distinct_value: str
    group_key: str
    id: int | None = None
    # Set when the event is dated in a period already invoiced (accepted within the metric's lateness
    # window): the end of that period, recorded as a `UsageEventChange` for the next invoice.
    billed_period_end_at: datetime | None = None


# --- ingestion -----------------------------------------------------------------------------------


@transaction.atomic
def usage_events_ingest(*, events: Sequence[Mapping[str, Any]], now: datetime) -> IngestResult:
    """Validate and store a batch of usage events; return what became of each.

    Each event is a mapping with `transaction_id` (the idempotency key), `external_customer_id`,
    `metric_code`, `timestamp` (ISO 8601 with a UTC offset, or Unix seconds) and optional
    `properties` (an object). One transaction per batch.
    """
    now = clock.ensure_aware(now)
    rejected: list[RejectedEvent] = []
    duplicates = 0

    parsed: list[tuple[int, dict[str, Any]]] = []
    for index, raw in enumerate(events):
        try:
            parsed.append((index, _parse_shape(raw)))
        except _Rejected as exc:
            rejected.append(RejectedEvent(index, _transaction_id_of(raw), exc.code, exc.reason))

    already_stored = _stored_transaction_ids(sorted({event["transaction_id"] for _, event in parsed}))
    customers = {
        customer.external_id: customer
        for customer in Customer.objects.filter(external_id__in={event["external_customer_id"] for _, event in parsed})
        .select_related("test_clock")
        .only("external_id", "test_clock")  # what validation reads (loading a whole customer costs ~0.3 ms)
    }
    metrics = {
        metric.code: metric
        for metric in BillableMetric.objects.filter(code__in={event["metric_code"] for _, event in parsed})
    }
    usage_ingest_lock(customer_ids={customer.pk for customer in customers.values()})
    invoiced = invoiced_spans(customer_ids={c.pk for c in customers.values()}, metric_codes=set(metrics))
    pooled = pool_members_by_metric(customer_ids={c.pk for c in customers.values()}, metric_codes=set(metrics))

    valid: list[_ValidEvent] = []
    seen: set[str] = set()
    scopes: dict[tuple[str, str], _Scope] = {}
    for index, event in parsed:
        transaction_id = event["transaction_id"]
        if transaction_id in already_stored or transaction_id in seen:
            duplicates += 1
            continue
        try:
            valid_event = _validate(
                event, customers=customers, metrics=metrics, invoiced=invoiced, now=now, pooled=pooled,
                scopes=scopes,
            )  # fmt: skip
        except _Rejected as exc:
            rejected.append(RejectedEvent(index, transaction_id, exc.code, exc.reason))
            continue
        seen.add(transaction_id)
        valid.append(valid_event)

    # In transaction id order: concurrent batches then wait on each other's rows in one order, never
    # in a cycle (no deadlock between two batches sharing transaction ids).
    valid.sort(key=lambda valid_event: valid_event.transaction_id)
    inserted = _insert_events(valid, received_at=now)
    # A transaction id stored by a concurrent batch after our look-up above: that batch counted it.
    duplicates += len(valid) - len(inserted)
    _rollups_add(inserted)
    _late_events_record(inserted, now=now)
    usage_recorded_send_on_commit({valid_event.customer.pk for valid_event in inserted})
    rejected.sort(key=lambda rejection: rejection.index)
    return IngestResult(accepted=len(inserted), duplicates=duplicates, rejected=rejected)


def _transaction_id_of(raw: object) -> str:
    """The transaction id to echo with a rejection: as sent, cut to 255 characters, with what cannot be
    stored or sent back (NUL, unpaired surrogates) replaced by U+FFFD."""
    if isinstance(raw, Mapping) and isinstance(transaction_id := raw.get("transaction_id"), str):
        return text_storable(transaction_id[:MAX_TEXT_LENGTH])
    return ""


def _parse_shape(raw: object) -> dict[str, Any]:
    """The event's fields with their types checked (nothing looked up yet)."""
    if isinstance(raw, UnreadableEvent):
        raise _Rejected(EventRejection.INVALID, raw.reason)
    if not isinstance(raw, Mapping):
        raise _Rejected(
            EventRejection.INVALID,
            gettext(
                "An event is an object with transaction_id, external_customer_id, metric_code, timestamp and "
                "properties."
            ),
        )
    event: dict[str, Any] = {}
    for name in ("transaction_id", "external_customer_id", "metric_code"):
        value = raw.get(name)
        if not isinstance(value, str) or not value.strip():
            raise _Rejected(
                EventRejection.INVALID, gettext("%(name)s is required (a non-empty string).") % {"name": name}
            )
        if len(value) > MAX_TEXT_LENGTH:
            raise _Rejected(
                EventRejection.INVALID,
                gettext("%(name)s is longer than %(max_text_length)s characters.")
                % {"name": name, "max_text_length": MAX_TEXT_LENGTH},
            )
        if not value.isascii() or "\x00" in value:  # the common case skips the call
            problem = text_problem(value)
            if problem:
                raise _Rejected(EventRejection.INVALID, problem.about(name))
        event[name] = value
    properties = raw.get("properties")
    if properties is None:
        properties = {}
    if not isinstance(properties, Mapping):
        raise _Rejected(EventRejection.INVALID, gettext("properties must be an object."))
    event["properties"] = dict(properties)
    event["properties_json"] = _properties_json(event["properties"])
    event["occurred_at"] = _parse_timestamp(raw.get("timestamp"))
    return event


# One encoder for every event (json.dumps with options builds a new one per call, which costs more
# than the encoding itself).
_PROPERTIES_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False)


def _properties_json(properties: dict[str, Any]) -> str:
    """The properties as JSON text (what is stored), once they are known to be storable: text without
    NUL or unpaired surrogates, finite numbers, at most MAX_PROPERTIES_DEPTH levels and
    MAX_PROPERTIES_BYTES bytes.

    The common case costs no more than the JSON text that is stored anyway: the encoder refuses
    non-finite numbers and anything that is not JSON, encoding the text to UTF-8 finds unpaired
    surrogates, and NUL shows as the escape `\\u0000`. Only nested or suspect properties are walked.
    """
    try:
        text = _PROPERTIES_ENCODER.encode(properties)
        size = len(text) if text.isascii() else len(text.encode())
    except (ValueError, TypeError, UnicodeEncodeError, RecursionError):
        text, size = "", 0  # the walk below says what is wrong
    # Nested objects or lists show as a second "{" or any "[" (one inside a string only costs a walk).
    if not text or "\\u0000" in text or "[" in text or text.count("{") > 1:
        found = json_problem(properties, max_depth=MAX_PROPERTIES_DEPTH)
        if found is not None:
            path, problem = found
            raise _Rejected(EventRejection.INVALID, problem.about(json_path(path, prefix="properties")))
    if not text:
        raise _Rejected(EventRejection.INVALID, gettext("properties is not a JSON object."))
    if size > MAX_PROPERTIES_BYTES:
        raise _Rejected(
            EventRejection.INVALID,
            gettext("properties take %(size)s bytes as JSON; at most %(max_properties_bytes)s are accepted.")
            % {"size": format(size, ","), "max_properties_bytes": format(MAX_PROPERTIES_BYTES, ",")},
        )
    return text


def _parse_timestamp(value: object) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise _Rejected(
                EventRejection.INVALID_TIMESTAMP, gettext("Timestamp %(value)s is out of range.") % {"value": value}
            ) from exc
    elif isinstance(value, str) and value.strip():
        try:
            parsed = parse_datetime(value.strip())
        except ValueError:
            parsed = None
        if parsed is None:
            raise _Rejected(
                EventRejection.INVALID_TIMESTAMP,
                gettext("Timestamp %(value)r is not an ISO 8601 date and time (e.g. 2026-03-01T12:00:00Z).")
                % {"value": value},
            )
        moment = parsed
    else:
        raise _Rejected(
            EventRejection.INVALID_TIMESTAMP,
            gettext("timestamp is required: an ISO 8601 date and time with a UTC offset, or Unix seconds."),
        )
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise _Rejected(
            EventRejection.INVALID_TIMESTAMP,
            gettext("Timestamp %(value)r has no UTC offset; add one (e.g. Z or +02:00) so it is not guessed.")
            % {"value": value},
        )
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:  # 9999-12-31T23:00:00-14:00 is past the last UTC date
        raise _Rejected(
            EventRejection.INVALID_TIMESTAMP, gettext("Timestamp %(value)r is out of range.") % {"value": value}
        ) from exc


@dataclass
class _Scope:
    """What checking an event of one customer and one metric needs, worked out once per batch for
    each (customer, metric) pair met (a batch has many events of few pairs)."""

    customer: Customer
    metric: BillableMetric
    reference: datetime  # the time the window is around: now, or the customer's test clock
    oldest: datetime
    latest: datetime
    filters: list[tuple[str, Any]]
    group_properties: list[str]
    numeric: bool
    unique: bool
    members: set[str] | None  # the pooled subscriptions an event must name, if any
    spans: "list[InvoicedSpan] | tuple[()]"


def _scope(
    event: dict[str, Any],
    *,
    customers: dict[str, Customer],
    metrics: dict[str, BillableMetric],
    invoiced: "dict[tuple[int, str], list[InvoicedSpan]]",
    now: datetime,
    pooled: "dict[tuple[int, str], set[str]] | None",
) -> _Scope:
    customer = customers.get(event["external_customer_id"])
    if customer is None:
        raise _Rejected(
            EventRejection.UNKNOWN_CUSTOMER,
            gettext("No customer has the external ID %(external_customer_id)r.")
            % {"external_customer_id": event["external_customer_id"]},
        )
    metric = metrics.get(event["metric_code"])
    if metric is None:
        raise _Rejected(
            EventRejection.UNKNOWN_METRIC,
            gettext("No billable metric has the code %(metric_code)r.") % {"metric_code": event["metric_code"]},
        )
    if metric.is_archived:
        raise _Rejected(
            EventRejection.UNKNOWN_METRIC,
            gettext("The billable metric %(metric_code)r is archived and takes no new events.")
            % {"metric_code": metric.code},
        )
    # Test customers live on their test clock: the window is around the clock's time.
    reference = customer.test_clock.frozen_at if customer.test_clock is not None else now
    return _Scope(
        customer=customer,
        metric=metric,
        reference=reference,
        oldest=reference - timedelta(days=settings.USAGE_EVENT_MAX_AGE_DAYS),
        latest=reference + timedelta(minutes=settings.USAGE_EVENT_MAX_FUTURE_MINUTES),
        filters=list(metric.filters.items()),
        group_properties=metric.group_properties,
        numeric=metric.aggregation in NUMERIC_AGGREGATIONS,
        unique=metric.aggregation == MetricAggregation.UNIQUE_COUNT,
        members=(pooled or {}).get((customer.pk, metric.code)),
        spans=invoiced.get((customer.pk, metric.code), ()),
    )


def _validate(
    event: dict[str, Any],
    *,
    customers: dict[str, Customer],
    metrics: dict[str, BillableMetric],
    invoiced: "dict[tuple[int, str], list[InvoicedSpan]]",
    now: datetime,
    pooled: "dict[tuple[int, str], set[str]] | None" = None,
    scopes: "dict[tuple[str, str], _Scope] | None" = None,
) -> _ValidEvent:
    """The event checked against the rules of docs/usage.md. `scopes`, when given, keeps what the checks
    of each (customer, metric) pair need from one event of the batch to the next."""
    pair = (event["external_customer_id"], event["metric_code"])
    scope = scopes.get(pair) if scopes is not None else None
    if scope is None:
        scope = _scope(event, customers=customers, metrics=metrics, invoiced=invoiced, now=now, pooled=pooled)
        if scopes is not None:
            scopes[pair] = scope
    metric = scope.metric

    occurred_at: datetime = event["occurred_at"]
    if occurred_at < scope.oldest:
        raise _Rejected(
            EventRejection.TIMESTAMP_OUT_OF_WINDOW,
            gettext(
                "Timestamp %(occurred_at)s is more than %(usage_event_max_age_days)s days in the past (the "
                "oldest accepted is %(oldest)s)."
            )
            % {
                "occurred_at": _format(occurred_at),
                "usage_event_max_age_days": settings.USAGE_EVENT_MAX_AGE_DAYS,
                "oldest": _format(scope.oldest),
            },
        )
    if occurred_at > scope.latest:
        raise _Rejected(
            EventRejection.TIMESTAMP_OUT_OF_WINDOW,
            gettext(
                "Timestamp %(occurred_at)s is more than %(usage_event_max_future_minutes)s minutes in the "
                "future (the latest accepted is %(latest)s)."
            )
            % {
                "occurred_at": _format(occurred_at),
                "usage_event_max_future_minutes": settings.USAGE_EVENT_MAX_FUTURE_MINUTES,
                "latest": _format(scope.latest),
            },
        )

    properties: dict[str, Any] = event["properties"]
    for name, allowed in scope.filters:
        text = _scalar_text(properties.get(name))
        if text not in allowed:
            shown = gettext("missing") if name not in properties else f"{properties[name]!r}"
            raise _Rejected(
                EventRejection.FILTERED_OUT,
                gettext(
                    "Property %(name)r is %(shown)s; the metric %(metric_code)r counts only %(name)s in %(allowed)s."
                )
                % {
                    "name": name,
                    "shown": shown,
                    "metric_code": metric.code,
                    "allowed": ", ".join(allowed),
                },
            )

    group_values = []
    group_properties = scope.group_properties
    for name in group_properties:  # one property, or two (e.g. region × tier)
        raw = properties.get(name)
        text = raw if type(raw) is str else _scalar_text(raw) or ""
        if not text:
            raise _Rejected(
                EventRejection.MISSING_GROUP,
                gettext(
                    "The metric %(metric_code)r is grouped by %(name)r: give it as a non-empty string or "
                    "number in properties."
                )
                % {"metric_code": metric.code, "name": name},
            )
        if len(text) > MAX_TEXT_LENGTH:
            raise _Rejected(
                EventRejection.INVALID, gettext("Property %(name)r is longer than 255 characters.") % {"name": name}
            )
        if len(group_properties) > 1 and GROUP_KEY_SEPARATOR in text:
            raise _Rejected(
                EventRejection.INVALID,
                gettext(
                    "Property %(name)r contains %(group_key_separator)r, which a metric grouped by two "
                    "properties cannot tell apart."
                )
                % {"name": name, "group_key_separator": GROUP_KEY_SEPARATOR},
            )
        group_values.append(text)
    group_key = group_values[0] if len(group_values) == 1 else group_key_of(group_values)
    if len(group_key) > MAX_TEXT_LENGTH:
        raise _Rejected(
            EventRejection.INVALID,
            gettext("Properties %(properties)s are longer than 255 characters together.")
            % {"properties": " and ".join(map(repr, group_properties))},
        )

    value: Decimal | None = None
    distinct_value = ""
    if scope.numeric:
        value = _parse_value(properties, metric)
    elif scope.unique:
        distinct_value = _scalar_text(properties.get(metric.field_name)) or ""
        if not distinct_value:
            raise _Rejected(
                EventRejection.INVALID_VALUE,
                gettext(
                    "The metric %(metric_code)r counts distinct values of %(field_name)r: give it as a "
                    "non-empty string or number in properties."
                )
                % {"metric_code": metric.code, "field_name": metric.field_name},
            )
        if len(distinct_value) > MAX_TEXT_LENGTH:
            raise _Rejected(
                EventRejection.INVALID_VALUE,
                gettext("Property %(field_name)r is longer than 255 characters.") % {"field_name": metric.field_name},
            )

    members = scope.members
    if members is not None:
        sent = properties.get(POOL_MEMBER_PROPERTY)
        # The subscription's id as a string or an integer, as the billing run reads it back (not 42.0).
        sent_text = sent if isinstance(sent, str) else str(sent) if type(sent) is int else None
        if sent_text not in members:
            raise _Rejected(
                EventRejection.UNKNOWN_SUBSCRIPTION,
                gettext(
                    "The metric %(metric_code)r is billed to this customer by pooled charges, which bill each "
                    "event to the subscription that sent it: name one of the customer's subscriptions on those "
                    "plans in properties.%(pool_member_property)s (%(value)s)."
                )
                % {
                    "metric_code": metric.code,
                    "pool_member_property": POOL_MEMBER_PROPERTY,
                    "value": gettext("missing") if sent is None else gettext("%(sent)r is not one") % {"sent": sent},
                },
            )

    billed_period_end_at = None
    for span in scope.spans:
        if span.started_at <= occurred_at < span.invoiced_until:
            billed_period_end_at = late_period_end(
                span=span, metric=metric, occurred_at=occurred_at, reference=scope.reference
            )
            break

    return _ValidEvent(
        transaction_id=event["transaction_id"],
        customer=scope.customer,
        metric=metric,
        occurred_at=occurred_at,
        properties=properties,
        properties_json=event["properties_json"],
        value=value,
        distinct_value=distinct_value,
        group_key=group_key,
        billed_period_end_at=billed_period_end_at,
    )


def _format(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _scalar_text(value: object) -> str | None:
    """A property as text for filters, groups and distinct values: strings as sent, integers and
    decimals in plain notation; anything else (missing, null, booleans, objects, lists) is None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        number = Decimal(repr(value))
        return str(int(number)) if number == number.to_integral_value() else format(number.normalize(), "f")
    if isinstance(value, Decimal) and value.is_finite():
        return str(int(value)) if value == value.to_integral_value() else format(value.normalize(), "f")
    return None


def _metric_label(metric: BillableMetric) -> str:
    return gettext("The metric %(metric_code)r (%(aggregation)s)") % {
        "metric_code": metric.code,
        "aggregation": metric.get_aggregation_display().lower(),
    }


_VALUE_LIMIT = Decimal(10) ** (VALUE_MAX_DIGITS - VALUE_DECIMAL_PLACES)  # a value's absolute bound (excluded)


def _parse_value(properties: Mapping[str, Any], metric: BillableMetric) -> Decimal:
    name = metric.field_name
    if name not in properties or properties[name] is None:
        raise _Rejected(
            EventRejection.INVALID_VALUE,
            gettext("%(metric)s needs a number in property %(name)r; it is missing.")
            % {"metric": _metric_label(metric), "name": name},
        )
    raw = properties[name]
    number: Decimal | None = None
    if isinstance(raw, bool):
        number = None
    elif isinstance(raw, int | Decimal):
        number = Decimal(raw)
    elif isinstance(raw, float):
        number = Decimal(repr(raw))
    elif isinstance(raw, str):
        try:
            number = Decimal(raw.strip())
        except InvalidOperation:
            number = None
    if number is None or not number.is_finite():
        raise _Rejected(
            EventRejection.INVALID_VALUE,
            gettext("%(metric)s needs a number in property %(name)r, not %(raw)r.")
            % {"metric": _metric_label(metric), "name": name, "raw": raw},
        )
    if number.as_tuple().exponent < -VALUE_DECIMAL_PLACES:  # type: ignore[operator]  # finite: an int
        number = number.normalize()  # "1.50000000" is 1.5
        if number.as_tuple().exponent < -VALUE_DECIMAL_PLACES:  # type: ignore[operator]
            raise _Rejected(
                EventRejection.INVALID_VALUE,
                gettext("Property %(name)r has more than %(value_decimal_places)s decimal places (%(raw)r).")
                % {"name": name, "value_decimal_places": VALUE_DECIMAL_PLACES, "raw": raw},
            )
    if abs(number) >= _VALUE_LIMIT:
        raise _Rejected(
            EventRejection.INVALID_VALUE,
            gettext("Property %(name)r is too large (%(raw)r).") % {"name": name, "raw": raw},
        )
    return number


# Ingestion and the billing run meet on one lock per customer (PostgreSQL advisory locks; SQLite has a
# single writer anyway): batches share it, the billing run takes it alone while it reads a period's
# usage and closes the period. So an event is either stored before the run reads the usage (and
# billed), or checked after the period moved on (and refused as invoiced) — never accepted and lost.
USAGE_LOCK_NAMESPACE = 7_310


def usage_ingest_lock(*, customer_ids: set[int]) -> None:
    if connection.vendor != "postgresql" or not customer_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock_shared(%s, c) FROM unnest(%s::integer[]) AS c ORDER BY c",
            [USAGE_LOCK_NAMESPACE, sorted(customer_ids)],
        )


def usage_billing_lock(*, customer_id: int) -> None:
    """Taken by the billing run, in its transaction, before it reads a customer's usage."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [USAGE_LOCK_NAMESPACE, customer_id])


def usage_billing_lock_many(*, customer_ids: set[int]) -> None:
    """`usage_billing_lock` for a whole chunk of the billing run, taken in one statement (in id order,
    like ingestion's shared locks, so that neither side can deadlock the other)."""
    if connection.vendor != "postgresql" or not customer_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, c) FROM unnest(%s::integer[]) AS c ORDER BY c",
            [USAGE_LOCK_NAMESPACE, sorted(customer_ids)],
        )


@dataclass(frozen=True)
class InvoicedSpan:
    """A subscription's usage already invoiced, [started_at, invoiced_until), and how to find the end
    of the billed period an event in it belongs to."""

    started_at: datetime
    invoiced_until: datetime
    trial_end_at: datetime | None
    anchor_at: datetime
    interval: str
    interval_count: int
    # False when the subscription has nothing more to bill (ended): no invoice would carry late usage.
    bills_again: bool = True

    def period_end(self, moment: datetime) -> datetime:
        """The end of the invoiced period containing `moment`: the trial's end for usage in a trial,
        else the end of the billing period (counted from the anchor), at most `invoiced_until`."""
        if self.trial_end_at is not None and moment < self.trial_end_at:
            return min(self.trial_end_at, self.invoiced_until)
        end = period_containing(self.anchor_at, self.interval, self.interval_count, moment).end
        return min(end, self.invoiced_until)

    def period_start(self, moment: datetime) -> datetime:
        """The start of the invoiced period containing `moment` (see `period_end`)."""
        if self.trial_end_at is not None and moment < self.trial_end_at:
            return self.started_at
        start = period_containing(self.anchor_at, self.interval, self.interval_count, moment).start
        return max(start, self.started_at)


def late_period_end(
    *, span: InvoicedSpan, metric: BillableMetric, occurred_at: datetime, reference: datetime
) -> datetime:
    """For usage dated `occurred_at` in an invoiced span, changed at `reference`: the end of its
    period, if the metric's lateness window after that end is still open; else refused with a reason
    that names the window."""
    period_end = span.period_end(occurred_at)
    if not span.bills_again:
        raise _Rejected(
            EventRejection.LATE_BEYOND_WINDOW,
            gettext(
                "Usage of %(metric_code)r dated %(occurred_at)s belongs to a period already invoiced "
                "(ending %(period_end)s), and the subscription has ended: no invoice would carry it."
            )
            % {"metric_code": metric.code, "occurred_at": _format(occurred_at), "period_end": _format(period_end)},
        )
    window = metric.lateness_window_days
    closes_at = period_end + timedelta(days=window)
    if reference > closes_at:
        days = ngettext("%(count)s day", "%(count)s days", window) % {"count": window}
        raise _Rejected(
            EventRejection.LATE_BEYOND_WINDOW,
            gettext(
                "Usage of %(metric_code)r dated %(occurred_at)s belongs to a period already invoiced "
                "(ending %(period_end)s); the metric accepts late events for %(days)s after a period ends, "
                "until %(closes_at)s."
            )
            % {
                "metric_code": metric.code,
                "occurred_at": _format(occurred_at),
                "period_end": _format(period_end),
                "days": days,
                "closes_at": _format(closes_at),
            },
        )
    return period_end


def _late_events_record(inserted: list[_ValidEvent], *, now: datetime) -> None:
    """A `UsageEventChange` for each late event stored: the next invoice bills its period again."""
    late = [event for event in inserted if event.billed_period_end_at is not None]
    if not late:
        return
    UsageEventChange.objects.bulk_create(
        UsageEventChange(
            kind=UsageChangeKind.LATE,
            transaction_id=event.transaction_id,
            customer_id=event.customer.pk,
            metric_id=event.metric.pk,
            occurred_at=event.occurred_at,
            after=event_snapshot(occurred_at=event.occurred_at, properties=event.properties, value=event.value),
            billed_period_end_at=event.billed_period_end_at,
            recorded_at=now,
            actor="ingestion",
        )
        for event in late
    )


def event_snapshot(*, occurred_at: datetime, properties: dict[str, Any], value: Decimal | None) -> dict[str, Any]:
    """An event as kept in the audit trail."""
    return {
        "timestamp": _format(occurred_at),
        "properties": json.loads(_PROPERTIES_ENCODER.encode(properties)),
        "value": None if value is None else format(value.normalize(), "f"),  # 120.000000 → "120"
    }


def pool_members_by_metric(*, customer_ids: set[int], metric_codes: set[str]) -> dict[tuple[int, str], set[str]]:
    """For each (customer, metric code) that the customer's subscriptions bill only by pooled charges
    (docs/pricing.md, "Pooled allowances"): the ids (as text) of those subscriptions, one of which each
    event must name in `POOL_MEMBER_PROPERTY`. A metric that some subscription of the customer bills
    without a pool is absent: its events need not name a subscription."""
    if not customer_ids or not metric_codes:
        return {}
    subscription_model: Any = apps.get_model("subscriptions", "Subscription")
    rows = subscription_model.objects.filter(
        customer_id__in=customer_ids,
        plan_version__charges__kind=ChargeKind.USAGE,
        plan_version__charges__metric_code__in=metric_codes,
    ).values_list("customer_id", "plan_version__charges__metric_code", "pk", "plan_version__charges__pooled_allowance")
    members: dict[tuple[int, str], set[str]] = defaultdict(set)
    unpooled: set[tuple[int, str]] = set()
    for customer_id, metric_code, subscription_id, allowance in rows:
        if allowance is None:
            unpooled.add((customer_id, metric_code))
        else:
            members[(customer_id, metric_code)].add(str(subscription_id))
    return {key: ids for key, ids in members.items() if key not in unpooled}


def invoiced_spans(*, customer_ids: set[int], metric_codes: set[str]) -> dict[tuple[int, str], list[InvoicedSpan]]:
    """For each (customer, metric code): the spans [started_at, current_period_start_at) of the
    customer's subscriptions whose plan version has a usage charge on the metric.

    The billing run makes a period current when it invoices it, and usage is billed in arrears on
    that invoice (a trial's usage on the first invoice after it): so a subscription's usage before its
    current period's start is invoiced (or being invoiced). It changes only within the metric's
    lateness window, as late usage billed on the next invoice. See docs/usage.md.
    """
    if not customer_ids or not metric_codes:
        return {}
    # By name, not by import: usage and subscriptions sit side by side above the catalog.
    subscription_model: Any = apps.get_model("subscriptions", "Subscription")
    rows = (
        subscription_model.objects.filter(
            customer_id__in=customer_ids,
            plan_version__charges__kind=ChargeKind.USAGE,
            plan_version__charges__metric_code__in=metric_codes,
        )
        .values_list(
            "customer_id", "plan_version__charges__metric_code", "started_at", "current_period_start_at",
            "trial_end_at", "billing_anchor_at", "plan__interval", "plan__interval_count", "next_billing_at",
            "ended_at", "current_period_end_at",
        )
        .distinct()
    )  # fmt: skip
    spans: dict[tuple[int, str], list[InvoicedSpan]] = defaultdict(list)
    for row in rows:
        customer_id, metric_code, started_at, until, trial_end_at, anchor_at, interval, count, next_at = row[:9]
        ended_at, current_period_end_at = row[9:]
        if next_at is None:
            # Ended: its final invoice billed the usage up to the end; nothing bills any more.
            until = max(until, min(ended_at or current_period_end_at, current_period_end_at))
        if until > started_at:
            spans[(customer_id, metric_code)].append(
                InvoicedSpan(started_at, until, trial_end_at, anchor_at, interval, count, next_at is not None)
            )
    return spans


# --- storage ---------------------------------------------------------------------------------------
#
# On PostgreSQL each statement passes its rows as one JSON text, read with `json_to_recordset` (each
# column converted by its type's input function: exact decimals and microseconds): a 1,000-event batch
# is a handful of short statements with one parameter each. orjson writes the text in C; arrays of
# typed values (`unnest(%s::numeric[], …)`, as before) cost the driver about three times more Python
# time to adapt, element by element (docs/performance.md, section 1). Other databases (SQLite in
# development and tests) get the same statements with a multi-row VALUES list.


def _stored_transaction_ids(transaction_ids: list[str]) -> set[str]:
    """Those of `transaction_ids` already taken (`UsageEventKey`, in any generation kept: keys.py): by a
    stored event, a voided one (its transaction id stays taken, so sending it again is a duplicate, not
    a new event), or one of an archived month."""
    return taken_transaction_ids(transaction_ids)


def _insert_rows(
    cursor: Any, *, table: str, fields: "list[DjangoField[Any, Any]]", rows: list[list[Any]], suffix: str
) -> list[tuple[Any, ...]]:
    """`INSERT INTO table (fields) <rows> <suffix>`, in row order; the rows RETURNING gives back, if any.
    Values are the Python values of the model fields (on PostgreSQL, JSON already as text)."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields if f.column is not None)
    returned: list[tuple[Any, ...]] = []
    if connection.vendor == "postgresql":
        source, parameter = _json_rows(fields, rows)
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {source} {suffix}",  # noqa: S608
            [parameter],
        )
        return cursor.fetchall() if "RETURNING" in suffix else []
    for chunk in _chunks(rows, INSERT_CHUNK):
        params: list[Any] = []
        for values in chunk:
            params += [f.get_db_prep_save(value, connection) for f, value in zip(fields, values, strict=True)]
        placeholders = ", ".join(["(" + ", ".join(["%s"] * len(fields)) + ")"] * len(chunk))
        cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {placeholders} {suffix}", params)  # noqa: S608
        if "RETURNING" in suffix:
            returned += cursor.fetchall()
    return returned


def _json_default(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)  # exact: numeric's input function reads it back as it was
    raise TypeError(f"{type(value).__name__} is not a column value")


def _json_rows(fields: "list[DjangoField[Any, Any]]", rows: list[list[Any]]) -> tuple[str, str]:
    """PostgreSQL: the rows as a source for `SELECT … FROM`, `ROWS FROM (json_to_recordset(%s::json) AS
    (<columns with their types>)) WITH ORDINALITY AS batch(<columns>, position)`, and the JSON text
    for its parameter. A JSON field's value is given as its JSON text (stored as it is); decimals as
    strings, times as ISO 8601 with their offset."""
    names = [f.column for f in fields]
    json_fields = [isinstance(f, JSONField) for f in fields]
    if any(json_fields):
        rows = [
            [orjson.Fragment(value) if is_json else value for value, is_json in zip(row, json_fields, strict=True)]
            for row in rows
        ]
    text = orjson.dumps([dict(zip(names, row, strict=True)) for row in rows], default=_json_default).decode()
    quote = connection.ops.quote_name
    definitions = ", ".join(f"{quote(str(f.column))} {f.db_type(connection) or ''}" for f in fields)
    columns = ", ".join(quote(str(f.column)) for f in fields)
    return (
        f"ROWS FROM (json_to_recordset(%s::json) AS ({definitions})) WITH ORDINALITY AS batch({columns}, position)",
        text,
    )


_EVENT_COLUMNS = (
    "transaction_id", "customer", "metric", "occurred_at", "properties",
    "value", "distinct_value", "group_key", "received_at",
)  # fmt: skip
_KEY_COLUMNS = ("transaction_id", "customer", "metric", "occurred_at")


def _insert_events(valid: list[_ValidEvent], *, received_at: datetime) -> list[_ValidEvent]:
    """Claim each event's transaction id in `UsageEventKey` and insert the events whose id this batch
    claimed (in batch order: transaction id order); return those inserted (with ids).

    The key's primary key decides between batches that carry the same transaction id at the same
    time (`ON CONFLICT (transaction_id) DO NOTHING`: the second waits for the first to commit, then
    skips it), in every month: the event table's own keys include the event time (its monthly
    partitions on PostgreSQL), so they could not. On PostgreSQL both inserts are one statement; other
    databases run them one after the other, with the same result."""
    if not valid:
        return []
    fields = _fields(UsageEvent, _EVENT_COLUMNS)
    key_fields = _fields(UsageEventKey, _KEY_COLUMNS)
    quote = connection.ops.quote_name
    key = quote("transaction_id")
    events_table, keys_table = quote(UsageEvent._meta.db_table), quote(UsageEventKey._meta.db_table)
    postgresql = connection.vendor == "postgresql"
    rows = [
        [
            event.transaction_id, event.customer.pk, event.metric.pk, event.occurred_at,
            event.properties_json if postgresql else event.properties,
            event.value, event.distinct_value, event.group_key, received_at,
        ]
        for event in valid
    ]  # fmt: skip
    by_transaction_id = {event.transaction_id: event for event in valid}
    with connection.cursor() as cursor:
        if postgresql:
            columns = [quote(f.column) for f in fields if f.column is not None]
            key_columns = ", ".join(quote(f.column) for f in key_fields if f.column is not None)
            source, parameter = _json_rows(fields, rows)
            cursor.execute(
                f"WITH batch AS (SELECT * FROM {source}), "  # noqa: S608
                f"claimed AS (INSERT INTO {keys_table} ({key_columns}) SELECT {key_columns} FROM batch "
                f"ORDER BY position ON CONFLICT ({key}) DO NOTHING RETURNING {key}) "
                f"INSERT INTO {events_table} ({', '.join(columns)}) "
                f"SELECT {', '.join(f'batch.{column}' for column in columns)} FROM batch JOIN claimed USING ({key}) "
                f"ORDER BY batch.position RETURNING {quote('id')}, {key}",
                [parameter],
            )
            returned = cursor.fetchall()
        else:
            claimed = {
                transaction_id
                for (transaction_id,) in _insert_rows(
                    cursor,
                    table=keys_table,
                    fields=key_fields,
                    rows=[row[:4] for row in rows],
                    suffix=f"ON CONFLICT ({key}) DO NOTHING RETURNING {key}",
                )  # fmt: skip
            }
            returned = _insert_rows(
                cursor, table=events_table, fields=fields, rows=[row for row in rows if row[0] in claimed],
                suffix=f"RETURNING {quote('id')}, {key}",
            )  # fmt: skip
    inserted: list[_ValidEvent] = []
    for event_id, transaction_id in returned:
        event = by_transaction_id[transaction_id]
        event.id = event_id
        inserted.append(event)
    inserted.sort(key=lambda event: event.transaction_id)
    return inserted


def _fields(model: type[Model], names: Sequence[str]) -> "list[DjangoField[Any, Any]]":
    fields = [model._meta.get_field(name) for name in names]
    assert all(isinstance(f, DjangoField) for f in fields)
    return cast("list[DjangoField[Any, Any]]", fields)


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def hour_of(moment: datetime) -> datetime:
    """The start of the hour containing `moment` (UTC): the rollup row it belongs to."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass
class _RollupDelta:
    event_count: int = 0
    value_sum: Decimal = Decimal(0)
    value_max: Decimal | None = None
    latest: tuple[datetime, int, Decimal | None] | None = None


def _rollups_add(inserted: list[_ValidEvent]) -> None:
    """Add the inserted events to their hourly rollups (and distinct values), one upsert per batch.

    Rows are upserted in key order, so concurrent batches lock rollup rows in the same order."""
    if not inserted:
        return
    deltas: dict[tuple[int, int, str, datetime], _RollupDelta] = defaultdict(_RollupDelta)
    distinct: set[tuple[int, int, str, datetime, str]] = set()
    for event in inserted:
        assert event.id is not None
        moment = event.occurred_at  # in UTC (validation made it so): its hour without converting it again
        hour = moment.replace(minute=0, second=0, microsecond=0) if moment.tzinfo is UTC else hour_of(moment)
        key = (event.customer.pk, event.metric.pk, event.group_key, hour)
        delta = deltas[key]
        delta.event_count += 1
        if event.value is not None:
            delta.value_sum += event.value
            delta.value_max = event.value if delta.value_max is None else max(delta.value_max, event.value)
        candidate = (event.occurred_at, event.id, event.value)
        if delta.latest is None or candidate[:2] > delta.latest[:2]:
            delta.latest = candidate
        if event.distinct_value:
            distinct.add((*key, event.distinct_value))

    fields = _fields(
        UsageRollup,
        (
            "customer", "metric", "group_key", "hour", "event_count",
            "value_sum", "value_max", "latest_at", "latest_event_id", "latest_value",
        ),
    )  # fmt: skip
    quote = connection.ops.quote_name
    table = quote(UsageRollup._meta.db_table)
    column = {f.name: quote(f.column or f.name) for f in fields}
    newer = (
        f"(excluded.{column['latest_at']}, excluded.{column['latest_event_id']}) > "
        f"({table}.{column['latest_at']}, {table}.{column['latest_event_id']})"
    )
    updates = {
        "event_count": f"{table}.{column['event_count']} + excluded.{column['event_count']}",
        "value_sum": f"{table}.{column['value_sum']} + excluded.{column['value_sum']}",
        "value_max": (
            f"CASE WHEN excluded.{column['value_max']} IS NULL THEN {table}.{column['value_max']} "
            f"WHEN {table}.{column['value_max']} IS NULL OR excluded.{column['value_max']} > "
            f"{table}.{column['value_max']} THEN excluded.{column['value_max']} ELSE {table}.{column['value_max']} END"
        ),
        **{
            name: f"CASE WHEN {newer} THEN excluded.{column[name]} ELSE {table}.{column[name]} END"
            for name in ("latest_at", "latest_event_id", "latest_value")
        },
    }
    conflict = ", ".join(column[name] for name in ("customer", "metric", "group_key", "hour"))
    assignments = ", ".join(f"{column[name]} = {expression}" for name, expression in updates.items())
    rows = []
    for (customer_id, metric_id, group_key, hour), delta in sorted(deltas.items(), key=lambda item: item[0]):
        assert delta.latest is not None
        latest_at, latest_event_id, latest_value = delta.latest
        rows.append([
            customer_id, metric_id, group_key, hour, delta.event_count,
            delta.value_sum, delta.value_max, latest_at, latest_event_id, latest_value,
        ])  # fmt: skip
    with connection.cursor() as cursor:
        upsert = f"ON CONFLICT ({conflict}) DO UPDATE SET {assignments}"
        _insert_rows(cursor, table=table, fields=fields, rows=rows, suffix=upsert)
    weighted = {event.metric.pk for event in inserted if event.metric.aggregation == MetricAggregation.WEIGHTED_SUM}
    if weighted:
        _gauge_hours_rebuild([key for key in sorted(deltas) if key[1] in weighted])
    _interval_rollups_add([event for event in inserted if event.metric.aggregation == MetricAggregation.PERCENTILE])
    if distinct:
        UsageDistinctValue.objects.bulk_create(
            [
                UsageDistinctValue(customer_id=c, metric_id=m, group_key=g, hour=h, value=v)
                for c, m, g, h, v in sorted(distinct)
            ],
            ignore_conflicts=True,
            batch_size=INSERT_CHUNK,
        )


# --- weighted sums and percentiles ------------------------------------------------------------------


def seconds_of(duration: timedelta) -> Decimal:
    """A duration in seconds, exactly (microseconds included)."""
    return Decimal(duration.days * 86_400 + duration.seconds) + Decimal(duration.microseconds).scaleb(-6)


@dataclass(frozen=True)
class GaugeSpan:
    """What a weighted-sum metric's events in a span [start, end) say on their own: the first event's
    time, Σ value × seconds each value held within the span (until the next event, or `end`), and the
    last value (the level the span hands on)."""

    first_at: datetime
    level_seconds: Decimal
    last_value: Decimal


def gauge_span(rows: Iterable[tuple[datetime, Decimal | None]], *, end: datetime) -> GaugeSpan | None:
    """The `GaugeSpan` of events given in (occurred_at, id) order; None without events."""
    first_at: datetime | None = None
    previous: tuple[datetime, Decimal] | None = None
    total = Decimal(0)
    for occurred_at, value in rows:
        if previous is None:
            first_at = occurred_at
        else:
            total += previous[1] * seconds_of(occurred_at - previous[0])
        previous = (occurred_at, value if value is not None else Decimal(0))
    if previous is None or first_at is None:
        return None
    total += previous[1] * seconds_of(end - previous[0])
    return GaugeSpan(first_at=first_at, level_seconds=total, last_value=previous[1])


def _gauge_hours_rebuild(keys: list[tuple[int, int, str, datetime]]) -> None:
    """Set the first event and the level-seconds of these hourly rollups of weighted-sum metrics from
    the hour's events (an event added anywhere in the hour changes how long its predecessor held)."""
    for customer_id, metric_id, group_key, hour in keys:
        scope = {"customer_id": customer_id, "metric_id": metric_id, "group_key": group_key}
        rows = (
            UsageEvent.objects.filter(**scope, occurred_at__gte=hour, occurred_at__lt=hour + timedelta(hours=1))
            .order_by("occurred_at", "id")
            .values_list("occurred_at", "value")
        )
        span = gauge_span(rows, end=hour + timedelta(hours=1))
        if span is not None:
            UsageRollup.objects.filter(**scope, hour=hour).update(
                first_at=span.first_at, level_seconds=span.level_seconds
            )


def interval_start_of(moment: datetime, minutes: int) -> datetime:
    """The start of the sample interval containing `moment`: intervals of `minutes` (a divisor of 60)
    counted from the start of its UTC hour."""
    hour = hour_of(moment)
    offset = (moment.astimezone(UTC) - hour) // timedelta(minutes=minutes)
    return hour + offset * timedelta(minutes=minutes)


def _interval_rollups_add(inserted: list[_ValidEvent]) -> None:
    """Add events of percentile metrics to the sums of their sample intervals (one upsert, key order)."""
    if not inserted:
        return
    totals: dict[tuple[int, int, str, datetime], tuple[int, Decimal]] = {}
    for event in inserted:
        assert event.metric.interval_minutes is not None
        key = (
            event.customer.pk,
            event.metric.pk,
            event.group_key,
            interval_start_of(event.occurred_at, event.metric.interval_minutes),
        )
        count, total = totals.get(key, (0, Decimal(0)))
        totals[key] = (count + 1, total + (event.value or Decimal(0)))
    fields = _fields(
        UsageIntervalRollup, ("customer", "metric", "group_key", "interval_start", "event_count", "value_sum")
    )
    quote = connection.ops.quote_name
    table = quote(UsageIntervalRollup._meta.db_table)
    column = {f.name: quote(f.column or f.name) for f in fields}
    conflict = ", ".join(column[name] for name in ("customer", "metric", "group_key", "interval_start"))
    assignments = ", ".join(
        f"{column[name]} = {table}.{column[name]} + excluded.{column[name]}" for name in ("event_count", "value_sum")
    )
    rows = [[*key, count, total] for key, (count, total) in sorted(totals.items())]
    with connection.cursor() as cursor:
        _insert_rows(
            cursor,
            table=table,
            fields=fields,
            rows=rows,
            suffix=f"ON CONFLICT ({conflict}) DO UPDATE SET {assignments}",
        )
