from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils.translation import gettext

from apps.accounts.models import Customer
from apps.accounts.selectors import customer_now
from apps.catalog import pricing
from apps.catalog.constants import DiscountType, VersionMigrationTiming
from apps.catalog.models import Charge, Coupon, Plan, PlanVersion
from apps.catalog.services import PriceInput, TierInput, price_problems
from apps.core import clock
from apps.core.audit import audited_with_reason
from apps.core.errors import InvalidTransition, NotFound, ValidationFailed
from apps.core.transitions import ensure_transition
from apps.core.validation import validate_instance

from .constants import MAX_TRIAL_DAYS, SUBSCRIPTION_TRANSITIONS, SubscriptionEventType, SubscriptionStatus
from .events import subscription_event_record
from .models import (
    Discount,
    ScheduledChange,
    Subscription,
    SubscriptionPriceOverride,
    SubscriptionProgressiveBilling,
    SubscriptionSegment,
)
from .periods import Period, add_months, period_containing


@transaction.atomic
def subscription_create(
    *,
    customer: Customer,
    plan: Plan,
    quantity: int = 1,
    started_at: datetime | None = None,
    trial_days: int | None = None,
    billing_cycle_day: int | None = None,
    actor: Any = None,
    now: datetime | None = None,
) -> Subscription:
    """Subscribe a customer to a plan, in the customer's billing currency.

    The first period starts at `started_at` (default: now) and is invoiced by the next billing run,
    or at once by the caller (see `apps.invoices.services.subscription_bill_due`). With a trial (the
    plan's `trial_days`, or `trial_days` given here; 0 for none) the subscription is `trialing` until
    the trial ends, nothing is billed before, and periods are counted from the trial's end.

    `billing_cycle_day` (1–28, monthly plans) bills on that day of every month at 00:00 UTC (calendar
    billing): the first period runs from the start (or the trial's end) to the first such day and is
    prorated by its exact share of the month.
    """
    now = now or customer_now(customer)
    started_at = clock.ensure_aware(started_at or now)
    if plan.is_archived:
        raise ValidationFailed(
            gettext("This plan is archived."),
            fields={"plan": [gettext("This plan is archived and takes no new subscriptions.")]},
        )
    version = plan.current_version
    if version is None:
        raise ValidationFailed(
            gettext("Plan %(plan_code)r has no prices yet.") % {"plan_code": plan.code},
            fields={
                "plan": [gettext("This plan has no version with prices yet; add one before subscribing customers.")]
            },
        )
    if customer.currency not in version.currencies:
        available = ", ".join(sorted(version.currencies)) or "none"
        raise ValidationFailed(
            gettext("Plan %(plan_code)r has no price in %(currency)s, the customer's billing currency.")
            % {"plan_code": plan.code, "currency": customer.currency},
            fields={
                "plan": [
                    gettext("This plan has no price in %(currency)s (it is priced in: %(available)s).")
                    % {"currency": customer.currency, "available": available}
                ]
            },
        )
    if not isinstance(quantity, int) or quantity < 1:
        raise ValidationFailed(
            gettext("Quantity must be a whole number of at least 1."),
            fields={"quantity": [gettext("Must be at least 1.")]},
        )
    days = plan.trial_days if trial_days is None else trial_days
    if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= MAX_TRIAL_DAYS:
        raise ValidationFailed(
            gettext("A trial lasts 0 to %(max_trial_days)s days.") % {"max_trial_days": MAX_TRIAL_DAYS},
            fields={"trial_days": [gettext("Give 0 to %(max_trial_days)s days.") % {"max_trial_days": MAX_TRIAL_DAYS}]},
        )
    if billing_cycle_day is not None:
        _validate_billing_cycle_day(billing_cycle_day, plan)
    if days:
        trial_end_at = started_at + timedelta(days=days)
        period = Period(started_at, trial_end_at)  # the trial, billed at nothing
        anchor_at, next_billing_at, status = trial_end_at, trial_end_at, SubscriptionStatus.TRIALING
    else:
        trial_end_at = None
        period = period_containing(started_at, plan.interval, plan.interval_count, started_at)
        anchor_at, next_billing_at, status = started_at, period.start, SubscriptionStatus.ACTIVE
    if billing_cycle_day is not None:
        anchor_at = next_cycle_day(next_billing_at, billing_cycle_day)
        if not days:
            # The first period is the stretch up to the first cycle day (the whole month if it starts on one).
            end = anchor_at if anchor_at > started_at else add_months(anchor_at, plan.interval_count)
            period = Period(started_at, end)
    subscription = Subscription(
        customer=customer,
        plan=plan,
        plan_version=version,
        quantity=quantity,
        currency=customer.currency,
        status=status,
        billing_anchor_at=anchor_at,
        started_at=started_at,
        trial_end_at=trial_end_at,
        current_period_start_at=period.start,
        current_period_end_at=period.end,
        next_billing_at=next_billing_at,
    )
    validate_instance(subscription)
    subscription.save()
    subscription_event_record(
        subscription=subscription,
        type=SubscriptionEventType.CREATED,
        actor=actor,
        occurred_at=now,
        data={
            "plan": plan.code, "version": version.number, "quantity": quantity, "started_at": started_at.isoformat(),
            "trial_end_at": trial_end_at.isoformat() if trial_end_at else None,
        },
    )  # fmt: skip
    return subscription


def _validate_billing_cycle_day(day: Any, plan: Plan) -> None:
    if not isinstance(day, int) or isinstance(day, bool) or not 1 <= day <= 28:
        raise ValidationFailed(
            gettext("The billing day is a day of the month from 1 to 28."),
            fields={"billing_cycle_day": [gettext("Give a day from 1 to 28 (every month has it).")]},
        )
    if plan.interval != "month":
        raise ValidationFailed(
            gettext("Calendar billing is for monthly plans."),
            fields={
                "billing_cycle_day": [
                    gettext("%(plan)s is billed %(interval_label)s; a billing day needs a monthly plan.")
                    % {"plan": plan, "interval_label": plan.interval_label}
                ]
            },
        )


def next_cycle_day(moment: datetime, day: int) -> datetime:
    """The first `day`-of-the-month at 00:00 UTC at or after `moment`."""
    candidate = moment.replace(day=day, hour=0, minute=0, second=0, microsecond=0)
    return candidate if candidate >= moment else add_months(candidate, 1)


def subscription_end_trial_if_due(subscription: Subscription, *, at: datetime, now: datetime) -> None:
    """Called by the billing run, under the row lock, when the first paid period (starting at `at`)
    is billed: a trial that has ended becomes active."""
    if subscription.status != SubscriptionStatus.TRIALING or subscription.trial_end_at is None:
        return
    if subscription.trial_end_at > at:
        return
    subscription_ensure_transition(subscription, SubscriptionStatus.ACTIVE)
    subscription.status = SubscriptionStatus.ACTIVE
    subscription.save(update_fields=["status", "updated_at"])
    subscription_event_record(
        subscription=subscription, type=SubscriptionEventType.TRIAL_ENDED, occurred_at=now,
        data={"trial_end_at": subscription.trial_end_at.isoformat()},
    )  # fmt: skip


def subscription_now(subscription_id: int) -> datetime:
    """The current time for a subscription: its customer's test clock time if it has one."""
    rows = Subscription.objects.filter(pk=subscription_id)
    frozen_at = rows.values_list("customer__test_clock__frozen_at", flat=True).first()
    return frozen_at or clock.now()


def subscription_lock(subscription_id: int) -> Subscription:
    subscription = Subscription.objects.select_for_update(of=("self",)).filter(pk=subscription_id).first()
    if subscription is None:
        raise NotFound(
            gettext("Subscription %(subscription_id)s does not exist.") % {"subscription_id": subscription_id}
        )
    return subscription


def subscription_ensure_transition(subscription: Subscription, target: str) -> None:
    ensure_transition(
        subscription,
        target,
        transitions=SUBSCRIPTION_TRANSITIONS,
        status_enum=SubscriptionStatus,
        describe=lambda: gettext("Subscription #%(subscription_pk)s") % {"subscription_pk": subscription.pk},
    )


@audited_with_reason
@transaction.atomic
def subscription_cancel(
    *,
    subscription_id: int,
    at_period_end: bool,
    actor: Any = None,
    reason: str = "",
    now: datetime | None = None,
) -> Subscription:
    """Cancel at once (nothing more is billed) or at the end of the current period (it does not renew;
    undo with `subscription_cancel_undo` until then). Credits for unused time come with credit notes."""
    now = now or subscription_now(subscription_id)
    subscription = subscription_lock(subscription_id)
    subscription_ensure_transition(subscription, SubscriptionStatus.CANCELED)
    if at_period_end and subscription.status == SubscriptionStatus.PAUSED:
        raise InvalidTransition(
            gettext("Subscription #%(subscription_pk)s is paused: its period is not running. Cancel it now instead.")
            % {"subscription_pk": subscription.pk},
            fields={"at_period_end": [gettext("A paused subscription can only be canceled now.")]},
        )
    if at_period_end:
        if subscription.cancel_at_period_end:
            return subscription  # already scheduled: asking twice changes nothing
        subscription.cancel_at_period_end = True
        subscription.canceled_at = now
        subscription.cancellation_reason = reason
        subscription.save(update_fields=["cancel_at_period_end", "canceled_at", "cancellation_reason", "updated_at"])
        subscription_event_record(
            subscription=subscription, type=SubscriptionEventType.CANCELLATION_SCHEDULED, actor=actor,
            occurred_at=now, data={"ends_at": subscription.current_period_end_at.isoformat(), "reason": reason},
        )  # fmt: skip
        return subscription
    subscription.status = SubscriptionStatus.CANCELED
    subscription.cancel_at_period_end = False
    subscription.canceled_at = now
    subscription.ended_at = now
    subscription.next_billing_at = None
    subscription.cancellation_reason = reason
    subscription.save(
        update_fields=[
            "status", "cancel_at_period_end", "canceled_at", "ended_at", "next_billing_at",
            "cancellation_reason", "updated_at",
        ]
    )  # fmt: skip
    subscription_event_record(
        subscription=subscription, type=SubscriptionEventType.CANCELED, actor=actor, occurred_at=now,
        data={"immediately": True, "reason": reason},
    )  # fmt: skip
    return subscription


@transaction.atomic
def subscription_cancel_undo(*, subscription_id: int, actor: Any = None, now: datetime | None = None) -> Subscription:
    """Keep a subscription whose cancellation at period end is scheduled: it renews as usual."""
    now = now or subscription_now(subscription_id)
    subscription = subscription_lock(subscription_id)
    if subscription.status == SubscriptionStatus.CANCELED or not subscription.cancel_at_period_end:
        raise InvalidTransition(
            gettext("Subscription #%(subscription_pk)s has no scheduled cancellation to undo.")
            % {"subscription_pk": subscription.pk},
            fields={"cancel_at_period_end": [gettext("No cancellation is scheduled.")]},
        )
    subscription.cancel_at_period_end = False
    subscription.canceled_at = None
    subscription.cancellation_reason = ""
    subscription.save(update_fields=["cancel_at_period_end", "canceled_at", "cancellation_reason", "updated_at"])
    subscription_event_record(
        subscription=subscription, type=SubscriptionEventType.CANCELLATION_UNDONE, actor=actor, occurred_at=now
    )
    return subscription


def subscription_end_if_due(*, subscription_id: int, now: datetime) -> bool:
    """End a subscription canceled at period end once that period is over. Returns whether it ended
    (False when it is not due, or another transaction holds it)."""
    with transaction.atomic():
        subscription = (
            Subscription.objects.select_for_update(skip_locked=True, of=("self",))
            .due_to_end(now)
            .filter(pk=subscription_id)
            .first()
        )
        if subscription is None:
            return False
        ended_at = subscription.next_billing_at
        subscription.status = SubscriptionStatus.CANCELED
        subscription.ended_at = ended_at
        subscription.next_billing_at = None
        subscription.save(update_fields=["status", "ended_at", "next_billing_at", "updated_at"])
        subscription_event_record(
            subscription=subscription, type=SubscriptionEventType.CANCELED, occurred_at=now,
            data={"at_period_end": True, "ended_at": ended_at.isoformat() if ended_at else None},
        )  # fmt: skip
        return True


@transaction.atomic
def subscription_migrate_version(
    *,
    subscription_id: int,
    version: PlanVersion,
    timing: str = VersionMigrationTiming.NEXT_PERIOD,
    actor: Any = None,
    now: datetime | None = None,
) -> Subscription:
    """Move a subscriber to another version of the same plan (grandfathering ends here).

    `now`: the version prices everything billed from now on (the next invoice, and this period's usage);
    the period already invoiced is not re-billed. `next_period`: the version takes over when the
    next period begins (the billing run applies it); until then nothing changes.
    """
    now = now or subscription_now(subscription_id)
    subscription = subscription_lock(subscription_id)
    if subscription.status == SubscriptionStatus.CANCELED:
        raise InvalidTransition(
            gettext("Subscription #%(subscription_pk)s is canceled; it cannot move to another version.")
            % {"subscription_pk": subscription.pk},
            fields={"status": [gettext("A canceled subscription cannot change.")]},
        )
    if version.plan_id != subscription.plan_id:
        raise ValidationFailed(
            gettext("%(version)s is not a version of %(plan)s.") % {"version": version, "plan": subscription.plan},
            fields={
                "version": [
                    gettext("Choose a version of %(plan)s; changing plans is an upgrade or downgrade.")
                    % {"plan": subscription.plan}
                ]
            },
        )
    if timing not in VersionMigrationTiming.values:
        raise ValidationFailed(
            gettext("Unknown timing %(timing)r.") % {"timing": timing},
            fields={
                "timing": [gettext("Use one of: %(values)s.") % {"values": ", ".join(VersionMigrationTiming.values)}]
            },
        )
    if subscription.currency not in version.currencies:
        raise ValidationFailed(
            gettext("%(version)s has no price in %(currency)s.")
            % {"version": version, "currency": subscription.currency},
            fields={
                "version": [
                    gettext("This version has no price in %(currency)s, the subscription's currency.")
                    % {"currency": subscription.currency}
                ]
            },
        )
    already_there = version.pk == subscription.plan_version_id and subscription.pending_plan_version_id is None
    if already_there or (
        timing == VersionMigrationTiming.NEXT_PERIOD and subscription.pending_plan_version_id == version.pk
    ):
        return subscription  # asking twice changes nothing
    from_version = subscription.plan_version
    if timing == VersionMigrationTiming.NOW:
        subscription.plan_version = version
        subscription.pending_plan_version = None
        subscription.save(update_fields=["plan_version", "pending_plan_version", "updated_at"])
        subscription_event_record(
            subscription=subscription, type=SubscriptionEventType.VERSION_MIGRATED, actor=actor, occurred_at=now,
            data={"from_version": from_version.number, "to_version": version.number, "timing": timing},
        )  # fmt: skip
        return subscription
    # Scheduling the version the subscription is already on withdraws a scheduled move.
    subscription.pending_plan_version = None if version.pk == subscription.plan_version_id else version
    subscription.save(update_fields=["pending_plan_version", "updated_at"])
    subscription_event_record(
        subscription=subscription, type=SubscriptionEventType.VERSION_MIGRATION_SCHEDULED, actor=actor,
        occurred_at=now,
        data={
            "from_version": from_version.number, "to_version": version.number,
            "effective_at": subscription.next_billing_at.isoformat() if subscription.next_billing_at else None,
        },
    )  # fmt: skip
    return subscription


def subscription_apply_pending_version(subscription: Subscription, *, now: datetime) -> None:
    """Called by the billing run, under the subscription's row lock, as a new period begins."""
    if subscription.pending_plan_version_id is None:
        return
    from_version = subscription.plan_version
    subscription.plan_version = subscription.pending_plan_version
    subscription.pending_plan_version = None
    subscription.save(update_fields=["plan_version", "pending_plan_version", "updated_at"])
    subscription_event_record(
        subscription=subscription, type=SubscriptionEventType.VERSION_MIGRATED, occurred_at=now,
        data={
            "from_version": from_version.number, "to_version": subscription.plan_version.number,
            "timing": VersionMigrationTiming.NEXT_PERIOD,
        },
    )  # fmt: skip


def subscription_change_target(
    subscription: Subscription, *, plan: Plan | None, quantity: int | None
) -> tuple[Plan, PlanVersion, int]:
    """Check a plan or quantity change and return what the subscription becomes (plan, the version it
    will be billed at, quantity). Refuses, with a field-level message, anything that cannot be billed."""
    if subscription.status == SubscriptionStatus.CANCELED:
        raise InvalidTransition(
            gettext("Subscription #%(subscription_pk)s is canceled; it cannot change.")
            % {"subscription_pk": subscription.pk},
            fields={"status": [gettext("A canceled subscription cannot change.")]},
        )
    target_plan = plan or subscription.plan
    target_quantity = subscription.quantity if quantity is None else quantity
    if not isinstance(target_quantity, int) or isinstance(target_quantity, bool) or target_quantity < 1:
        raise ValidationFailed(
            gettext("Quantity must be a whole number of at least 1."),
            fields={"quantity": [gettext("Must be at least 1.")]},
        )
    if target_plan.pk == subscription.plan_id:
        version = subscription.plan_version
    else:
        if target_plan.is_archived:
            raise ValidationFailed(
                gettext("This plan is archived."),
                fields={"plan": [gettext("This plan is archived and takes no new subscriptions.")]},
            )
        if (target_plan.interval, target_plan.interval_count) != (
            subscription.plan.interval,
            subscription.plan.interval_count,
        ):
            raise ValidationFailed(
                gettext("The new plan bills on another interval."),
                fields={
                    "plan": [
                        gettext(
                            "%(target_plan)s is billed %(target_interval)s and this subscription "
                            "%(subscription_interval)s: choose a plan with the same billing interval."
                        )
                        % {
                            "target_plan": target_plan,
                            "target_interval": target_plan.interval_label,
                            "subscription_interval": subscription.plan.interval_label,
                        }
                    ]
                },
            )
        latest = target_plan.current_version
        if latest is None or subscription.currency not in latest.currencies:
            raise ValidationFailed(
                gettext("Plan %(target_plan_code)r has no price in %(currency)s.")
                % {"target_plan_code": target_plan.code, "currency": subscription.currency},
                fields={
                    "plan": [
                        gettext("This plan has no price in %(currency)s, the subscription's currency.")
                        % {"currency": subscription.currency}
                    ]
                },
            )
        version = latest
    if target_plan.pk == subscription.plan_id and target_quantity == subscription.quantity:
        raise ValidationFailed(
            gettext("Nothing to change: this is the subscription's plan and quantity already."),
            fields={"plan": [gettext("Choose another plan or quantity.")]},
        )
    return target_plan, version, target_quantity


def subscription_apply_change(
    subscription: Subscription,
    *,
    plan: Plan,
    version: PlanVersion,
    quantity: int,
    now: datetime,
    actor: Any = None,
    data: dict | None = None,
) -> None:
    """Set the new plan, version and quantity (the caller holds the row lock) and record it."""
    before = {
        "plan": subscription.plan.code,
        "version": subscription.plan_version.number,
        "quantity": subscription.quantity,
    }
    if plan.pk != subscription.plan_id:
        subscription.pending_plan_version = None  # a migration between versions of the old plan no longer applies
    subscription.plan = plan
    subscription.plan_version = version
    subscription.quantity = quantity
    subscription.save(update_fields=["plan", "plan_version", "quantity", "pending_plan_version", "updated_at"])
    after = {"plan": plan.code, "version": version.number, "quantity": quantity}
    subscription_event_record(
        subscription=subscription, type=SubscriptionEventType.CHANGED, actor=actor, occurred_at=now,
        data={"from": before, "to": after, **(data or {})},
    )  # fmt: skip


@transaction.atomic
def subscription_schedule_change(
    *,
    subscription_id: int,
    plan: Plan | None = None,
    quantity: int | None = None,
    actor: Any = None,
    now: datetime | None = None,
) -> ScheduledChange:
    """Register a change that the billing run applies when the current period ends (replacing any
    change already scheduled)."""
    now = now or subscription_now(subscription_id)
    subscription = subscription_lock(subscription_id)
    if subscription.cancel_at_period_end:
        raise InvalidTransition(
            gettext(
                "Subscription #%(subscription_pk)s ends with this period; undo the cancellation before "
                "scheduling a change."
            )
            % {"subscription_pk": subscription.pk},
            fields={"cancel_at_period_end": [gettext("The subscription is canceled at period end.")]},
        )
    target_plan, version, target_quantity = subscription_change_target(subscription, plan=plan, quantity=quantity)
    ScheduledChange.objects.filter(subscription=subscription, applied_at=None, canceled_at=None).update(canceled_at=now)
    change = ScheduledChange.objects.create(
        subscription=subscription,
        effective_at=subscription.current_period_end_at,
        plan=target_plan,
        plan_version=version,
        quantity=target_quantity,
        created_at=now,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    subscription_event_record(
        subscription=subscription, type=SubscriptionEventType.CHANGE_SCHEDULED, actor=actor, occurred_at=now,
        data={
            "effective_at": change.effective_at.isoformat(), "plan": target_plan.code, "version": version.number,
            "quantity": target_quantity,
        },
    )  # fmt: skip
    return change


@transaction.atomic
def subscription_scheduled_change_cancel(
    *, subscription_id: int, actor: Any = None, now: datetime | None = None
) -> Subscription:
    now = now or subscription_now(subscription_id)
    subscription = subscription_lock(subscription_id)
    withdrawn = ScheduledChange.objects.filter(subscription=subscription, applied_at=None, canceled_at=None).update(
        canceled_at=now
    )
    if not withdrawn:
        raise InvalidTransition(
            gettext("Subscription #%(subscription_pk)s has no scheduled change.")
            % {"subscription_pk": subscription.pk},
            fields={"scheduled_change": [gettext("No change is scheduled.")]},
        )
    subscription_event_record(
        subscription=subscription, type=SubscriptionEventType.SCHEDULED_CHANGE_CANCELED, actor=actor, occurred_at=now
    )
    return subscription


def subscription_apply_scheduled_change(subscription: Subscription, *, at: datetime, now: datetime) -> None:
    """Called by the billing run, under the row lock, as the period starting at `at` is billed."""
    change = next(
        (
            change
            for change in subscription.scheduled_changes.all()
            if change.applied_at is None and change.canceled_at is None and change.effective_at <= at
        ),
        None,
    )
    if change is None:
        return
    version = change.plan_version
    if change.plan_id == subscription.plan_id:
        # A quantity change within the plan: the prices are those the subscription is on by then
        # (a version migration made or scheduled after the change was registered wins).
        version = subscription.pending_plan_version or subscription.plan_version
    subscription_apply_change(
        subscription, plan=change.plan, version=version, quantity=change.quantity, now=now,
        actor=change.created_by, data={"scheduled_change": change.pk},
    )  # fmt: skip
    if subscription.pending_plan_version_id == version.pk:
        subscription.pending_plan_version = None
        subscription.save(update_fields=["pending_plan_version", "updated_at"])
    change.applied_at = now
    change.save(update_fields=["applied_at"])


def subscription_segment_close(
    subscription: Subscription, *, at: datetime, period: Period, reason: str, now: datetime
) -> SubscriptionSegment | None:
    """Close out the stretch of the current period up to `at` at the plan, version and quantity the
    subscription has now (the caller holds the row lock and changes it next): from the period's start,
    or the end of the stretch closed last in it, to `at`. `period`: the whole billing period the stretch
    is a share of. Returns None when there is nothing to close (a change at the very start)."""
    last_end = (
        SubscriptionSegment.objects.filter(subscription=subscription, end_at__gt=subscription.current_period_start_at)
        .order_by("-end_at")
        .values_list("end_at", flat=True)
        .first()
    )
    start = max(subscription.current_period_start_at, last_end or subscription.current_period_start_at)
    if at <= start:
        return None
    return SubscriptionSegment.objects.create(
        subscription=subscription, plan=subscription.plan, plan_version=subscription.plan_version,
        quantity=subscription.quantity, start_at=start, end_at=at, period_start_at=period.start,
        period_end_at=period.end, reason=reason, created_at=now,
    )  # fmt: skip


def subscription_mark_paused(subscription: Subscription, *, now: datetime, actor: Any = None, reason: str = "") -> None:
    """Pause (the caller holds the row lock): nothing is billed until it resumes."""
    if subscription.cancel_at_period_end:
        raise InvalidTransition(
            gettext("Subscription #%(subscription_pk)s ends with this period; it cannot be paused.")
            % {"subscription_pk": subscription.pk},
            fields={"status": [gettext("The subscription is canceled at period end.")]},
        )
    subscription_ensure_transition(subscription, SubscriptionStatus.PAUSED)
    subscription.status = SubscriptionStatus.PAUSED
    subscription.paused_at = now
    subscription.save(update_fields=["status", "paused_at", "updated_at"])
    subscription_event_record(
        subscription=subscription, type=SubscriptionEventType.PAUSED, actor=actor, occurred_at=now,
        data={"reason": reason},
    )  # fmt: skip


def subscription_mark_resumed(subscription: Subscription, *, now: datetime, actor: Any = None) -> None:
    """Resume (the caller holds the row lock): a new period starts now and periods are counted from
    here on (the time paused is neither billed nor owed)."""
    if subscription.status != SubscriptionStatus.PAUSED:
        raise InvalidTransition(
            gettext(
                "Subscription #%(subscription_pk)s is %(status)s, not paused; only a paused subscription can resume."
            )
            % {"subscription_pk": subscription.pk, "status": subscription.get_status_display().lower()},
            fields={"status": [gettext("Only a paused subscription can resume.")]},
        )
    subscription_ensure_transition(subscription, SubscriptionStatus.ACTIVE)
    paused_at = subscription.paused_at
    plan = subscription.plan
    period = period_containing(now, plan.interval, plan.interval_count, now)
    subscription.status = SubscriptionStatus.ACTIVE
    subscription.paused_at = None
    subscription.billing_anchor_at = now
    subscription.current_period_start_at = period.start
    subscription.current_period_end_at = period.end
    subscription.next_billing_at = period.start
    subscription.save(
        update_fields=[
            "status", "paused_at", "billing_anchor_at", "current_period_start_at", "current_period_end_at",
            "next_billing_at", "updated_at",
        ]
    )  # fmt: skip
    subscription_event_record(
        subscription=subscription, type=SubscriptionEventType.RESUMED, actor=actor, occurred_at=now,
        data={"paused_at": paused_at.isoformat() if paused_at else None, "new_anchor_at": now.isoformat()},
    )  # fmt: skip


def subscription_mark_past_due(*, subscription_id: int, now: datetime, reason: str = "") -> bool:
    """An active subscription with an unpaid invoice becomes past due (it still renews). Returns
    whether it changed (False when it is not active: trialing, paused, canceled or past due already)."""
    with transaction.atomic():
        subscription = subscription_lock(subscription_id)
        if subscription.status != SubscriptionStatus.ACTIVE:
            return False
        subscription_ensure_transition(subscription, SubscriptionStatus.PAST_DUE)
        subscription.status = SubscriptionStatus.PAST_DUE
        subscription.save(update_fields=["status", "updated_at"])
        subscription_event_record(
            subscription=subscription, type=SubscriptionEventType.PAST_DUE, occurred_at=now, data={"reason": reason}
        )
        return True


def subscription_mark_current(*, subscription_id: int, now: datetime, reason: str = "") -> bool:
    """A past-due subscription whose unpaid invoices are paid is active again. Returns whether it
    changed (False when it was not past due)."""
    with transaction.atomic():
        subscription = subscription_lock(subscription_id)
        if subscription.status != SubscriptionStatus.PAST_DUE:
            return False
        subscription_ensure_transition(subscription, SubscriptionStatus.ACTIVE)
        subscription.status = SubscriptionStatus.ACTIVE
        subscription.save(update_fields=["status", "updated_at"])
        subscription_event_record(
            subscription=subscription, type=SubscriptionEventType.PAYMENT_RECOVERED, occurred_at=now,
            data={"reason": reason},
        )  # fmt: skip
        return True


# --- Coupons redeemed for a customer or a subscription (their discounts) -------------------------


@transaction.atomic
def coupon_redeem(
    *,
    coupon: Coupon,
    customer: "Customer | None" = None,
    subscription: "Subscription | None" = None,
    actor: Any = None,
    now: datetime | None = None,
) -> Discount:
    """Apply a coupon to a customer (all their subscriptions) or to one subscription.

    The coupon row is locked while its redemptions are counted, so two redemptions at once cannot
    exceed `max_redemptions`."""
    now = clock.ensure_aware(now) if now is not None else clock.now()
    if customer is None and subscription is None:
        message = gettext("Give the customer or the subscription the coupon applies to.")
        raise ValidationFailed(message, fields={"customer": [message], "subscription": [message]})
    if customer is not None and subscription is not None:
        message = gettext("A coupon applies to a customer or to one subscription, not both.")
        raise ValidationFailed(message, fields={"subscription": [message]})

    coupon = Coupon.objects.select_for_update().get(pk=coupon.pk)
    target_field = "subscription" if subscription is not None else "customer"

    def refuse(field: str, message: str) -> None:
        raise ValidationFailed(message, fields={field: [message]})

    if coupon.is_archived:
        refuse("coupon", gettext("This coupon is archived and cannot be redeemed."))
    if coupon.redeem_by is not None and coupon.redeem_by <= now:
        refuse(
            "coupon",
            gettext("This coupon expired on %(redeem_by)s UTC.")
            % {"redeem_by": format(coupon.redeem_by, "%Y-%m-%d %H:%M")},
        )
    if coupon.max_redemptions is not None and coupon.discounts.count() >= coupon.max_redemptions:
        refuse(
            "coupon",
            gettext("This coupon has been redeemed %(max_redemptions)s time(s), its limit.")
            % {"max_redemptions": coupon.max_redemptions},
        )

    if subscription is not None:
        if subscription.ended_at is not None:
            refuse("subscription", gettext("This subscription has ended."))
        currency = subscription.currency
        product_id = subscription.plan.product_id
        if not coupon.applies_to_product(product_id):
            names = ", ".join(sorted(product.name for product in coupon.products.all()))
            refuse(
                "subscription",
                gettext("This coupon applies only to %(names)s; this subscription is for %(product_name)s.")
                % {"names": names, "product_name": subscription.plan.product.name},
            )
        active = Discount.objects.filter(coupon=coupon, subscription=subscription, ended_at__isnull=True)
    else:
        assert customer is not None
        currency = customer.currency
        active = Discount.objects.filter(coupon=coupon, customer=customer, ended_at__isnull=True)
    if coupon.discount_type == DiscountType.FIXED_AMOUNT and coupon.amount_for(currency) is None:
        currencies = ", ".join(amount.currency for amount in coupon.amounts.all())
        refuse(
            target_field,
            (
                gettext(
                    "This coupon has no amount off in %(currency)s, the currency of this subscription (it has "
                    "amounts in %(currencies)s)."
                )
                if subscription is not None
                else gettext(
                    "This coupon has no amount off in %(currency)s, the currency of this customer (it has amounts "
                    "in %(currencies)s)."
                )
            )
            % {"currency": currency, "currencies": currencies},
        )
    if active.exists():
        refuse(
            "coupon",
            gettext("This coupon is already applied to this subscription.")
            if subscription is not None
            else gettext("This coupon is already applied to this customer."),
        )

    discount = Discount(
        coupon=coupon,
        customer=customer,
        subscription=subscription,
        starts_at=now,
        created_by=actor if getattr(actor, "pk", None) is not None else None,
    )
    validate_instance(discount)
    discount.save()
    return discount


@transaction.atomic
def discount_record_applied(*, discount: Discount, now: datetime | None = None) -> Discount:
    """Count one more invoice discounted; end the discount when its duration is used up."""
    now = clock.ensure_aware(now) if now is not None else clock.now()
    discount = Discount.objects.select_for_update().select_related("coupon").get(pk=discount.pk)
    if not discount.is_active:
        raise InvalidTransition(
            gettext("The discount %(discount)s has ended; it discounts no more invoices.") % {"discount": discount}
        )
    discount.periods_applied += 1
    update_fields = ["periods_applied", "updated_at"]
    limit = discount.coupon.period_limit
    if limit is not None and discount.periods_applied >= limit:
        discount.ended_at = now
        update_fields.append("ended_at")
    discount.save(update_fields=update_fields)
    return discount


# --- custom prices ---------------------------------------------------------------------------------


def _number_text(value: Decimal) -> str:
    """A decimal as JSON keeps it: exact, without padding zeros ("0.400000" → "0.4", "1E+3" → "1000")."""
    return format(value.normalize(), "f")


def _tiers_json(tiers: Sequence[TierInput]) -> list[dict[str, str | None]]:
    return [
        {
            "up_to": None if tier.up_to is None else _number_text(tier.up_to),
            "unit_amount": _number_text(tier.unit_amount),
            "flat_amount": _number_text(tier.flat_amount),
            "percentage": _number_text(tier.percentage),
        }
        for tier in tiers
    ]


@audited_with_reason
@transaction.atomic
def subscription_price_override_set(
    *,
    subscription_id: int,
    charge_id: int,
    price: PriceInput,
    note: str = "",
    actor: Any = None,
    reason: str = "",
    now: datetime | None = None,
) -> SubscriptionPriceOverride:
    """Set (or replace) the price one subscription pays for one charge of its plan version, in its own
    currency: the price the billing run, the previews, prorations and late usage read for this charge
    (`apps.billing.services.lines.charge_price`). Validated by the rules of every catalog price; the
    charge must be one of the subscription's current version."""
    now = now or subscription_now(subscription_id)
    subscription = subscription_lock(subscription_id)
    if subscription.status == SubscriptionStatus.CANCELED:
        raise InvalidTransition(
            gettext("Subscription #%(subscription_pk)s is canceled: it is billed no more.")
            % {"subscription_pk": subscription.pk},
            fields={"subscription": [gettext("A canceled subscription takes no custom price.")]},
        )
    charge = Charge.objects.filter(pk=charge_id, plan_version_id=subscription.plan_version_id).first()
    if charge is None:
        raise ValidationFailed(
            gettext(
                "Charge %(charge_id)s is not a charge of the plan version subscription "
                "#%(subscription_pk)s is on (%(plan_version)s)."
            )
            % {"charge_id": charge_id, "subscription_pk": subscription.pk, "plan_version": subscription.plan_version},
            fields={"charge": [gettext("Choose a charge of the subscription's plan version.")]},
        )
    problems = price_problems(price_model=charge.price_model, price=price)
    if price.currency != subscription.currency:
        problems.setdefault("currency", []).append(
            gettext("The subscription is billed in %(currency)s; its custom price is in the same currency.")
            % {"currency": subscription.currency}
        )
    if problems:
        first = next(iter(problems.values()))[0]
        raise ValidationFailed(
            first if len(problems) == 1 else gettext("%(first)s (and more)") % {"first": first}, fields=problems
        )
    values = {
        "currency": price.currency,
        "amount": price.amount,
        "tiers": _tiers_json(price.tiers),
        "package_size": price.package_size,
        "package_rounding": price.package_rounding,
        "included_units": price.included_units,
        "percentage": price.percentage,
        "fixed_fee": price.fixed_fee,
        "min_per_transaction": price.min_per_transaction,
        "max_per_transaction": price.max_per_transaction,
        "minimum_amount": price.minimum_amount,
        "note": note,
    }
    override = SubscriptionPriceOverride.objects.filter(subscription=subscription, charge=charge).first()
    previous = pricing.price_describe(override.to_spec()) if override is not None else None
    if override is None:
        override = SubscriptionPriceOverride(subscription=subscription, charge=charge)
    for name, value in values.items():
        setattr(override, name, value)
    validate_instance(override)
    override.save()
    plan_price = charge.price_for(subscription.currency)
    subscription_event_record(
        subscription=subscription,
        type=SubscriptionEventType.PRICE_OVERRIDE_SET,
        actor=actor,
        occurred_at=now,
        data={
            "charge_id": charge.pk,
            "charge": charge.name,
            "price": pricing.price_describe(override.to_spec()),
            "previous_price": previous,
            "plan_price": pricing.price_describe(plan_price.to_spec()) if plan_price is not None else None,
            "note": note,
            # The price itself, so that its history can be replayed once it is replaced (the MRR
            # history of apps.reports values each past moment at the custom price then in force).
            "price_fields": {
                name: _number_text(value) if isinstance(value, Decimal) else value
                for name, value in values.items()
                if name != "note"
            },
        },
    )
    return override


@audited_with_reason
@transaction.atomic
def subscription_price_override_remove(
    *, subscription_id: int, charge_id: int, actor: Any = None, reason: str = "", now: datetime | None = None
) -> None:
    """Remove a subscription's custom price for a charge: the plan's price applies again to what is
    billed from now on (an invoice already issued keeps the custom price it was billed at)."""
    now = now or subscription_now(subscription_id)
    subscription = subscription_lock(subscription_id)
    override = (
        SubscriptionPriceOverride.objects.select_related("charge")
        .filter(subscription=subscription, charge_id=charge_id)
        .first()
    )
    if override is None:
        raise NotFound(
            gettext("Subscription #%(subscription_pk)s has no custom price for charge %(charge_id)s.")
            % {"subscription_pk": subscription.pk, "charge_id": charge_id}
        )
    described = pricing.price_describe(override.to_spec())
    charge = override.charge
    override.delete()
    subscription_event_record(
        subscription=subscription,
        type=SubscriptionEventType.PRICE_OVERRIDE_REMOVED,
        actor=actor,
        occurred_at=now,
        data={"charge_id": charge.pk, "charge": charge.name, "price": described},
    )


# --- Progressive billing thresholds of one subscription ---------------------------------------------


@audited_with_reason
@transaction.atomic
def subscription_progressive_billing_set(
    *,
    subscription_id: int,
    amounts: Any,
    every: Any = None,
    scope: Any = None,
    actor: Any = None,
    reason: str = "",
    now: datetime | None = None,
) -> SubscriptionProgressiveBilling:
    """Give the subscription its own progressive billing thresholds, in its currency, instead of its plan
    version's (no amounts and no `every`: progressive billing off for it). They apply from the next
    evaluation; interim invoices already issued stand. `scope`: "period" (default) or "lifetime" (the
    usage since the subscription started; thresholds already billed in any period count as fired). Field
    errors on `thresholds`, `every`, `scope`."""
    from apps.catalog.progressive import schedule_amounts_json, schedule_clean, schedule_text

    now = now or subscription_now(subscription_id)
    subscription = subscription_lock(subscription_id)
    if subscription.status == SubscriptionStatus.CANCELED:
        raise InvalidTransition(
            gettext("Subscription #%(id)s is canceled: it is billed no more.") % {"id": subscription.pk},
            fields={"subscription": [gettext("A canceled subscription takes no thresholds.")]},
        )
    schedule = schedule_clean(amounts=amounts, every=every, currency=subscription.currency, scope=scope)
    row, _ = SubscriptionProgressiveBilling.objects.update_or_create(
        subscription=subscription,
        defaults={"amounts": schedule_amounts_json(schedule), "every": schedule.every, "scope": schedule.scope},
    )
    subscription_event_record(
        subscription=subscription,
        type=SubscriptionEventType.PROGRESSIVE_BILLING_SET,
        actor=actor,
        occurred_at=now,
        data={"thresholds": row.amounts, "every": None if row.every is None else str(schedule.every),
              "scope": row.scope, "summary": schedule_text(schedule, subscription.currency)},
    )  # fmt: skip
    return row


@audited_with_reason
@transaction.atomic
def subscription_progressive_billing_remove(
    *, subscription_id: int, actor: Any = None, reason: str = "", now: datetime | None = None
) -> None:
    """Remove the subscription's own thresholds: its plan version's apply again."""
    now = now or subscription_now(subscription_id)
    subscription = subscription_lock(subscription_id)
    deleted, _ = SubscriptionProgressiveBilling.objects.filter(subscription=subscription).delete()
    if not deleted:
        raise NotFound(gettext("Subscription #%(id)s has no thresholds of its own.") % {"id": subscription.pk})
    subscription_event_record(
        subscription=subscription, type=SubscriptionEventType.PROGRESSIVE_BILLING_REMOVED, actor=actor,
        occurred_at=now, data={},
    )  # fmt: skip
