"""Corrections: void or replace a usage event by its transaction id.

While the event's period is open (not yet invoiced) the correction simply changes the usage that
will be billed. Once the period is invoiced, the correction is accepted within the metric's
lateness window after the period's end, like a late event, and the difference is billed (or
credited) on the subscription's next invoice (apps.billing.services.late_usage); past the window it
is refused with a reason that says so. Either way the event's hourly rollups are rebuilt from the
events in the same transaction, and a `UsageEventChange` row keeps the event as it was and as it is.
See docs/usage.md, "Corrections".
"""

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils.translation import gettext

from apps.accounts.models import Customer
from apps.core import clock
from apps.core.errors import Conflict, NotFound, ValidationFailed

from .constants import UsageChangeKind
from .keys import Key, key_lock, key_occurred_at_set
from .models import (
    UsageDistinctValue,
    UsageEvent,
    UsageEventChange,
    UsageIntervalRollup,
    UsageRollup,
)
from .services import (
    _parse_shape,
    _Rejected,
    _rollups_add,
    _validate,
    _ValidEvent,
    event_snapshot,
    hour_of,
    invoiced_spans,
    late_period_end,
    pool_members_by_metric,
    usage_ingest_lock,
)
from .signals import usage_recorded_send_on_commit

RollupKey = tuple[int, int, str, datetime]  # customer id, metric id, group key, hour


@transaction.atomic
def usage_event_void(*, transaction_id: str, now: datetime, actor: str = "", reason: str = "") -> UsageEventChange:
    """Void a stored event: it no longer counts, its rollups are rebuilt, and its transaction id stays
    taken (sending it again is a duplicate). A period already invoiced gets the difference on the
    next invoice, within the metric's lateness window."""
    now = clock.ensure_aware(now)
    event, _key = _locked_event(transaction_id)
    customer = event.customer
    billed_period_end_at = _billed_period_end(customer=customer, event=event, occurred_at=event.occurred_at, now=now)
    before = event_snapshot(occurred_at=event.occurred_at, properties=event.properties, value=event.value)
    key = _rollup_key(event)
    event.delete()
    _rollups_rebuild({key})
    usage_recorded_send_on_commit({customer.pk})
    return UsageEventChange.objects.create(
        kind=UsageChangeKind.VOID, transaction_id=transaction_id, customer=customer, metric=event.metric,
        occurred_at=event.occurred_at, before=before, billed_period_end_at=billed_period_end_at,
        recorded_at=now, actor=actor, reason=reason,
    )  # fmt: skip


@transaction.atomic
def usage_event_replace(
    *,
    transaction_id: str,
    timestamp: object,
    properties: Mapping[str, Any] | None,
    now: datetime,
    actor: str = "",
    reason: str = "",
) -> UsageEventChange:
    """Replace a stored event's timestamp and properties (its customer and metric stay), checked by
    the rules of ingestion. Both the old and the new time must be in an open period or within the
    lateness window of an invoiced one; the difference of an invoiced period is billed on the next
    invoice."""
    now = clock.ensure_aware(now)
    event, key = _locked_event(transaction_id)
    customer, metric = event.customer, event.metric
    old_billed_end = _billed_period_end(customer=customer, event=event, occurred_at=event.occurred_at, now=now)
    raw = {
        "transaction_id": transaction_id,
        "external_customer_id": customer.external_id,
        "metric_code": metric.code,
        "timestamp": timestamp,
        "properties": properties,
    }
    try:
        parsed = _parse_shape(raw)
        valid = _validate(
            parsed,
            customers={customer.external_id: customer},
            metrics={metric.code: metric},
            invoiced=invoiced_spans(customer_ids={customer.pk}, metric_codes={metric.code}),
            now=now,
            pooled=pool_members_by_metric(customer_ids={customer.pk}, metric_codes={metric.code}),
        )
    except _Rejected as exc:
        raise ValidationFailed(exc.reason, fields={"event": [exc.reason]}, code=exc.code) from exc
    before = event_snapshot(occurred_at=event.occurred_at, properties=event.properties, value=event.value)
    old_key, previous_occurred_at = _rollup_key(event), event.occurred_at
    event.occurred_at = valid.occurred_at
    event.properties = valid.properties
    event.value = valid.value
    event.distinct_value = valid.distinct_value
    event.group_key = valid.group_key
    event.save(update_fields=["occurred_at", "properties", "value", "distinct_value", "group_key"])
    key_occurred_at_set(key, occurred_at=event.occurred_at)
    _rollups_rebuild({old_key, _rollup_key(event)})
    usage_recorded_send_on_commit({customer.pk})
    billed_ends = [end for end in (old_billed_end, valid.billed_period_end_at) if end is not None]
    return UsageEventChange.objects.create(
        kind=UsageChangeKind.REPLACE, transaction_id=transaction_id, customer=customer, metric=metric,
        occurred_at=event.occurred_at, previous_occurred_at=previous_occurred_at, before=before,
        after=event_snapshot(occurred_at=event.occurred_at, properties=event.properties, value=event.value),
        billed_period_end_at=max(billed_ends) if billed_ends else None, recorded_at=now, actor=actor, reason=reason,
    )  # fmt: skip


def _locked_event(transaction_id: str) -> tuple[UsageEvent, Key]:
    """The event, locked, found through its key (in any generation kept), and the key: the key row is
    locked first (corrections of one event wait for each other, and a replace that moved the event to
    another month is seen), then the event is read by customer, metric and time: one month's partition,
    through the window index."""
    key = key_lock(transaction_id)  # in whichever generation of the key table holds it (keys.py)
    event = None
    if key is not None:
        event = (
            UsageEvent.objects.select_for_update(of=("self",))
            .select_related("customer__test_clock", "metric")
            .filter(
                customer_id=key.customer_id,
                metric_id=key.metric_id,
                occurred_at=key.occurred_at,
                transaction_id=transaction_id,
            )
            .first()
        )
    if event is None:
        if UsageEventChange.objects.filter(kind=UsageChangeKind.VOID, transaction_id=transaction_id).exists():
            raise Conflict(
                gettext("The event %(transaction_id)r is already voided.") % {"transaction_id": transaction_id},
                fields={"transaction_id": [gettext("This event is already voided.")]},
            )
        raise NotFound(
            gettext("No usage event has the transaction id %(transaction_id)r.") % {"transaction_id": transaction_id},
            fields={"transaction_id": [gettext("No usage event has this transaction id.")]},
        )
    # Ingestion and the billing run meet on this lock: a period cannot close under the correction.
    usage_ingest_lock(customer_ids={event.customer_id})
    assert key is not None
    return event, key


def _billed_period_end(
    *, customer: Customer, event: UsageEvent, occurred_at: datetime, now: datetime
) -> datetime | None:
    """None when usage at `occurred_at` is in an open period; the end of its invoiced period when the
    lateness window is still open; refused (4xx) past the window."""
    reference = customer.test_clock.frozen_at if customer.test_clock is not None else now
    spans = invoiced_spans(customer_ids={customer.pk}, metric_codes={event.metric.code})
    for span in spans.get((customer.pk, event.metric.code), ()):
        if span.started_at <= occurred_at < span.invoiced_until:
            try:
                return late_period_end(span=span, metric=event.metric, occurred_at=occurred_at, reference=reference)
            except _Rejected as exc:
                raise ValidationFailed(exc.reason, fields={"transaction_id": [exc.reason]}, code=exc.code) from exc
    return None


def _rollup_key(event: UsageEvent) -> RollupKey:
    return (event.customer_id, event.metric_id, event.group_key, hour_of(event.occurred_at))


def _rollups_rebuild(keys: Iterable[RollupKey]) -> None:
    """Recompute the rollups (distinct values, interval sums, gauge levels) of these hours from the
    events stored now: a max, a latest value or a distinct value cannot be taken back by subtraction."""
    for customer_id, metric_id, group_key, hour in sorted(keys):
        scope = {"customer_id": customer_id, "metric_id": metric_id, "group_key": group_key, "hour": hour}
        UsageRollup.objects.filter(**scope).delete()
        UsageDistinctValue.objects.filter(**scope).delete()
        UsageIntervalRollup.objects.filter(  # percentile metrics: intervals never straddle two hours
            customer_id=customer_id, metric_id=metric_id, group_key=group_key,
            interval_start__gte=hour, interval_start__lt=hour + timedelta(hours=1),
        ).delete()  # fmt: skip
        events = UsageEvent.objects.filter(
            customer_id=customer_id, metric_id=metric_id, group_key=group_key,
            occurred_at__gte=hour, occurred_at__lt=hour + timedelta(hours=1),
        ).select_related("customer", "metric")  # fmt: skip
        _rollups_add(
            [
                _ValidEvent(
                    transaction_id=event.transaction_id,
                    customer=event.customer,
                    metric=event.metric,
                    occurred_at=event.occurred_at,
                    properties=event.properties,
                    properties_json="",
                    value=event.value,
                    distinct_value=event.distinct_value,
                    group_key=event.group_key,
                    id=event.id,
                )  # fmt: skip
                for event in events
            ]
        )
