from django.db import models

from .schedule import ActionKind


class DunningEndAction(models.TextChoices):
    MARK_UNCOLLECTIBLE = "mark_uncollectible", "Mark the invoice uncollectible"
    CANCEL_SUBSCRIPTION = "cancel_subscription", "Cancel the subscription"
    PAUSE_SUBSCRIPTION = "pause_subscription", "Pause the subscription"


class DunningStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    RECOVERED = "recovered", "Recovered"
    EXHAUSTED = "exhausted", "Exhausted (end action taken)"
    EXCLUDED = "excluded", "Excluded"
    CLOSED = "closed", "Closed (invoice voided)"
    REOPENED = "reopened", "Reopened (dunned again)"


# Statuses of a dunning that still holds its invoice (a new dunning never starts beside it).
OPEN_DUNNING_STATUSES = (DunningStatus.ACTIVE, DunningStatus.EXCLUDED)

# Allowed changes of a dunning's status.
DUNNING_TRANSITIONS: dict[str, frozenset[str]] = {
    DunningStatus.ACTIVE: frozenset(
        {DunningStatus.RECOVERED, DunningStatus.EXHAUSTED, DunningStatus.EXCLUDED, DunningStatus.CLOSED}
    ),
    DunningStatus.EXCLUDED: frozenset({DunningStatus.ACTIVE, DunningStatus.RECOVERED, DunningStatus.CLOSED}),
    DunningStatus.EXHAUSTED: frozenset({DunningStatus.RECOVERED}),
    # A payment reversed (or refunded) reopens the invoice: the recovered dunning gives way to a new one.
    DunningStatus.RECOVERED: frozenset({DunningStatus.REOPENED}),
    DunningStatus.CLOSED: frozenset(),
    DunningStatus.REOPENED: frozenset(),
}


class DunningActionKind(models.TextChoices):
    RETRY = ActionKind.RETRY.value, "Payment retry"
    OVERDUE = ActionKind.OVERDUE.value, "Overdue (subscription past due)"
    REMINDER_BEFORE_DUE = ActionKind.REMINDER_BEFORE_DUE.value, "Reminder before the due date"
    REMINDER_AFTER_DUE = ActionKind.REMINDER_AFTER_DUE.value, "Reminder after the due date"
    FINAL_NOTICE = ActionKind.FINAL_NOTICE.value, "Final notice"
    END_ACTION = ActionKind.END_ACTION.value, "End action"


class DunningStartReason(models.TextChoices):
    PAYMENT_FAILED = "payment_failed", "A payment failed"
    SCHEDULE = "schedule", "First reminder or due date reached"


class DunningEventType(models.TextChoices):
    STARTED = "started", "Started"
    ACTION_DONE = "action_done", "Action done"
    ACTION_SKIPPED = "action_skipped", "Action skipped"
    ACTION_FAILED = "action_failed", "Action failed"
    PAYMENT_FAILED = "payment_failed", "Payment failed"
    RECOVERED = "recovered", "Recovered"
    EXHAUSTED = "exhausted", "Exhausted"
    EXCLUDED = "excluded", "Excluded"
    RESUMED = "resumed", "Resumed"
    CLOSED = "closed", "Closed"
    REOPENED = "reopened", "Reopened (dunned again)"
