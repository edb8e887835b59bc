"""The pure dunning schedule, with exact moments (month ends and leap days included)."""

from datetime import UTC, date, datetime

import pytest

from apps.payments.dunning.schedule import (
    ActionKind,
    CampaignRules,
    PlannedAction,
    dunning_plan,
    first_action_at,
    rules_errors,
)

RULES = CampaignRules(
    retry_days=(3, 5, 7),
    reminder_days_before_due=(3,),
    reminder_days_after_due=(1,),
    final_notice_day=10,
    end_action="cancel_subscription",
    end_action_day=14,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _summary(plan: list[PlannedAction]) -> list[tuple]:
    return [(action.step, action.kind, action.at, action.attempt, action.skipped) for action in plan]


def test_a_card_payment_failing_at_issue_retries_from_the_failure_and_reminds_around_the_due_date():
    plan = dunning_plan(
        rules=RULES, due_on=date(2026, 1, 31), first_failed_at=utc(2026, 1, 17, 10, 30),
        started_at=utc(2026, 1, 17, 10, 30), hour=9,
    )  # fmt: skip

    assert _summary(plan) == [
        (0, ActionKind.RETRY, utc(2026, 1, 20, 10, 30), 2, False),
        (1, ActionKind.RETRY, utc(2026, 1, 22, 10, 30), 3, False),
        (2, ActionKind.RETRY, utc(2026, 1, 24, 10, 30), 4, False),
        (3, ActionKind.REMINDER_BEFORE_DUE, utc(2026, 1, 28, 9), None, False),
        (4, ActionKind.OVERDUE, utc(2026, 2, 1, 9), None, False),  # 31 Jan + 1 day
        (5, ActionKind.REMINDER_AFTER_DUE, utc(2026, 2, 1, 9), None, False),
        (6, ActionKind.FINAL_NOTICE, utc(2026, 2, 10, 9), None, False),
        (7, ActionKind.END_ACTION, utc(2026, 2, 14, 9), None, False),
    ]


def test_month_end_of_a_common_year():
    plan = dunning_plan(rules=RULES, due_on=date(2027, 2, 28), first_failed_at=None, started_at=utc(2027, 2, 25))

    assert [(action.kind, action.at) for action in plan] == [
        (ActionKind.REMINDER_BEFORE_DUE, utc(2027, 2, 25)),
        (ActionKind.OVERDUE, utc(2027, 3, 1)),
        (ActionKind.REMINDER_AFTER_DUE, utc(2027, 3, 1)),
        (ActionKind.RETRY, utc(2027, 3, 3)),
        (ActionKind.RETRY, utc(2027, 3, 5)),
        (ActionKind.RETRY, utc(2027, 3, 7)),
        (ActionKind.FINAL_NOTICE, utc(2027, 3, 10)),
        (ActionKind.END_ACTION, utc(2027, 3, 14)),
    ]


def test_leap_day_and_a_reminder_before_a_month_start():
    plan = dunning_plan(rules=RULES, due_on=date(2028, 3, 2), first_failed_at=None, started_at=utc(2028, 2, 1))

    assert [action.at for action in plan][:2] == [utc(2028, 2, 28), utc(2028, 3, 3)]  # 2 Mar − 3 days = 28 Feb
    failed = dunning_plan(
        rules=RULES, due_on=date(2028, 3, 31), first_failed_at=utc(2028, 2, 26, 23, 59), started_at=utc(2028, 2, 27)
    )
    assert [action.at for action in failed if action.kind == ActionKind.RETRY] == [
        utc(2028, 2, 29, 23, 59), utc(2028, 3, 2, 23, 59), utc(2028, 3, 4, 23, 59),
    ]  # fmt: skip


def test_a_year_end_due_date():
    plan = dunning_plan(rules=RULES, due_on=date(2026, 12, 31), first_failed_at=None, started_at=utc(2026, 12, 28))

    assert plan[-1].at == utc(2027, 1, 14)
    assert plan[1].at == utc(2027, 1, 1)


def test_actions_whose_moment_passed_before_dunning_started_are_skipped_not_sent_late():
    # The card is declined two days after the due date: the reminders before and on the day after
    # the due date are history; the final notice and the end action still come.
    plan = dunning_plan(
        rules=RULES, due_on=date(2026, 3, 10), first_failed_at=utc(2026, 3, 12, 15), started_at=utc(2026, 3, 12, 15)
    )

    assert _summary(plan) == [
        (0, ActionKind.REMINDER_BEFORE_DUE, utc(2026, 3, 7), None, True),
        (1, ActionKind.OVERDUE, utc(2026, 3, 11), None, False),  # runs at once: the subscription is past due
        (2, ActionKind.REMINDER_AFTER_DUE, utc(2026, 3, 11), None, True),
        (3, ActionKind.RETRY, utc(2026, 3, 15, 15), 2, False),
        (4, ActionKind.RETRY, utc(2026, 3, 17, 15), 3, False),
        (5, ActionKind.RETRY, utc(2026, 3, 19, 15), 4, False),
        (6, ActionKind.FINAL_NOTICE, utc(2026, 3, 20), None, False),
        (7, ActionKind.END_ACTION, utc(2026, 3, 24), None, False),
    ]


def test_the_end_action_never_comes_before_a_late_retry():
    rules = CampaignRules(
        retry_days=(30,), reminder_days_before_due=(), reminder_days_after_due=(), final_notice_day=None,
        end_action="mark_uncollectible", end_action_day=5,
    )  # fmt: skip

    failed_at = utc(2026, 4, 20)
    plan = dunning_plan(rules=rules, due_on=date(2026, 5, 1), first_failed_at=failed_at, started_at=failed_at)

    assert _summary(plan) == [
        (0, ActionKind.OVERDUE, utc(2026, 5, 2), None, False),
        (1, ActionKind.RETRY, utc(2026, 5, 20), 2, False),
        (2, ActionKind.END_ACTION, utc(2026, 5, 20), None, False),  # same moment, after the retry
    ]


def test_the_first_action_of_an_invoice_nobody_failed_to_pay():
    assert first_action_at(rules=RULES, due_on=date(2026, 3, 1), hour=9) == utc(2026, 2, 26, 9)
    no_reminder = CampaignRules((), (), (), None, "mark_uncollectible", 30)
    assert first_action_at(rules=no_reminder, due_on=date(2026, 2, 28)) == utc(2026, 3, 1)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="aware"):
        dunning_plan(rules=RULES, due_on=date(2026, 1, 1), first_failed_at=None, started_at=datetime(2026, 1, 1))  # noqa: DTZ001


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({}, {}),
        ({"retry_days": (0, 3)}, {"retry_days": ["Each day must be from 1 to 365."]}),
        ({"retry_days": (3, 3)}, {"retry_days": ["Give each day once."]}),
        ({"reminder_days_before_due": (400,)}, {"reminder_days_before_due": ["Each day must be from 1 to 365."]}),
        ({"reminder_days_after_due": ("1",)}, {"reminder_days_after_due": ["Give whole numbers of days."]}),
        (
            {"end_action_day": 10},
            {
                "end_action_day": [
                    "The end action comes after the last reminder and the final notice: give more than 10 days."
                ]
            },
        ),
        ({"final_notice_day": None, "end_action_day": 2}, {}),
    ],
)
def test_rules_errors(changes, errors):
    rules = CampaignRules(**{**RULES.__dict__, **changes})

    assert rules_errors(rules) == errors
