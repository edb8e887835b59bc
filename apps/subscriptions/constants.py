from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class SubscriptionStatus(models.TextChoices):
    INCOMPLETE = "incomplete", _("Incomplete")
    TRIALING = "trialing", _("Trialing")
    ACTIVE = "active", _("Active")
    PAST_DUE = "past_due", _("Past due")
    PAUSED = "paused", _("Paused")
    CANCELED = "canceled", _("Canceled")


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
    CREATED = "created", pgettext_lazy("event", "Created")
    CANCELLATION_SCHEDULED = "cancellation_scheduled", _("Cancellation at period end scheduled")
    CANCELLATION_UNDONE = "cancellation_undone", _("Scheduled cancellation undone")
    CANCELED = "canceled", _("Canceled")
    TRIAL_ENDED = "trial_ended", _("Trial ended")
    PAUSED = "paused", _("Paused")
    RESUMED = "resumed", _("Resumed")
    VERSION_MIGRATED = "version_migrated", _("Moved to another plan version")
    CHANGED = "changed", _("Plan or quantity changed")
    CHANGE_SCHEDULED = "change_scheduled", _("Plan or quantity change scheduled")
    SCHEDULED_CHANGE_CANCELED = "scheduled_change_canceled", _("Scheduled change withdrawn")
    VERSION_MIGRATION_SCHEDULED = "version_migration_scheduled", _("Plan version migration scheduled")
    PAST_DUE = "past_due", _("Past due (an invoice is unpaid)")
    PAYMENT_RECOVERED = "payment_recovered", _("Back to active (unpaid invoices paid)")
    PRICE_OVERRIDE_SET = "price_override_set", _("Custom price set")
    PRICE_OVERRIDE_REMOVED = "price_override_removed", _("Custom price removed")
    PROGRESSIVE_BILLING_SET = "progressive_set", _("Custom progressive billing set")
    PROGRESSIVE_BILLING_REMOVED = "progressive_removed", _("Custom progressive billing removed")
