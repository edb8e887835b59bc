from rest_framework import serializers

from apps.catalog.constants import BillingInterval
from apps.catalog.models import Plan, PlanPrice, Product
from apps.core.api.serializers import MoneyInputSerializer, MoneyOutputSerializer


class ProductOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = ["id", "code", "name", "description", "is_archived", "created_at", "updated_at"]
        read_only_fields = fields


class ProductCreateInputSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=64, help_text="Lower-case letters, digits, '.', '_' and '-'.")
    name = serializers.CharField(max_length=255)
    description = serializers.CharField(required=False, default="", allow_blank=True)


class PlanPriceOutputSerializer(MoneyOutputSerializer):
    """A plan's fee per billing period per unit, in one currency."""

    def to_representation(self, instance: PlanPrice) -> dict:
        return super().to_representation(instance.amount)


class PlanOutputSerializer(serializers.ModelSerializer):
    product = serializers.PrimaryKeyRelatedField(read_only=True)
    prices = PlanPriceOutputSerializer(many=True, read_only=True)

    class Meta:
        model = Plan
        fields = [
            "id",
            "product",
            "code",
            "name",
            "description",
            "interval",
            "interval_count",
            "is_archived",
            "prices",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class PlanCreateInputSerializer(serializers.Serializer):
    product = serializers.PrimaryKeyRelatedField(queryset=Product.objects.all(), help_text="Product id.")
    code = serializers.CharField(max_length=64, help_text="Lower-case letters, digits, '.', '_' and '-'.")
    name = serializers.CharField(max_length=255)
    description = serializers.CharField(required=False, default="", allow_blank=True)
    interval = serializers.ChoiceField(choices=BillingInterval.choices, default=BillingInterval.MONTH)
    interval_count = serializers.IntegerField(min_value=1, max_value=32767, default=1)
    prices = MoneyInputSerializer(
        many=True, allow_empty=False, help_text='Fee per period per unit, one per currency: [{"amount": "49.00", …}].'
    )
