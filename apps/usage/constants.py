from django.db import models


class EventRejection(models.TextChoices):
    """Why an ingested usage event was refused (returned to the sender with the event's index)."""

    INVALID = "invalid", "Malformed event"
    UNKNOWN_CUSTOMER = "unknown_customer", "Unknown customer"
    UNKNOWN_METRIC = "unknown_metric", "Unknown or archived metric"
    INVALID_TIMESTAMP = "invalid_timestamp", "Timestamp not understood"
    TIMESTAMP_OUT_OF_WINDOW = "timestamp_out_of_window", "Timestamp outside the accepted window"
    INVALID_VALUE = "invalid_value", "Value not usable by the metric"
    FILTERED_OUT = "filtered_out", "Properties outside the metric's filters"
    MISSING_GROUP = "missing_group", "Group property missing"
    # The metric is billed to the customer by pooled charges only, and the event names none of the
    # subscriptions of the pools in `POOL_MEMBER_PROPERTY`.
    UNKNOWN_SUBSCRIPTION = "unknown_subscription", "Subscription of a pool not named"
    # Dated in a period already invoiced, and received after the metric's lateness window closed.
    LATE_BEYOND_WINDOW = "late_beyond_window", "Too late for an invoiced period"


class UsageChangeKind(models.TextChoices):
    """What changed a customer's usage after the fact (`UsageEventChange`)."""

    LATE = "late", "Late event (period already invoiced)"
    VOID = "void", "Event voided"
    REPLACE = "replace", "Event replaced"


# Values are quantities: at most this many decimal places (the precision of plans' included units).
VALUE_DECIMAL_PLACES = 6
VALUE_MAX_DIGITS = 28

# The event property that names the subscription an event belongs to (its id, as the API shows it): how
# the usage of a pooled charge is told apart between a customer's subscriptions (docs/pricing.md,
# "Pooled allowances").
POOL_MEMBER_PROPERTY = "subscription_id"
