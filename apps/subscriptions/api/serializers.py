from rest_framework import serializers

from apps.accounts.models import Customer
from apps.catalog.constants import VersionMigrationTiming
from apps.catalog.models import Plan, PlanVersion
from apps.invoices.api.serializers import InvoiceListOutputSerializer
from apps.subscriptions.models import Subscription


class SubscriptionOutputSerializer(serializers.ModelSerializer):
    customer = serializers.PrimaryKeyRelatedField(read_only=True)
    plan = serializers.PrimaryKeyRelatedField(read_only=True)
    plan_version = serializers.PrimaryKeyRelatedField(read_only=True, help_text="The plan version it is billed at.")
    plan_version_number = serializers.IntegerField(source="plan_version.number", read_only=True)
    pending_plan_version = serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True, help_text="A version it moves to when the next period begins."
    )
    currency = serializers.CharField(read_only=True, help_text="The customer's billing currency (ISO 4217).")

    class Meta:
        model = Subscription
        fields = [
            "id",
            "customer",
            "plan",
            "plan_version",
            "plan_version_number",
            "pending_plan_version",
            "quantity",
            "currency",
            "status",
            "billing_anchor_at",
            "started_at",
            "current_period_start_at",
            "current_period_end_at",
            "next_billing_at",
            "cancel_at_period_end",
            "canceled_at",
            "ended_at",
            "cancellation_reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class SubscriptionCreateOutputSerializer(SubscriptionOutputSerializer):
    invoices = InvoiceListOutputSerializer(
        many=True, read_only=True, help_text="Its invoices (those issued at once on creation)."
    )

    class Meta(SubscriptionOutputSerializer.Meta):
        fields = [*SubscriptionOutputSerializer.Meta.fields, "invoices"]
        read_only_fields = fields


class SubscriptionCreateInputSerializer(serializers.Serializer):
    customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.all(), help_text="Customer id.")
    plan = serializers.PrimaryKeyRelatedField(queryset=Plan.objects.all(), help_text="Plan id.")
    quantity = serializers.IntegerField(min_value=1, max_value=2147483647, default=1)
    started_at = serializers.DateTimeField(
        required=False, help_text="When the first period starts (default: now). Past periods are invoiced at once."
    )


class SubscriptionCancelInputSerializer(serializers.Serializer):
    at_period_end = serializers.BooleanField(
        default=True,
        help_text="True: the subscription does not renew and ends when the current period ends (undo until "
        "then). False: it ends now and nothing more is billed.",
    )
    reason = serializers.CharField(required=False, default="", allow_blank=True, max_length=500)


class SubscriptionMigrateVersionInputSerializer(serializers.Serializer):
    version = serializers.PrimaryKeyRelatedField(
        queryset=PlanVersion.objects.all(), help_text="Id of a version of the subscription's plan."
    )
    timing = serializers.ChoiceField(
        choices=VersionMigrationTiming.choices,
        default=VersionMigrationTiming.NEXT_PERIOD,
        help_text="`next_period` (default): the version takes over when the next period begins. `now`: it "
        "prices everything billed from now on (the period already invoiced is not re-billed).",
    )
