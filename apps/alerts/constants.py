from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.subscriptions.constants import SubscriptionStatus


class AlertKind(models.TextChoices):
    USAGE = "usage", _("Usage of a metric")
    SPEND = "spend", _("Spend (the upcoming invoice)")


class AlertOrigin(models.TextChoices):
    STAFF = "staff", _("Set by staff")
    CUSTOMER = "customer", _("Budget set by the customer")


# At most this many thresholds per alert, each above zero, with at most THRESHOLD_DECIMAL_PLACES
# decimals (spend thresholds: at most the currency's own decimals).
MAX_THRESHOLDS = 10
THRESHOLD_MAX_DIGITS = 24
THRESHOLD_DECIMAL_PLACES = 6

# Subscriptions whose current period is watched: every status but those that bill nothing.
LIVE_STATUSES = (
    SubscriptionStatus.TRIALING,
    SubscriptionStatus.ACTIVE,
    SubscriptionStatus.PAST_DUE,
    SubscriptionStatus.PAUSED,
)
