"""Dunning services: campaigns and customer settings, starting a dunning when an invoice goes unpaid,
running its actions exactly once at their moments, and ending it (recovered, exhausted, excluded,
closed). See docs/payments.md (Dunning).

Exactly once: each action runs in its own transaction under the dunning's row lock
(`select_for_update(skip_locked=True)`: a second worker skips a dunning another one is working on),
re-checks that the step is still the next one and due, records the step's event (a unique constraint
on (dunning, step) backs this up) and moves the dunning to its next step before committing. Emails are
sent inside that transaction. An action that fails (the mail server refuses, a service says no) is
recorded on the dunning as failed, with the error, and the dunning moves on to its next step: staff
see it in the dunning's history.
"""

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext
from djmoney.money import Money

from apps.accounts.constants import CollectionMethod
from apps.accounts.models import Customer
from apps.accounts.selectors import customer_now
from apps.billing.constants import ChangeTiming
from apps.billing.services import subscription_cancel, subscription_pause
from apps.core import clock
from apps.core.errors import InvalidTransition, NotFound, ValidationFailed
from apps.core.events import domain_event_record
from apps.core.money import quantize_amount
from apps.core.transitions import ensure_transition
from apps.core.validation import validate_instance
from apps.invoices.constants import InvoiceStatus
from apps.invoices.models import Invoice, InvoicedPeriod
from apps.invoices.services import invoice_mark_uncollectible
from apps.subscriptions.constants import SubscriptionStatus
from apps.subscriptions.models import Subscription
from apps.subscriptions.services import subscription_mark_current, subscription_mark_past_due

from .constants import (
    DUNNING_TRANSITIONS,
    OPEN_DUNNING_STATUSES,
    DunningEndAction,
    DunningEventType,
    DunningStartReason,
    DunningStatus,
)
from .emails import dunning_email_send
from .models import CustomerDunningSetting, DunningCampaign, InvoiceDunning, InvoiceDunningEvent
from .schedule import (
    SKIPPED_WHEN_LATE,
    ActionKind,
    CampaignRules,
    PlannedAction,
    dunning_plan,
    first_action_at,
    rules_errors,
)
from .selectors import invoice_card_refusal

logger = logging.getLogger(__name__)

CAMPAIGN_FIELDS = (
    "name", "description", "retry_days", "reminder_days_before_due", "reminder_days_after_due",
    "final_notice_day", "end_action", "end_action_day", "is_default",
)  # fmt: skip
# Invoices dunning looks after: issued and unpaid.
DUNNABLE_STATUSES = (InvoiceStatus.OPEN,)


def dunning_event_record(
    *,
    dunning: InvoiceDunning,
    type: str,
    occurred_at: datetime,
    actor: Any = None,
    action: PlannedAction | None = None,
    data: dict[str, Any] | None = None,
) -> InvoiceDunningEvent:
    return domain_event_record(
        InvoiceDunningEvent,
        dunning=dunning,
        type=type,
        step=action.step if action is not None else None,
        action_kind=action.kind.value if action is not None else "",
        scheduled_at=action.at if action is not None else None,
        occurred_at=occurred_at,
        actor=actor,
        data=data,
    )


# --- campaigns and customer settings -------------------------------------------------------------


def _clean_days(value: Any, field: str, errors: dict[str, list[str]]) -> list[int]:
    if not isinstance(value, list | tuple):
        errors[field] = [gettext("Give a list of days, e.g. [3, 5, 7].")]
        return []
    return sorted(value, key=lambda day: (not isinstance(day, int), day if isinstance(day, int) else 0))


def _campaign_validate(campaign: DunningCampaign) -> None:
    errors: dict[str, list[str]] = {}
    for field in ("retry_days", "reminder_days_before_due", "reminder_days_after_due"):
        setattr(campaign, field, _clean_days(getattr(campaign, field), field, errors))
    if campaign.end_action not in DunningEndAction.values:
        errors["end_action"] = [gettext("Use one of: %(values)s.") % {"values": ", ".join(DunningEndAction.values)}]
    if not errors:
        for field, messages in rules_errors(campaign.rules).items():
            errors.setdefault(field, messages)
    if errors:
        raise ValidationFailed(gettext("The campaign is not valid."), fields=errors)
    validate_instance(campaign, exclude=["is_default"])


def _take_default(campaign: DunningCampaign) -> None:
    """Make this campaign the only default (the previous default, locked, stops being one)."""
    others = DunningCampaign.objects.select_for_update().filter(is_default=True).exclude(pk=campaign.pk)
    for other in others:
        other.is_default = False
        other.save(update_fields=["is_default", "updated_at"])


@transaction.atomic
def dunning_campaign_create(*, actor: Any = None, **values: Any) -> DunningCampaign:
    unknown = set(values) - set(CAMPAIGN_FIELDS)
    if unknown:
        raise ValidationFailed(
            gettext("Unknown fields."), fields={name: [gettext("Unknown field.")] for name in sorted(unknown)}
        )
    campaign = DunningCampaign(**values)
    _campaign_validate(campaign)
    if campaign.is_default:
        _take_default(campaign)
    campaign.save()
    return campaign


@transaction.atomic
def dunning_campaign_update(*, campaign_id: int, actor: Any = None, **values: Any) -> DunningCampaign:
    """Change a campaign. Dunnings already running keep the rules they started with; only dunnings
    starting from now on follow the new ones."""
    campaign = DunningCampaign.objects.select_for_update().filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFound(gettext("Dunning campaign %(campaign_id)s does not exist.") % {"campaign_id": campaign_id})
    unknown = set(values) - set(CAMPAIGN_FIELDS)
    if unknown:
        raise ValidationFailed(
            gettext("Unknown fields."), fields={name: [gettext("Unknown field.")] for name in sorted(unknown)}
        )
    for name, value in values.items():
        setattr(campaign, name, value)
    _campaign_validate(campaign)
    if campaign.is_default:
        _take_default(campaign)
    campaign.save()
    return campaign


@transaction.atomic
def dunning_campaign_delete(*, campaign_id: int, actor: Any = None) -> None:
    """Delete a campaign no customer uses (dunnings it started keep their copy of its rules)."""
    campaign = DunningCampaign.objects.select_for_update().filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFound(gettext("Dunning campaign %(campaign_id)s does not exist.") % {"campaign_id": campaign_id})
    if campaign.customer_settings.exists():
        raise InvalidTransition(
            gettext("Campaign %(campaign)s is assigned to customers; assign them another campaign first.")
            % {"campaign": campaign},
            fields={"campaign": [gettext("The campaign is assigned to customers.")]},
        )
    campaign.delete()


@transaction.atomic
def customer_dunning_set(
    *,
    customer_id: int,
    campaign_id: int | None = None,
    excluded: bool = False,
    note: str = "",
    actor: Any = None,
) -> CustomerDunningSetting:
    """Give a customer its own campaign (None: the default) or exclude it from dunning. Excluding a
    customer excludes its running dunnings too (they stop until it is included again)."""
    customer = Customer.objects.select_for_update().filter(pk=customer_id).first()
    if customer is None:
        raise NotFound(
            gettext("Customer %(customer_id)s does not exist.") % {"customer_id": customer_id},
            fields={"customer": [gettext("Unknown customer.")]},
        )
    campaign = None
    if campaign_id is not None:
        campaign = DunningCampaign.objects.filter(pk=campaign_id).first()
        if campaign is None:
            raise ValidationFailed(gettext("Unknown campaign."), fields={"campaign": [gettext("Unknown campaign.")]})
    setting, _ = CustomerDunningSetting.objects.update_or_create(
        customer=customer, defaults={"campaign": campaign, "excluded": excluded, "note": note}
    )
    now = customer_now(customer)
    open_ids = list(
        InvoiceDunning.objects.filter(customer=customer, status__in=OPEN_DUNNING_STATUSES).values_list("pk", flat=True)
    )
    for dunning_id in open_ids:
        dunning = _lock(dunning_id)
        if excluded and dunning.status == DunningStatus.ACTIVE:
            _exclude(dunning, now=now, actor=actor, reason=note or "customer excluded from dunning")
        elif not excluded and dunning.status == DunningStatus.EXCLUDED:
            _resume(dunning, now=now, actor=actor)
    return setting


def customer_dunning_campaign(customer_id: int) -> tuple[DunningCampaign | None, bool]:
    """The campaign a customer's unpaid invoices follow (its own, else the default; None when there
    is none) and whether the customer is excluded from dunning."""
    setting = CustomerDunningSetting.objects.select_related("campaign").filter(customer_id=customer_id).first()
    if setting is not None and setting.campaign is not None:
        return setting.campaign, setting.excluded
    default = DunningCampaign.objects.filter(is_default=True).first()
    return default, bool(setting and setting.excluded)


# --- plans ---------------------------------------------------------------------------------------


def _rules_to_json(rules: CampaignRules) -> dict[str, Any]:
    return {
        "retry_days": list(rules.retry_days),
        "reminder_days_before_due": list(rules.reminder_days_before_due),
        "reminder_days_after_due": list(rules.reminder_days_after_due),
        "final_notice_day": rules.final_notice_day,
        "end_action": rules.end_action,
        "end_action_day": rules.end_action_day,
    }


def _plan_to_json(plan: list[PlannedAction]) -> list[dict[str, Any]]:
    return [
        {"step": a.step, "kind": a.kind.value, "at": a.at.isoformat(), "day": a.day, "attempt": a.attempt,
         "skipped": a.skipped}
        for a in plan
    ]  # fmt: skip


def dunning_planned_actions(dunning: InvoiceDunning) -> list[PlannedAction]:
    return [
        PlannedAction(
            step=entry["step"], kind=ActionKind(entry["kind"]), at=datetime.fromisoformat(entry["at"]),
            day=entry["day"], attempt=entry["attempt"], skipped=entry["skipped"],
        )
        for entry in dunning.plan
    ]  # fmt: skip


def _set_next(dunning: InvoiceDunning, step: int) -> None:
    plan = dunning.plan
    dunning.step = step
    if step < len(plan):
        dunning.next_action_at = datetime.fromisoformat(plan[step]["at"])
        dunning.next_action_kind = plan[step]["kind"]
    else:
        dunning.next_action_at = None
        dunning.next_action_kind = ""


# --- starting a dunning --------------------------------------------------------------------------


def _amount_due(invoice: Invoice) -> Money:
    return invoice.amount_due


def invoice_dunning_start(
    *,
    invoice_id: int,
    reason: str,
    now: datetime,
    failed_at: datetime | None = None,
    planned_at: datetime | None = None,
) -> InvoiceDunning | None:
    """Start the dunning of an unpaid invoice under its customer's campaign (None when there is no
    campaign, the invoice is settled, or it has a dunning already). A dunning that was recovered before
    the invoice was reopened (a payment reversed, a refund) becomes `reopened` — its history kept —
    and a new cycle starts in its place. An excluded customer's dunning
    starts excluded: it is on record and does nothing. `planned_at`: the moment the periodic run found
    it due (its first action's), so that a run a little after that moment still sends that action;
    reminders planned before it are skipped."""
    customer_id = Invoice.objects.filter(pk=invoice_id).values_list("customer_id", flat=True).first()
    if customer_id is None:
        raise NotFound(gettext("Invoice %(invoice_id)s does not exist.") % {"invoice_id": invoice_id})
    with transaction.atomic():
        # The payments' lock order: the customer, then the invoice.
        Customer.objects.select_for_update(of=("self",)).filter(pk=customer_id).first()
        invoice = Invoice.objects.select_for_update(of=("self",)).get(pk=invoice_id)
        if invoice.status not in DUNNABLE_STATUSES or invoice.due_on is None:
            return None
        current = _current_dunning(invoice.pk, lock=True)
        if current is not None and current.status != DunningStatus.RECOVERED:
            return None
        amount_due = _amount_due(invoice)
        if amount_due.amount <= 0:
            return None
        campaign, excluded = customer_dunning_campaign(invoice.customer_id)
        if campaign is None:
            return None
        if current is not None:  # recovered, then reopened (payment reversed, refund): a new cycle
            _ensure_transition(current, DunningStatus.REOPENED)  # it keeps its moment of recovery (ended_at)
            current.status = DunningStatus.REOPENED
            current.save(update_fields=["status", "updated_at"])
            dunning_event_record(dunning=current, type=DunningEventType.REOPENED, occurred_at=now,
                                 data={"reason": "invoice reopened", "amount_due": str(amount_due.amount)})  # fmt: skip
        rules = campaign.rules
        due_on, starts_at = invoice.due_on, min(planned_at or now, now)
        if current is not None:
            # A new cycle counts from the reopening, as if the invoice fell due today: its reminders,
            # final notice and end action all come, in turn, rather than the end action at once.
            due_on, starts_at = max(invoice.due_on, now.date()), now
        plan = dunning_plan(
            rules=rules, due_on=due_on, first_failed_at=failed_at, started_at=starts_at,
            hour=settings.DUNNING_ACTION_HOUR,
        )  # fmt: skip
        dunning = InvoiceDunning(
            invoice=invoice, customer_id=invoice.customer_id, campaign=campaign, campaign_rules=_rules_to_json(rules),
            plan=_plan_to_json(plan), status=DunningStatus.EXCLUDED if excluded else DunningStatus.ACTIVE,
            start_reason=reason, started_at=now, first_failed_at=failed_at, amount_due_at_start=amount_due,
            amount_paid_at_start=invoice.amount_paid, amount_recovered=Money(Decimal(0), invoice.currency),
        )  # fmt: skip
        _set_next(dunning, 0)
        dunning.save()
        dunning_event_record(
            dunning=dunning, type=DunningEventType.STARTED, occurred_at=now,
            data={"reason": reason, "campaign": campaign.name, "amount_due": str(amount_due.amount),
                  "failed_at": failed_at.isoformat() if failed_at else None},
        )  # fmt: skip
        if excluded:
            dunning_event_record(dunning=dunning, type=DunningEventType.EXCLUDED, occurred_at=now,
                                 data={"reason": "customer excluded from dunning"})  # fmt: skip
        elif failed_at is not None:
            _subscriptions_past_due(invoice, now=now)
        return dunning


def _current_dunning(invoice_id: int, *, lock: bool = False) -> InvoiceDunning | None:
    """The invoice's current dunning (running or ended; not one that gave way to a new cycle)."""
    dunnings = InvoiceDunning.objects.filter(invoice_id=invoice_id).exclude(status=DunningStatus.REOPENED)
    return (dunnings.select_for_update(of=("self",)) if lock else dunnings).first()


def invoice_subscription_ids(invoice: Invoice) -> list[int]:
    """The subscriptions an invoice bills (its own, or each of a grouped invoice's)."""
    ids = set(InvoicedPeriod.objects.filter(invoice=invoice).values_list("subscription_id", flat=True))
    if invoice.subscription_id is not None:
        ids.add(invoice.subscription_id)
    return sorted(ids)


def _subscriptions_past_due(invoice: Invoice, *, now: datetime) -> list[int]:
    changed = []
    for subscription_id in invoice_subscription_ids(invoice):
        if subscription_mark_past_due(subscription_id=subscription_id, now=now, reason=f"Invoice {invoice} is unpaid."):
            changed.append(subscription_id)
    return changed


def _subscriptions_current(invoice: Invoice, *, now: datetime) -> list[int]:
    """Past-due subscriptions of a settled invoice become active again, unless another of their
    invoices is still in dunning."""
    changed = []
    for subscription_id in invoice_subscription_ids(invoice):
        still_unpaid = (
            InvoiceDunning.objects.filter(status__in=(DunningStatus.ACTIVE, DunningStatus.EXHAUSTED))
            .filter(
                Q(invoice__subscription_id=subscription_id)
                | Q(invoice__invoiced_periods__subscription_id=subscription_id)
            )
            .exclude(invoice=invoice)
            .exists()
        )
        if not still_unpaid and subscription_mark_current(
            subscription_id=subscription_id, now=now, reason=f"Invoice {invoice} is paid."
        ):
            changed.append(subscription_id)
    return changed


# --- running actions -----------------------------------------------------------------------------


def _lock(dunning_id: int, *, skip_locked: bool = False) -> InvoiceDunning:
    dunning = (
        InvoiceDunning.objects.select_for_update(skip_locked=skip_locked, of=("self",))
        .select_related("invoice", "customer")
        .filter(pk=dunning_id)
        .first()
    )
    if dunning is None and not skip_locked:
        raise NotFound(gettext("Dunning %(dunning_id)s does not exist.") % {"dunning_id": dunning_id})
    return dunning  # type: ignore[return-value]


def _ensure_transition(dunning: InvoiceDunning, target: str) -> None:
    ensure_transition(
        dunning,
        target,
        transitions=DUNNING_TRANSITIONS,
        status_enum=DunningStatus,
        describe=lambda: gettext("The dunning of invoice %(invoice)s") % {"invoice": dunning.invoice},
    )


def _settle_if_paid(dunning: InvoiceDunning, *, now: datetime, actor: Any = None) -> bool:
    """End a dunning whose invoice is settled: recovered when nothing is due any more (paid, or
    credited), closed when the invoice was voided. Returns whether it ended."""
    invoice = Invoice.objects.get(pk=dunning.invoice_id)
    dunning.invoice = invoice
    paid_since = invoice.amount_paid.amount - dunning.amount_paid_at_start.amount
    recovered = Money(quantize_amount(max(paid_since, Decimal(0)), invoice.currency), invoice.currency)
    if recovered != dunning.amount_recovered and dunning.status != DunningStatus.RECOVERED:
        dunning.amount_recovered = recovered
        dunning.save(update_fields=["amount_recovered", "amount_recovered_currency", "updated_at"])
    if invoice.status == InvoiceStatus.VOID:
        if dunning.status in OPEN_DUNNING_STATUSES:
            _end(dunning, DunningStatus.CLOSED, DunningEventType.CLOSED, now=now, actor=actor,
                 data={"reason": "invoice voided"})  # fmt: skip
            return True
        return False
    if invoice.status == InvoiceStatus.PAID or invoice.amount_due.amount <= 0:
        if dunning.status == DunningStatus.RECOVERED:
            return False
        _end(dunning, DunningStatus.RECOVERED, DunningEventType.RECOVERED, now=now, actor=actor,
             data={"amount_recovered": str(recovered.amount)})  # fmt: skip
        _subscriptions_current(invoice, now=now)
        return True
    return False


def _end(dunning: InvoiceDunning, status: str, event: str, *, now: datetime, actor: Any, data: dict) -> None:
    _ensure_transition(dunning, status)
    dunning.status = status
    dunning.ended_at = now
    _set_next(dunning, dunning.step) if status == DunningStatus.EXCLUDED else _set_next(dunning, len(dunning.plan))
    dunning.save(update_fields=["status", "ended_at", "step", "next_action_at", "next_action_kind", "updated_at"])
    dunning_event_record(dunning=dunning, type=event, occurred_at=now, actor=actor, data=data)


def _exclude(dunning: InvoiceDunning, *, now: datetime, actor: Any, reason: str) -> None:
    _ensure_transition(dunning, DunningStatus.EXCLUDED)
    dunning.status = DunningStatus.EXCLUDED
    dunning.save(update_fields=["status", "updated_at"])
    dunning_event_record(dunning=dunning, type=DunningEventType.EXCLUDED, occurred_at=now, actor=actor,
                         data={"reason": reason})  # fmt: skip


def _resume(dunning: InvoiceDunning, *, now: datetime, actor: Any) -> None:
    """Back to active, at the step it stopped at. Reminders and notices overtaken by time while it was
    excluded are skipped when their turn comes (see `_overtaken`), never sent late."""
    _ensure_transition(dunning, DunningStatus.ACTIVE)
    dunning.status = DunningStatus.ACTIVE
    dunning.save(update_fields=["status", "updated_at"])
    dunning_event_record(dunning=dunning, type=DunningEventType.RESUMED, occurred_at=now, actor=actor)


@transaction.atomic
def dunning_exclude(*, dunning_id: int, reason: str = "", actor: Any = None) -> InvoiceDunning:
    """Pause one invoice's dunning: nothing more is sent, retried or done until it resumes."""
    dunning = _lock(dunning_id)
    _exclude(dunning, now=customer_now(dunning.customer), actor=actor, reason=reason or "excluded by staff")
    return dunning


@transaction.atomic
def dunning_resume(*, dunning_id: int, actor: Any = None) -> InvoiceDunning:
    dunning = _lock(dunning_id)
    now = customer_now(dunning.customer)
    if _settle_if_paid(dunning, now=now, actor=actor):
        return dunning
    _resume(dunning, now=now, actor=actor)
    return dunning


def dunning_run_next_action(
    *, dunning_id: int, now: datetime, actor: Any = None, force: bool = False
) -> InvoiceDunningEvent | None:
    """Run the dunning's next action if it is due at `now` (or at once with `force`, staff's "run next
    action now"). Returns the step's event, or None when there was nothing to do (not due, another
    worker holds the dunning, or it ended because the invoice is settled).

    A card retry is recorded (and the dunning moved on) first; the card is charged after that commit,
    by `invoice_collect_again` with the invoice's next attempt number, whose payment row is committed before
    Stripe is called and whose idempotency key (`invoice-<id>-attempt-<n>`) makes the same attempt
    charge once whatever runs it again. Its outcome comes back through the payment signals."""
    collect: tuple[int, int] | None = None
    with transaction.atomic():
        dunning = _lock(dunning_id, skip_locked=not force)
        if dunning is None or dunning.status != DunningStatus.ACTIVE or dunning.next_action_at is None:
            if force and dunning is not None:
                raise InvalidTransition(
                    gettext("The dunning of invoice %(invoice)s is %(status)s: it has no next action to run.")
                    % {"invoice": dunning.invoice, "status": dunning.get_status_display().lower()},
                    fields={"status": [gettext("Only an active dunning runs actions.")]},
                )
            return None
        if not force and dunning.next_action_at > now:
            return None
        if _settle_if_paid(dunning, now=now, actor=actor):
            return None
        action = dunning_planned_actions(dunning)[dunning.step]
        try:
            with transaction.atomic():
                event = _run_action(dunning, action, now=now, actor=actor)
        except Exception as exc:  # noqa: BLE001 - recorded on the dunning; the next step still comes
            logger.exception("dunning action %s of dunning %s failed", action.step, dunning.pk)
            event = dunning_event_record(
                dunning=dunning, type=DunningEventType.ACTION_FAILED, occurred_at=now, action=action, actor=actor,
                data={"error": f"{type(exc).__name__}: {exc}"[:1000]},
            )  # fmt: skip
        if action.kind == ActionKind.RETRY and event.type == DunningEventType.ACTION_DONE:
            collect = (dunning.invoice_id, event.data["attempt"])
        _set_next(dunning, action.step + 1)
        fields = ["step", "next_action_at", "next_action_kind", "updated_at"]
        if action.kind == ActionKind.END_ACTION and event.type != DunningEventType.ACTION_FAILED:
            dunning.status = DunningStatus.EXHAUSTED
            dunning.ended_at = now
            fields += ["status", "ended_at"]
        dunning.save(update_fields=fields)
        if dunning.status == DunningStatus.EXHAUSTED:
            dunning_event_record(dunning=dunning, type=DunningEventType.EXHAUSTED, occurred_at=now,
                                 data={"end_action": dunning.campaign_rules["end_action"]})  # fmt: skip
    if collect is not None:
        _collect(dunning, invoice_id=collect[0], attempt=collect[1], now=now)
    return event


def _collect(dunning: InvoiceDunning, *, invoice_id: int, attempt: int, now: datetime) -> None:
    """Charge the card for a retry (outside the dunning's transaction). A refusal or an outage is
    recorded on the dunning; a payment left pending is settled by Stripe's webhook."""
    collector = _card_collector()
    if collector is None:
        return
    try:
        collector(invoice_id=invoice_id, attempt=attempt)
    except Exception as exc:  # noqa: BLE001 - recorded on the dunning
        logger.warning("dunning retry of invoice %s (attempt %s) failed: %s", invoice_id, attempt, exc)
        dunning_event_record(
            dunning=dunning, type=DunningEventType.ACTION_FAILED, occurred_at=now,
            data={"attempt": attempt, "error": f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"[:1000]},
        )  # fmt: skip


def _done(dunning, action, *, now, actor, data) -> InvoiceDunningEvent:
    return dunning_event_record(
        dunning=dunning, type=DunningEventType.ACTION_DONE, occurred_at=now, action=action, actor=actor, data=data
    )


def _skipped(dunning, action, *, now, actor, reason) -> InvoiceDunningEvent:
    return dunning_event_record(
        dunning=dunning, type=DunningEventType.ACTION_SKIPPED, occurred_at=now, action=action, actor=actor,
        data={"reason": reason},
    )  # fmt: skip


def _run_action(dunning: InvoiceDunning, action: PlannedAction, *, now: datetime, actor: Any) -> InvoiceDunningEvent:
    invoice = dunning.invoice
    if action.skipped:
        return _skipped(dunning, action, now=now, actor=actor, reason="its moment had passed when dunning started")
    if _overtaken(dunning, action, now=now):
        return _skipped(dunning, action, now=now, actor=actor, reason="a later step was due already")
    if action.kind == ActionKind.OVERDUE:
        changed = _subscriptions_past_due(invoice, now=now)
        return _done(dunning, action, now=now, actor=actor, data={"past_due_subscriptions": changed})
    if action.kind in (ActionKind.REMINDER_BEFORE_DUE, ActionKind.REMINDER_AFTER_DUE, ActionKind.FINAL_NOTICE):
        sent = dunning_email_send(dunning=dunning, action=action, now=now)
        return _done(dunning, action, now=now, actor=actor, data=sent)
    if action.kind == ActionKind.RETRY:
        return _retry(dunning, action, now=now, actor=actor)
    return _end_action(dunning, action, now=now, actor=actor)


def _overtaken(dunning: InvoiceDunning, action: PlannedAction, *, now: datetime) -> bool:
    """A reminder or notice is out of date when a later step (at a later moment) is due already: the
    dunning was paused past it, or the runs stopped for a while. It is skipped rather than sent late."""
    if action.kind not in SKIPPED_WHEN_LATE:
        return False
    return any(action.at < datetime.fromisoformat(entry["at"]) <= now for entry in dunning.plan[action.step + 1 :])


def _card_collector() -> Any:
    """The Stripe collection of card invoices (`invoice_collect_again(invoice_id=…, attempt=n)`), or None
    when card payments are off (`STRIPE_ENABLED`)."""
    from apps.payments.stripe.client import stripe_enabled
    from apps.payments.stripe.collection import invoice_collect_again

    return invoice_collect_again if stripe_enabled() else None


def _retry(dunning: InvoiceDunning, action: PlannedAction, *, now: datetime, actor: Any) -> InvoiceDunningEvent:
    """Record the retry; the card is charged once this is committed (`dunning_run_next_action`)."""
    invoice = dunning.invoice
    if invoice.collection_method != CollectionMethod.CHARGE_AUTOMATICALLY:
        return _skipped(dunning, action, now=now, actor=actor, reason="the invoice is paid by transfer, not by card")
    if _card_collector() is None:
        return _skipped(dunning, action, now=now, actor=actor, reason="card payments are not enabled")
    refusal = invoice_card_refusal(invoice)
    if refusal is not None:  # `amount_not_chargeable`: every retry would fail the same way
        reason = f"the amount due cannot be charged by card: {refusal}"
        return _skipped(dunning, action, now=now, actor=actor, reason=reason)
    from apps.payments.stripe.collection import invoice_next_attempt

    # The invoice's next attempt number (staff may have charged it in between: "charge now"). Attempts
    # left pending are looked up at Stripe first (`invoice_collect_again`), never sent again: one that
    # Stripe did charge ends the dunning recovered and no new attempt is made.
    return _done(dunning, action, now=now, actor=actor, data={"attempt": invoice_next_attempt(invoice_id=invoice.pk)})


def _end_action(dunning: InvoiceDunning, action: PlannedAction, *, now: datetime, actor: Any) -> InvoiceDunningEvent:
    invoice = dunning.invoice
    end_action = dunning.campaign_rules["end_action"]
    reason = f"Invoice {invoice} unpaid after dunning."
    if end_action == DunningEndAction.MARK_UNCOLLECTIBLE:
        invoice_mark_uncollectible(invoice_id=invoice.pk, actor=actor, reason=reason, now=now)
        return _done(dunning, action, now=now, actor=actor, data={"end_action": end_action})
    done, left_alone = [], []
    for subscription_id in invoice_subscription_ids(invoice):
        status = Subscription.objects.values_list("status", flat=True).get(pk=subscription_id)
        if end_action == DunningEndAction.CANCEL_SUBSCRIPTION and status != SubscriptionStatus.CANCELED:
            subscription_cancel(
                subscription_id=subscription_id, when=ChangeTiming.NOW, prorate=False, reason=reason, now=now
            )
            done.append(subscription_id)
        elif end_action == DunningEndAction.PAUSE_SUBSCRIPTION and status in (
            SubscriptionStatus.ACTIVE,
            SubscriptionStatus.PAST_DUE,
        ):
            subscription_pause(subscription_id=subscription_id, prorate=False, reason=reason, now=now)
            done.append(subscription_id)
        else:
            left_alone.append(subscription_id)
    return _done(dunning, action, now=now, actor=actor,
                 data={"end_action": end_action, "subscriptions": done, "left_alone": left_alone})  # fmt: skip


# --- the periodic run and the payment hooks --------------------------------------------------------


def _customers(test_clock_id: int | None) -> Q:
    return Q(customer__test_clock__isnull=True) if test_clock_id is None else Q(customer__test_clock_id=test_clock_id)


def dunning_candidates(*, now: datetime, test_clock_id: int | None) -> list[tuple[int, datetime]]:
    """Unpaid invoices without a (current) dunning yet, with the moment their dunning begins (their campaign's
    first reminder, else the day after the due date), for the customers of a test clock or (None) of
    the real clock."""
    from apps.invoices.selectors import invoices_with_amount_due

    hour = settings.DUNNING_ACTION_HOUR
    reminder_days = list(DunningCampaign.objects.values_list("reminder_days_before_due", flat=True))
    if not reminder_days:
        return []
    # No dunning starts before its campaign's earliest reminder: invoices due later are not looked at.
    due_until = now.date() + timedelta(days=max((max(days, default=0) for days in reminder_days), default=0))
    # Without a dunning, or whose dunning was recovered before the invoice was reopened (a reversed
    # payment, a refund): a new cycle.
    held = InvoiceDunning.objects.filter(invoice=OuterRef("pk")).exclude(
        status__in=(DunningStatus.RECOVERED, DunningStatus.REOPENED)
    )
    invoices = invoices_with_amount_due(
        Invoice.objects.filter(_customers(test_clock_id), status__in=DUNNABLE_STATUSES, due_on__lte=due_until).filter(
            ~Exists(held)
        )
    ).select_related("customer")
    campaigns: dict[int, tuple[DunningCampaign | None, bool]] = {}
    found = []
    for invoice in invoices.iterator(chunk_size=500):
        if invoice.amount_due.amount <= 0:
            continue
        if invoice.customer_id not in campaigns:
            campaigns[invoice.customer_id] = customer_dunning_campaign(invoice.customer_id)
        campaign, _ = campaigns[invoice.customer_id]
        if campaign is None:
            continue
        found.append((invoice.pk, first_action_at(rules=campaign.rules, due_on=invoice.due_on, hour=hour)))
    return found


def dunning_run_due(*, now: datetime | None = None, test_clock_id: int | None = None) -> int:
    """What the periodic task does (and a test clock at each of its moments): reconcile dunnings whose
    invoice was settled elsewhere, start the dunnings whose moment came, then run every due action in
    order, each exactly once. Returns how many actions ran."""
    now = now or clock.now()
    scope = _customers(test_clock_id)
    for dunning_id in (
        InvoiceDunning.objects.filter(scope, status__in=OPEN_DUNNING_STATUSES)
        .filter(Q(invoice__status__in=(InvoiceStatus.PAID, InvoiceStatus.VOID)))
        .values_list("pk", flat=True)
    ):
        with transaction.atomic():
            dunning = _lock(dunning_id, skip_locked=True)
            if dunning is not None:
                _settle_if_paid(dunning, now=now)
    for invoice_id, starts_at in dunning_candidates(now=now, test_clock_id=test_clock_id):
        if starts_at <= now:
            invoice_dunning_start(
                invoice_id=invoice_id, reason=DunningStartReason.SCHEDULE, now=now, planned_at=starts_at
            )
    ran = 0
    seen: set[tuple[int, int]] = set()
    while True:
        due = list(
            InvoiceDunning.objects.filter(scope, status=DunningStatus.ACTIVE, next_action_at__lte=now)
            .order_by("next_action_at", "id")
            .values_list("pk", "step")[:500]
        )
        due = [row for row in due if row not in seen]
        if not due:
            return ran
        for dunning_id, step in due:
            seen.add((dunning_id, step))
            if dunning_run_next_action(dunning_id=dunning_id, now=now) is not None:
                ran += 1


def simulated_clock_next_moment(test_clock_id: int, after: datetime | None, until: datetime) -> datetime | None:
    """The test clock hook: the earliest dunning moment in (after, until] for the clock's customers."""
    actions = InvoiceDunning.objects.filter(
        _customers(test_clock_id), status=DunningStatus.ACTIVE, next_action_at__lte=until
    )
    if after is not None:
        actions = actions.filter(next_action_at__gt=after)
    moments = list(actions.order_by("next_action_at").values_list("next_action_at", flat=True)[:1])
    for _, starts_at in dunning_candidates(now=until, test_clock_id=test_clock_id):
        if starts_at <= until and (after is None or starts_at > after):
            moments.append(starts_at)
    return min(moments, default=None)


def simulated_clock_run(test_clock_id: int, moment: datetime) -> None:
    dunning_run_due(now=moment, test_clock_id=test_clock_id)


def _payment_invoice_ids(payment_id: int) -> tuple[Any, list[int]]:
    from apps.payments.models import Payment, PaymentAllocation

    payment = Payment.objects.select_related("customer").filter(pk=payment_id).first()
    if payment is None:
        raise NotFound(gettext("Payment %(payment_id)s does not exist.") % {"payment_id": payment_id})
    invoice_ids = list(
        PaymentAllocation.objects.filter(payment=payment).order_by("invoice_id").values_list("invoice_id", flat=True)
    )
    return payment, invoice_ids


def dunning_on_payment_failed(*, payment_id: int) -> list[InvoiceDunning]:
    """A payment failed: the dunning of each invoice it was for starts now (its retries count from
    this failure), or, already running, records the failure."""
    payment, invoice_ids = _payment_invoice_ids(payment_id)
    now = customer_now(payment.customer)
    started = []
    for invoice_id in invoice_ids:
        dunning = invoice_dunning_start(
            invoice_id=invoice_id, reason=DunningStartReason.PAYMENT_FAILED, now=now, failed_at=now
        )
        if dunning is not None:
            started.append(dunning)
            continue
        with transaction.atomic():
            existing = _current_dunning(invoice_id, lock=True)
            if existing is not None and existing.status in OPEN_DUNNING_STATUSES:
                dunning_event_record(
                    dunning=existing, type=DunningEventType.PAYMENT_FAILED, occurred_at=now,
                    data={"payment": payment.pk, "failure_code": payment.failure_code},
                )  # fmt: skip
                if existing.status == DunningStatus.ACTIVE:
                    _subscriptions_past_due(existing.invoice, now=now)
    return started


def dunning_on_payment_succeeded(*, payment_id: int) -> list[InvoiceDunning]:
    """A payment succeeded: each dunning of an invoice it paid in full ends recovered (the
    subscriptions go back to active); a part payment is counted as recovered so far."""
    payment, invoice_ids = _payment_invoice_ids(payment_id)
    now = customer_now(payment.customer)
    recovered = []
    current = InvoiceDunning.objects.filter(invoice_id__in=invoice_ids).exclude(status=DunningStatus.REOPENED)
    for dunning_id in current.order_by("pk").values_list("pk", flat=True):
        dunning = dunning_recover_if_paid(dunning_id=dunning_id, now=now)
        if dunning is not None:
            recovered.append(dunning)
    return recovered


def dunning_recover_if_paid(*, dunning_id: int, now: datetime) -> InvoiceDunning | None:
    """End one dunning recovered when its invoice is settled (the payment hook, for each dunning of the
    invoices paid). Its status is read again under its lock: a dunning that gave way to a new cycle
    meanwhile (`reopened`, by a concurrent `invoice_dunning_start`) or is recovered already is left
    alone. A dunning that cannot end so is logged and left as it is; the others are still handled."""
    try:
        with transaction.atomic():
            dunning = _lock(dunning_id)
            if dunning.status in (DunningStatus.RECOVERED, DunningStatus.REOPENED):
                return None
            return dunning if _settle_if_paid(dunning, now=now) else None
    except InvalidTransition as error:
        logger.warning("dunning %s not ended after a payment: %s", dunning_id, error.message)
        return None
