from rest_framework import serializers

from apps.accounts.models import Customer
from apps.subscriptions.models import Subscription

from ..constants import MAX_THRESHOLDS, AlertKind
from ..models import Alert, AlertCrossing

THRESHOLDS_HELP = (
    "Decimal strings above zero (usage units, or money in the customer's currency for spend alerts), "
    f"at most {MAX_THRESHOLDS}; stored sorted and without repeats."
)


class AlertOutputSerializer(serializers.ModelSerializer):
    metric = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    thresholds = serializers.ListField(child=serializers.CharField(), help_text=THRESHOLDS_HELP)

    class Meta:
        model = Alert
        fields = ["id", "customer", "subscription", "kind", "metric", "thresholds", "name", "origin",
                  "is_hard_limit", "is_active", "created_at", "updated_at"]  # fmt: skip


class AlertCreateInputSerializer(serializers.Serializer):
    customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.all())
    subscription = serializers.PrimaryKeyRelatedField(
        queryset=Subscription.objects.all(), required=False, allow_null=True, default=None,
        help_text="Watch this subscription only; empty: the customer as a whole.",
    )  # fmt: skip
    kind = serializers.ChoiceField(choices=AlertKind.choices)
    metric = serializers.CharField(
        max_length=64, required=False, allow_null=True, default=None,
        help_text="Usage alerts: the code of a metric on the plan watched. Spend alerts: none.",
    )  # fmt: skip
    thresholds = serializers.ListField(child=serializers.CharField(max_length=40), help_text=THRESHOLDS_HELP)
    name = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    is_hard_limit = serializers.BooleanField(required=False, default=False)
    is_active = serializers.BooleanField(required=False, default=True)


class AlertUpdateInputSerializer(serializers.Serializer):
    thresholds = serializers.ListField(child=serializers.CharField(max_length=40), help_text=THRESHOLDS_HELP)
    name = serializers.CharField(max_length=255, allow_blank=True)
    is_hard_limit = serializers.BooleanField()
    is_active = serializers.BooleanField()


class AlertCrossingOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = AlertCrossing
        fields = ["id", "alert", "customer", "threshold", "value", "currency", "period_start_at", "period_end_at",
                  "crossed_at", "is_limit", "notified_at"]  # fmt: skip


class SpendStatusOutputSerializer(serializers.Serializer):
    customer = serializers.IntegerField(source="customer_id")
    as_of = serializers.DateTimeField(help_text="The customer's current time (its test clock's, if any).")
    usage_blocked = serializers.BooleanField(
        help_text="A hard limit is reached in the current period. Stopping the customer's usage is up to your "
        "application: we keep billing what is sent."
    )
    limits_reached = AlertCrossingOutputSerializer(many=True)
    prepaid_credits_exhausted = serializers.BooleanField(
        help_text="The customer holds prepaid credit wallets and has no usable credit left (spent or expired). "
        "Whether to stop a prepaid customer then is up to your application."
    )
