from django.db import models
from django.utils.translation import gettext_lazy as _

from .schedule import ActionKind


class DunningEndAction(models.TextChoices):
    MARK_UNCOLLECTIBLE = "mark_uncollectible", _("Mark the invoice uncollectible")
    CANCEL_SUBSCRIPTION = "cancel_subscription", _("Cancel the subscription")
    PAUSE_SUBSCRIPTION = "pause_subscription", _("Pause the subscription")


class DunningStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    RECOVERED = "recovered", _("Recovered")
    EXHAUSTED = "exhausted", _("Exhausted (end action taken)")
    EXCLUDED = "excluded", _("Excluded")
    CLOSED = "closed", _("Closed (invoice voided)")
    REOPENED = "reopened", _("Reopened (dunned again)")


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
    RETRY = ActionKind.RETRY.value, _("Payment retry")
    OVERDUE = ActionKind.OVERDUE.value, _("Overdue (subscription past due)")
    REMINDER_BEFORE_DUE = ActionKind.REMINDER_BEFORE_DUE.value, _("Reminder before the due date")
    REMINDER_AFTER_DUE = ActionKind.REMINDER_AFTER_DUE.value, _("Reminder after the due date")
    FINAL_NOTICE = ActionKind.FINAL_NOTICE.value, _("Final notice")
    END_ACTION = ActionKind.END_ACTION.value, _("End action")


class DunningStartReason(models.TextChoices):
    PAYMENT_FAILED = "payment_failed", _("A payment failed")
    SCHEDULE = "schedule", _("First reminder or due date reached")


class DunningEventType(models.TextChoices):
    STARTED = "started", _("Started")
    ACTION_DONE = "action_done", _("Action done")
    ACTION_SKIPPED = "action_skipped", _("Action skipped")
    ACTION_FAILED = "action_failed", _("Action failed")
    PAYMENT_FAILED = "payment_failed", _("Payment failed")
    RECOVERED = "recovered", _("Recovered")
    EXHAUSTED = "exhausted", _("Exhausted")
    EXCLUDED = "excluded", _("Excluded")
    RESUMED = "resumed", _("Resumed")
    CLOSED = "closed", _("Closed")
    REOPENED = "reopened", _("Reopened (dunned again)")
