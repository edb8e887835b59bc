"""The dunning schedule: pure date arithmetic, no ORM, no settings.

Given an invoice's due date, the rules of its campaign and the moment its first payment failed (if
one did), `dunning_plan` returns every action of the campaign in the order it happens:

- reminders *before* the due date, at `due date − N days`;
- the invoice becomes **overdue** the day after its due date (its subscriptions go `past_due`);
- reminders *after* the due date, at `due date + N days`;
- payment **retries** (card invoices), `N` days after the first failed payment (after the due date
  when no payment has failed);
- the **final notice**, at `due date + N days`;
- the **end action** (mark uncollectible, cancel or pause the subscription), at `due date + N days`,
  and never before any other action.

Days are calendar days (31 Jan + 1 day = 1 Feb; 28 Feb 2027 + 1 day = 1 Mar; 28 Feb 2028 + 1 day =
29 Feb); actions counted from a date happen at `hour`:00 UTC that day; retries keep the time of day
of the failure. Actions at the same moment run in the order of `ActionKind` below (a retry first: if
it succeeds, nothing else is sent).
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from django.utils.translation import gettext


class ActionKind(StrEnum):
    RETRY = "retry"
    OVERDUE = "overdue"
    REMINDER_BEFORE_DUE = "reminder_before_due"
    REMINDER_AFTER_DUE = "reminder_after_due"
    FINAL_NOTICE = "final_notice"
    END_ACTION = "end_action"


# Order of actions falling on the same moment.
_PRIORITY = {kind: position for position, kind in enumerate(ActionKind)}
# Kinds that only make sense on time: when dunning starts after their moment, they are skipped.
SKIPPED_WHEN_LATE = frozenset({ActionKind.REMINDER_BEFORE_DUE, ActionKind.REMINDER_AFTER_DUE, ActionKind.FINAL_NOTICE})
MAX_DAYS = 365


@dataclass(frozen=True)
class CampaignRules:
    """What a campaign does, as plain values (a campaign row, or the snapshot a dunning keeps)."""

    retry_days: tuple[int, ...]
    reminder_days_before_due: tuple[int, ...]
    reminder_days_after_due: tuple[int, ...]
    final_notice_day: int | None
    end_action: str
    end_action_day: int


@dataclass(frozen=True)
class PlannedAction:
    step: int  # position in the plan, from 0
    kind: ActionKind
    at: datetime
    day: int  # days relative to the due date (negative: before it) or, for retries, to the failure
    attempt: int | None = None  # retries: the planned attempt (when it runs, the invoice's next attempt number)
    skipped: bool = False  # its moment had passed when dunning started


def rules_errors(rules: CampaignRules) -> dict[str, list[str]]:
    """Field-level problems with a campaign's rules (empty when they make a valid campaign)."""
    errors: dict[str, list[str]] = {}

    def check_days(field: str, days: tuple[int, ...], *, minimum: int) -> None:
        if any(not isinstance(day, int) or isinstance(day, bool) for day in days):
            errors[field] = [gettext("Give whole numbers of days.")]
        elif any(day < minimum or day > MAX_DAYS for day in days):
            errors[field] = [
                gettext("Each day must be from %(minimum)s to %(maximum)s.") % {"minimum": minimum, "maximum": MAX_DAYS}
            ]
        elif len(set(days)) != len(days):
            errors[field] = [gettext("Give each day once.")]

    check_days("retry_days", rules.retry_days, minimum=1)
    check_days("reminder_days_before_due", rules.reminder_days_before_due, minimum=1)
    check_days("reminder_days_after_due", rules.reminder_days_after_due, minimum=1)
    if rules.final_notice_day is not None:
        check_days("final_notice_day", (rules.final_notice_day,), minimum=1)
    check_days("end_action_day", (rules.end_action_day,), minimum=1)
    if "end_action_day" not in errors:
        after_due = [*rules.reminder_days_after_due]
        if rules.final_notice_day is not None:
            after_due.append(rules.final_notice_day)
        valid_after_due = [day for day in after_due if isinstance(day, int)]
        if valid_after_due and rules.end_action_day <= max(valid_after_due):
            errors["end_action_day"] = [
                gettext(
                    "The end action comes after the last reminder and the final notice: give more than %(days)s days."
                )
                % {"days": max(valid_after_due)}
            ]
    return errors


def _at_day(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour=hour), tzinfo=UTC)


def dunning_plan(
    *,
    rules: CampaignRules,
    due_on: date,
    first_failed_at: datetime | None,
    started_at: datetime,
    hour: int = 0,
) -> list[PlannedAction]:
    """Every action of the campaign for one invoice, in order. Reminders and the final notice whose
    moment had passed when dunning started (`started_at`) are marked skipped: they are never sent late.
    Retries come after the first failed payment (the dunning's start is never before it)."""
    if started_at.tzinfo is None or (first_failed_at is not None and first_failed_at.tzinfo is None):
        raise ValueError("the dunning schedule takes aware datetimes only")
    entries: list[tuple[datetime, ActionKind, int, int | None]] = []
    for day in rules.reminder_days_before_due:
        entries.append((_at_day(due_on - timedelta(days=day), hour), ActionKind.REMINDER_BEFORE_DUE, -day, None))
    entries.append((_at_day(due_on + timedelta(days=1), hour), ActionKind.OVERDUE, 1, None))
    for day in rules.reminder_days_after_due:
        entries.append((_at_day(due_on + timedelta(days=day), hour), ActionKind.REMINDER_AFTER_DUE, day, None))
    for attempt, day in enumerate(sorted(rules.retry_days), start=2):
        retry_at = (
            first_failed_at.astimezone(UTC) + timedelta(days=day)
            if first_failed_at is not None
            else _at_day(due_on + timedelta(days=day), hour)
        )
        entries.append((retry_at, ActionKind.RETRY, day, attempt))
    if rules.final_notice_day is not None:
        notice_at = _at_day(due_on + timedelta(days=rules.final_notice_day), hour)
        entries.append((notice_at, ActionKind.FINAL_NOTICE, rules.final_notice_day, None))
    end_at = max([_at_day(due_on + timedelta(days=rules.end_action_day), hour), *(entry[0] for entry in entries)])
    entries.append((end_at, ActionKind.END_ACTION, rules.end_action_day, None))
    entries.sort(key=lambda entry: (entry[0], _PRIORITY[entry[1]], entry[2]))
    return [
        PlannedAction(
            step=step,
            kind=kind,
            at=at,
            day=day,
            attempt=attempt,
            skipped=kind in SKIPPED_WHEN_LATE and at < started_at,
        )
        for step, (at, kind, day, attempt) in enumerate(entries)
    ]


def first_action_at(*, rules: CampaignRules, due_on: date, hour: int = 0) -> datetime:
    """When dunning of an invoice nobody failed to pay begins: its first reminder before the due date,
    else the day after the due date (the invoice is overdue)."""
    if rules.reminder_days_before_due:
        return _at_day(due_on - timedelta(days=max(rules.reminder_days_before_due)), hour)
    return _at_day(due_on + timedelta(days=1), hour)
