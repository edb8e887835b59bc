from rest_framework import serializers

from apps.accounts.models import Customer
from apps.catalog.models import Plan
from apps.invoices.api.serializers import InvoiceListOutputSerializer
from apps.subscriptions.models import Subscription


class SubscriptionOutputSerializer(serializers.ModelSerializer):
    customer = serializers.PrimaryKeyRelatedField(read_only=True)
    plan = serializers.PrimaryKeyRelatedField(read_only=True)
    currency = serializers.CharField(read_only=True, help_text="The customer's billing currency (ISO 4217).")

    class Meta:
        model = Subscription
        fields = [
            "id",
            "customer",
            "plan",
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
