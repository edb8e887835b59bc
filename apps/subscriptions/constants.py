from django.db import models


class SubscriptionStatus(models.TextChoices):
    INCOMPLETE = "incomplete", "Incomplete"
    TRIALING = "trialing", "Trialing"
    ACTIVE = "active", "Active"
    PAST_DUE = "past_due", "Past due"
    PAUSED = "paused", "Paused"
    CANCELED = "canceled", "Canceled"


# Statuses whose subscriptions the billing run invoices.
# A trialing subscription is "due" when its trial ends: the run activates it and bills its first period.
BILLABLE_STATUSES = (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)

# Statuses whose subscriptions grant their plan version's features (docs/entitlements.md): a past-due
# subscription keeps them while dunning runs; paused, canceled and incomplete ones grant nothing.
ENTITLED_STATUSES = (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)

MAX_TRIAL_DAYS = 730


# The subscription state machine: the only transitions any service may make.
SUBSCRIPTION_TRANSITIONS: dict[str, frozenset[str]] = {
    SubscriptionStatus.INCOMPLETE: frozenset({SubscriptionStatus.ACTIVE, SubscriptionStatus.CANCELED}),
    SubscriptionStatus.TRIALING: frozenset({SubscriptionStatus.ACTIVE, SubscriptionStatus.CANCELED}),
    SubscriptionStatus.ACTIVE: frozenset(
        {SubscriptionStatus.PAST_DUE, SubscriptionStatus.PAUSED, SubscriptionStatus.CANCELED}
    ),
    # Past due: an invoice is unpaid. Paid, it is active again; dunning's end action cancels or pauses it.
    SubscriptionStatus.PAST_DUE: frozenset(
        {SubscriptionStatus.ACTIVE, SubscriptionStatus.PAUSED, SubscriptionStatus.CANCELED}
    ),
    SubscriptionStatus.PAUSED: frozenset({SubscriptionStatus.ACTIVE, SubscriptionStatus.CANCELED}),
    SubscriptionStatus.CANCELED: frozenset(),
}


class SubscriptionEventType(models.TextChoices):
    CREATED = "created", "Created"
    CANCELLATION_SCHEDULED = "cancellation_scheduled", "Cancellation at period end scheduled"
    CANCELLATION_UNDONE = "cancellation_undone", "Scheduled cancellation undone"
    CANCELED = "canceled", "Canceled"
    TRIAL_ENDED = "trial_ended", "Trial ended"
    PAUSED = "paused", "Paused"
    RESUMED = "resumed", "Resumed"
    VERSION_MIGRATED = "version_migrated", "Moved to another plan version"
    CHANGED = "changed", "Plan or quantity changed"
    CHANGE_SCHEDULED = "change_scheduled", "Plan or quantity change scheduled"
    SCHEDULED_CHANGE_CANCELED = "scheduled_change_canceled", "Scheduled change withdrawn"
    VERSION_MIGRATION_SCHEDULED = "version_migration_scheduled", "Plan version migration scheduled"
    PAST_DUE = "past_due", "Past due (an invoice is unpaid)"
    PAYMENT_RECOVERED = "payment_recovered", "Back to active (unpaid invoices paid)"
    PRICE_OVERRIDE_SET = "price_override_set", "Custom price set"
    PRICE_OVERRIDE_REMOVED = "price_override_removed", "Custom price removed"
