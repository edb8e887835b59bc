from rest_framework import serializers

from apps.payments.dunning.constants import DunningEndAction
from apps.payments.dunning.models import DunningCampaign
from apps.payments.dunning.schedule import MAX_DAYS


def _days(help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_DAYS), allow_empty=True, required=False,
        default=list, help_text=help_text,
    )  # fmt: skip


class DunningCampaignOutputSerializer(serializers.ModelSerializer):
    retry_days = serializers.ListField(child=serializers.IntegerField(), read_only=True)
    reminder_days_before_due = serializers.ListField(child=serializers.IntegerField(), read_only=True)
    reminder_days_after_due = serializers.ListField(child=serializers.IntegerField(), read_only=True)

    class Meta:
        model = DunningCampaign
        fields = [
            "id", "name", "description", "is_default", "reminder_days_before_due", "reminder_days_after_due",
            "retry_days", "final_notice_day", "end_action", "end_action_day", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class DunningCampaignCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255)
    description = serializers.CharField(required=False, default="", allow_blank=True)
    is_default = serializers.BooleanField(
        required=False, default=False, help_text="true: used for every customer without a campaign of its own."
    )
    reminder_days_before_due = _days("Days before the due date, e.g. [3].")
    reminder_days_after_due = _days("Days after the due date, e.g. [1, 7].")
    retry_days = _days("Days after the first failed card payment, e.g. [3, 5, 7].")
    final_notice_day = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, max_value=MAX_DAYS,
        help_text="Days after the due date; null: no final notice.",
    )  # fmt: skip
    end_action = serializers.ChoiceField(choices=DunningEndAction.choices)
    end_action_day = serializers.IntegerField(
        min_value=1, max_value=MAX_DAYS, help_text="Days after the due date (after every other step)."
    )


class DunningCampaignUpdateInputSerializer(DunningCampaignCreateInputSerializer):
    """Every field optional (PATCH). Running dunnings keep the rules they started with."""

    def get_fields(self):
        fields = super().get_fields()
        for field in fields.values():
            field.required = False
            field.default = serializers.empty
        return fields
