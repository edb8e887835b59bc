"""Alerts: create, change, delete (staff and customers' budgets), evaluate, notify.

Evaluation (`alerts_evaluate_customer`) measures each active alert of one customer from the usage
rollups (usage alerts) or the upcoming invoice (spend alerts, `subscription_upcoming_invoice`), and
records every threshold reached and not yet recorded for the period. The record is the guard: a unique
constraint on (alert, threshold, period start) means two evaluations at once record it once, and only
the one that recorded it emails and makes the webhook event. Usage ingestion only asks for an
evaluation (`alerts_evaluation_request`), debounced through the cache; the evaluation runs in a Celery
task, so ingestion does not wait for it. See docs/alerts.md.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext
from kombu.exceptions import OperationalError as BrokerUnavailable

from apps.accounts.models import Customer
from apps.accounts.selectors import customer_invoice_recipients, customer_now
from apps.billing.services import subscription_upcoming_invoice
from apps.catalog.models import BillableMetric
from apps.core.errors import ApplicationError, NotFound, ValidationFailed
from apps.core.money import currency_decimal_places, quantize_amount
from apps.core.queue import enqueue
from apps.subscriptions.models import Subscription
from apps.usage.selectors import usage_aggregate

from .constants import (
    LIVE_STATUSES,
    MAX_THRESHOLDS,
    THRESHOLD_DECIMAL_PLACES,
    THRESHOLD_MAX_DIGITS,
    AlertKind,
    AlertOrigin,
)
from .models import Alert, AlertCrossing, plain_decimal

PENDING_KEY = "alerts:evaluate:{customer_id}"


# --- Alerts and budgets ------------------------------------------------------------------------------


def _live_subscriptions(customer_id: int) -> list[Subscription]:
    return list(
        Subscription.objects.filter(customer_id=customer_id, status__in=LIVE_STATUSES)
        .select_related("plan_version")
        .prefetch_related("plan_version__charges")
        .order_by("started_at", "id")
    )


def _metric_codes(subscription: Subscription) -> set[str]:
    return {charge.metric_code for charge in subscription.plan_version.charges.all() if charge.metric_code}


def _clean_thresholds(raw: Any, *, kind: str, currency: str) -> list[str]:
    """Thresholds as sorted, distinct decimal strings; refused with a field error when one is not a
    number above zero, has too many decimals, or when there are none or too many."""
    if not isinstance(raw, list | tuple) or not raw:
        message = gettext("Give at least one threshold.")
        raise ValidationFailed(message, fields={"thresholds": [message]})
    if len(raw) > MAX_THRESHOLDS:
        message = gettext("Give at most %(count)d thresholds.") % {"count": MAX_THRESHOLDS}
        raise ValidationFailed(message, fields={"thresholds": [message]})
    places = min(THRESHOLD_DECIMAL_PLACES, currency_decimal_places(currency)) if kind == AlertKind.SPEND else None
    places = THRESHOLD_DECIMAL_PLACES if places is None else places
    values: set[Decimal] = set()
    for item in raw:
        try:
            value = Decimal(str(item).strip())
        except (InvalidOperation, ValueError):
            value = Decimal("NaN")
        if not value.is_finite() or value <= 0:
            message = gettext("Each threshold must be a number above zero (got %(value)s).") % {"value": item}
            raise ValidationFailed(message, fields={"thresholds": [message]})
        exponent = value.normalize().as_tuple().exponent
        if isinstance(exponent, int) and -exponent > places:
            message = gettext("A threshold has at most %(places)d decimals (got %(value)s).") % {
                "places": places,
                "value": item,
            }
            raise ValidationFailed(message, fields={"thresholds": [message]})
        if value.adjusted() >= THRESHOLD_MAX_DIGITS - THRESHOLD_DECIMAL_PLACES:
            message = gettext("The threshold %(value)s is too large.") % {"value": item}
            raise ValidationFailed(message, fields={"thresholds": [message]})
        values.add(value)
    return [_plain(value) for value in sorted(values)]


def _plain(value: Decimal) -> str:
    return plain_decimal(value)


def _clean_scope(
    *, customer: Customer, subscription: Subscription | None, kind: str, metric: BillableMetric | None
) -> None:
    if kind not in AlertKind.values:
        raise ValidationFailed(
            gettext("Unknown kind %(kind)r.") % {"kind": kind},
            fields={"kind": [gettext("Use one of: %(values)s.") % {"values": ", ".join(AlertKind.values)}]},
        )
    if subscription is not None and subscription.customer_id != customer.pk:
        raise ValidationFailed(
            gettext("The subscription belongs to another customer."),
            fields={"subscription": [gettext("This subscription is not the customer's.")]},
        )
    if kind == AlertKind.SPEND:
        if metric is not None:
            raise ValidationFailed(
                gettext("A spend alert watches money, not a metric."),
                fields={"metric": [gettext("Leave the metric empty for a spend alert.")]},
            )
        return
    if metric is None:
        raise ValidationFailed(
            gettext("A usage alert needs a metric."), fields={"metric": [gettext("Choose the metric to watch.")]}
        )
    watched = [subscription] if subscription is not None else _live_subscriptions(customer.pk)
    if not any(metric.code in _metric_codes(candidate) for candidate in watched):
        message = gettext("The metric %(metric)s is not on the plan of %(whom)s.") % {
            "metric": metric.code,
            "whom": gettext("this subscription")
            if subscription is not None
            else gettext("the customer's subscriptions"),
        }
        raise ValidationFailed(message, fields={"metric": [message]})


def _resolve_metric(metric: BillableMetric | str | None) -> BillableMetric | None:
    if isinstance(metric, BillableMetric):
        return metric
    if not metric:
        return None
    found = BillableMetric.objects.filter(code=metric).first()
    if found is None:
        message = gettext("No billable metric has the code %(code)s.") % {"code": metric}
        raise ValidationFailed(message, fields={"metric": [message]})
    return found


@transaction.atomic
def alert_create(
    *,
    customer: Customer,
    kind: str,
    thresholds: list[Any],
    subscription: Subscription | None = None,
    metric: BillableMetric | str | None = None,
    name: str = "",
    is_hard_limit: bool = False,
    is_active: bool = True,
    origin: str = AlertOrigin.STAFF,
    actor: Any = None,
) -> Alert:
    """An alert (staff) or a budget (`origin="customer"`), checked before anything is saved; its first
    evaluation is queued after commit (usage so far may already cross a threshold)."""
    resolved = _resolve_metric(metric)
    _clean_scope(customer=customer, subscription=subscription, kind=kind, metric=resolved)
    alert = Alert.objects.create(
        customer=customer,
        subscription=subscription,
        kind=kind,
        metric=resolved,
        thresholds=_clean_thresholds(thresholds, kind=kind, currency=customer.currency),
        name=name.strip(),
        is_hard_limit=is_hard_limit,
        is_active=is_active,
        origin=origin,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    _evaluate_on_commit(customer.pk)
    return alert


def _get(alert_id: int, customer_id: int | None, origin: str | None) -> Alert:
    alerts = Alert.objects.select_for_update().select_related("customer")
    if customer_id is not None:
        alerts = alerts.filter(customer_id=customer_id)
    if origin is not None:
        alerts = alerts.filter(origin=origin)
    alert = alerts.filter(pk=alert_id).first()
    if alert is None:
        raise NotFound(gettext("Alert %(alert_id)s does not exist.") % {"alert_id": alert_id})
    return alert


UPDATABLE = frozenset({"thresholds", "name", "is_hard_limit", "is_active"})


@transaction.atomic
def alert_update(*, alert_id: int, customer_id: int | None = None, origin: str | None = None, **changes: Any) -> Alert:
    """Change an alert's thresholds, name, hard-limit flag or active flag (what it watches stays: make
    a new alert for something else). `customer_id`/`origin` scope the change (a customer's own budgets)."""
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValidationFailed(
            gettext("These fields cannot be changed."),
            fields={
                name: [gettext("What an alert watches cannot change: make a new alert.")] for name in sorted(unknown)
            },
        )
    alert = _get(alert_id, customer_id, origin)
    if "thresholds" in changes:
        changes["thresholds"] = _clean_thresholds(
            changes["thresholds"], kind=alert.kind, currency=alert.customer.currency
        )
    if "name" in changes:
        changes["name"] = changes["name"].strip()
    for name, value in changes.items():
        setattr(alert, name, value)
    alert.save(update_fields=[*changes, "updated_at"])
    _evaluate_on_commit(alert.customer_id)
    return alert


@transaction.atomic
def alert_delete(*, alert_id: int, customer_id: int | None = None, origin: str | None = None) -> None:
    """Delete an alert and its crossings (turn it off instead to keep its history)."""
    _get(alert_id, customer_id, origin).delete()


# --- Evaluation -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    value: Decimal
    period_start_at: datetime
    period_end_at: datetime
    currency: str = ""


def _spend(subscriptions: list[Subscription], now: datetime, currency: str) -> Decimal:
    """What the upcoming invoices of these subscriptions come to (amount due), in the currency."""
    total = Decimal(0)
    for subscription in subscriptions:
        if subscription.next_billing_at is None or subscription.currency != currency:
            continue
        try:
            upcoming = subscription_upcoming_invoice(subscription_id=subscription.pk, now=now)
        except ApplicationError:  # nothing more to bill (e.g. ends at period end with nothing owed)
            continue
        total += upcoming.amount_due
    return total


def _measure(alert: Alert, *, live: list[Subscription], now: datetime) -> Measure | None:
    """The alert's current value and the period it belongs to; None when nothing is watched (the
    subscription ended, or the customer has no live subscription)."""
    if alert.subscription_id is not None:
        watched = [subscription for subscription in live if subscription.pk == alert.subscription_id]
    else:
        watched = live
    if alert.kind == AlertKind.USAGE:
        assert alert.metric is not None
        watched = [subscription for subscription in watched if alert.metric.code in _metric_codes(subscription)]
    if not watched:
        return None
    # The period: the watched subscription's, or for a customer, its oldest live subscription's.
    anchor = watched[0]
    start, end = anchor.current_period_start_at, anchor.current_period_end_at
    if alert.kind == AlertKind.USAGE:
        assert alert.metric is not None
        per_group = usage_aggregate(customer=alert.customer, metric=alert.metric, start=start, end=end)
        return Measure(sum(per_group.values(), Decimal(0)), start, end)
    currency = alert.customer.currency
    return Measure(_spend(watched, now, currency), start, end, currency)


def alerts_evaluate_customer(*, customer_id: int, now: datetime | None = None) -> list[AlertCrossing]:
    """Evaluate the customer's active alerts; record, email (after commit) and publish each threshold
    newly reached in its period. Returns the crossings this call recorded (none twice, ever)."""
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        return []
    alerts = list(Alert.objects.filter(customer_id=customer_id, is_active=True).select_related("customer", "metric"))
    if not alerts:
        return []
    now = now or customer_now(customer)
    live = _live_subscriptions(customer_id)
    recorded: list[AlertCrossing] = []
    for alert in alerts:
        measure = _measure(alert, live=live, now=now)
        if measure is None:
            continue
        reached = [threshold for threshold in alert.threshold_values if measure.value >= threshold]
        if not reached:
            continue
        known = set(
            AlertCrossing.objects.filter(alert=alert, period_start_at=measure.period_start_at).values_list(
                "threshold", flat=True
            )
        )
        for threshold in reached:
            if threshold in known:
                continue
            crossing = _record(alert, threshold, measure, now)
            if crossing is not None:
                recorded.append(crossing)
    return recorded


def _record(alert: Alert, threshold: Decimal, measure: Measure, now: datetime) -> AlertCrossing | None:
    """Insert the crossing; None when another evaluation recorded it first (the unique constraint)."""
    try:
        with transaction.atomic():
            crossing = AlertCrossing.objects.create(
                alert=alert,
                customer_id=alert.customer_id,
                threshold=threshold,
                value=measure.value,
                currency=measure.currency,
                period_start_at=measure.period_start_at,
                period_end_at=measure.period_end_at,
                crossed_at=now,
                is_limit=alert.limit is not None and threshold == alert.limit,
            )
            transaction.on_commit(lambda: _notify_enqueue(crossing.pk))
    except IntegrityError:
        return None
    return crossing


def _notify_enqueue(crossing_id: int) -> None:
    from .tasks import alert_crossing_notify_task

    enqueue(alert_crossing_notify_task, crossing_id)


# --- Asking for an evaluation (ingestion's side) ------------------------------------------------------


def alerts_evaluation_request(*, customer_ids: list[int]) -> list[int]:
    """Queue an evaluation of the customers with active alerts (one task), at most one per customer every
    `ALERTS_EVALUATION_DELAY_SECONDS` (the pending mark is a cache key; the evaluation removes it
    before it reads, so usage recorded after that asks again). Returns the customers queued.

    Called after ingestion commits: one cache operation per customer of the batch, then, for those not
    already pending, one query and one task published."""
    delay = settings.ALERTS_EVALUATION_DELAY_SECONDS
    fresh = [
        customer_id for customer_id in customer_ids if cache.add(PENDING_KEY.format(customer_id=customer_id), 1, delay)
    ]
    if not fresh:
        return []
    watched = sorted(
        set(Alert.objects.filter(customer_id__in=fresh, is_active=True).values_list("customer_id", flat=True))
    )
    from .tasks import alerts_evaluate_customers_task

    if watched:
        try:  # one message for the batch: publishing costs more than the rest of this function
            alerts_evaluate_customers_task.apply_async(args=[watched], countdown=delay)
        except BrokerUnavailable:  # the broker is down: the periodic sweep evaluates every watched customer
            cache.delete_many([PENDING_KEY.format(customer_id=customer_id) for customer_id in watched])
    return watched


def alerts_evaluation_pending_clear(*, customer_id: int) -> None:
    cache.delete(PENDING_KEY.format(customer_id=customer_id))


def _evaluate_on_commit(customer_id: int) -> None:
    def queue() -> None:
        from .tasks import alerts_evaluate_customers_task

        enqueue(alerts_evaluate_customers_task, [customer_id])

    transaction.on_commit(queue)


def alerts_watched_customer_ids() -> list[int]:
    return sorted(set(Alert.objects.filter(is_active=True).values_list("customer_id", flat=True)))


# --- Notification ---------------------------------------------------------------------------------


def _language(customer: Customer) -> str:
    return customer.preferred_language or settings.LANGUAGE_CODE


def alert_crossing_email_message(*, crossing: AlertCrossing, recipients: list[str]) -> EmailMultiAlternatives:
    alert = crossing.alert
    customer = crossing.customer
    seller = settings.SELLER
    with translation.override(_language(customer)):
        if alert.kind == AlertKind.SPEND:
            what = gettext("Spend this period")
            amount = f"{quantize_amount(crossing.value, crossing.currency)} {crossing.currency}"
            threshold = f"{_plain(crossing.threshold)} {crossing.currency}"
        else:
            assert alert.metric is not None
            what = alert.metric.name
            amount = _plain(crossing.value)
            threshold = _plain(crossing.threshold)
        subject = gettext("%(seller)s: %(what)s reached %(threshold)s") % {
            "seller": seller.get("name", ""),
            "what": what,
            "threshold": threshold,
        }
        context = {
            "customer": customer,
            "alert": alert,
            "crossing": crossing,
            "what": what,
            "amount": amount,
            "threshold": threshold,
            "seller": seller,
            "is_limit": crossing.is_limit,
        }
        body = render_to_string("alerts/email/alert_triggered.txt", context)
        html = render_to_string("alerts/email/alert_triggered.html", context)
    message = EmailMultiAlternatives(
        subject=subject.strip(),
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
        reply_to=[seller["email"]] if seller.get("email") else None,
    )
    message.attach_alternative(html, "text/html")
    return message


@transaction.atomic
def alert_crossing_notify(*, crossing_id: int, now: datetime | None = None) -> bool:
    """Email the crossing to the customer's billing contacts, once: the crossing's row is locked and
    its `notified_at` checked. False when already sent or nobody to send to."""
    crossing = (
        AlertCrossing.objects.select_for_update(of=("self",))
        .select_related("alert__metric", "customer")
        .filter(pk=crossing_id)
        .first()
    )
    if crossing is None or crossing.notified_at is not None:
        return False
    recipients = customer_invoice_recipients(crossing.customer)
    if not recipients:
        return False
    alert_crossing_email_message(crossing=crossing, recipients=recipients).send(fail_silently=False)
    crossing.notified_at = now or customer_now(crossing.customer)
    crossing.recipients = recipients
    crossing.save(update_fields=["notified_at", "recipients"])
    return True
