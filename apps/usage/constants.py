from django.db import models
from django.utils.translation import gettext_lazy as _


class EventRejection(models.TextChoices):
    """Why an ingested usage event was refused (returned to the sender with the event's index)."""

    INVALID = "invalid", _("Malformed event")
    UNKNOWN_CUSTOMER = "unknown_customer", _("Unknown customer")
    UNKNOWN_METRIC = "unknown_metric", _("Unknown or archived metric")
    INVALID_TIMESTAMP = "invalid_timestamp", _("Timestamp not understood")
    TIMESTAMP_OUT_OF_WINDOW = "timestamp_out_of_window", _("Timestamp outside the accepted window")
    INVALID_VALUE = "invalid_value", _("Value not usable by the metric")
    FILTERED_OUT = "filtered_out", _("Properties outside the metric's filters")
    MISSING_GROUP = "missing_group", _("Group property missing")
    # The metric is billed to the customer by pooled charges only, and the event names none of the
    # subscriptions of the pools in `POOL_MEMBER_PROPERTY`.
    UNKNOWN_SUBSCRIPTION = "unknown_subscription", _("Subscription of a pool not named")
    # Dated in a period already invoiced, and received after the metric's lateness window closed.
    LATE_BEYOND_WINDOW = "late_beyond_window", _("Too late for an invoiced period")


class UsageChangeKind(models.TextChoices):
    """What changed a customer's usage after the fact (`UsageEventChange`)."""

    LATE = "late", _("Late event (period already invoiced)")
    VOID = "void", _("Event voided")
    REPLACE = "replace", _("Event replaced")


# Values are quantities: at most this many decimal places (the precision of plans' included units).
VALUE_DECIMAL_PLACES = 6
VALUE_MAX_DIGITS = 28

# The event property that names the subscription an event belongs to (its id, as the API shows it): how
# the usage of a pooled charge is told apart between a customer's subscriptions (docs/pricing.md,
# "Pooled allowances").
POOL_MEMBER_PROPERTY = "subscription_id"
