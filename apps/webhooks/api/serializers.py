from django.core.validators import URLValidator
from django.utils.translation import gettext
from rest_framework import serializers

from apps.core.outbox import event_types

from ..constants import DeliveryStatus
from ..models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


class WebhookEndpointOutputSerializer(serializers.ModelSerializer):
    disabled_after_failures = serializers.SerializerMethodField()

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "description", "event_types", "is_active", "consecutive_failures",
                  "disabled_at", "disabled_after_failures", "created_at", "updated_at"]  # fmt: skip

    def get_disabled_after_failures(self, obj: WebhookEndpoint) -> bool:
        return obj.disabled_at is not None


class WebhookEndpointCreatedOutputSerializer(WebhookEndpointOutputSerializer):
    secret = serializers.CharField(help_text="The signing secret: returned only in this response.")

    class Meta(WebhookEndpointOutputSerializer.Meta):
        fields = [*WebhookEndpointOutputSerializer.Meta.fields, "secret"]


class WebhookEndpointCreateInputSerializer(serializers.Serializer):
    url = serializers.URLField(
        max_length=2000,
        validators=[URLValidator(schemes=["http", "https"], message="Enter a valid http:// or https:// URL.")],
    )
    description = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    event_types = serializers.ListField(child=serializers.CharField(max_length=64), required=False, default=list)
    is_active = serializers.BooleanField(required=False, default=True)

    def validate_event_types(self, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(event_types()))
        if unknown:
            raise serializers.ValidationError(
                [gettext("Unknown event type: %(name)s.") % {"name": name} for name in unknown]
            )
        return value


class WebhookEndpointUpdateInputSerializer(WebhookEndpointCreateInputSerializer):
    pass


class WebhookEndpointSecretOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    secret = serializers.CharField()


class WebhookEventTypeOutputSerializer(serializers.Serializer):
    type = serializers.CharField()
    description = serializers.CharField()


class WebhookAttemptOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["number", "manual", "attempted_at", "url", "response_status", "response_body", "error",
                  "duration_ms", "succeeded"]  # fmt: skip


class WebhookDeliveryOutputSerializer(serializers.ModelSerializer):
    event_id = serializers.CharField(source="event.public_id")
    event_type = serializers.CharField(source="event.type")
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)
    attempts = WebhookAttemptOutputSerializer(many=True)

    class Meta:
        model = WebhookDelivery
        fields = ["id", "event_id", "event_type", "endpoint", "status", "attempt_count", "next_attempt_at",
                  "last_attempt_at", "last_response_status", "delivered_at", "created_at", "attempts"]  # fmt: skip
