from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core.models import TimeStampedModel

from .constants import DeliveryStatus


class WebhookEndpoint(TimeStampedModel):
    """A URL of the seller's systems that receives our events, signed with its own secret."""

    url = models.URLField("URL", max_length=2000, help_text="HTTPS in production; it receives a POST per event.")
    description = models.CharField(max_length=255, blank=True)
    event_types = models.JSONField(
        default=list, blank=True, help_text="The event types sent to this endpoint; empty means every type."
    )
    secret = models.CharField(max_length=64, editable=False, help_text="Signs every delivery; shown once.")
    is_active = models.BooleanField(default=True, help_text="Inactive endpoints receive nothing.")
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    disabled_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When it was turned off after too many failures in a row."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )

    class Meta:
        ordering = ["id"]
        verbose_name = "webhook endpoint"

    def __str__(self) -> str:
        return self.description or self.url

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class WebhookEvent(models.Model):
    """One public event, recorded once per domain event (the unique source row makes sure of it)."""

    source = models.CharField(max_length=64, help_text="The domain table the event comes from.")
    source_id = models.BigIntegerField()
    type = models.CharField(max_length=64)
    occurred_at = models.DateTimeField()
    object_type = models.CharField(max_length=32)
    object_id = models.BigIntegerField()
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, editable=False)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "source_id"], name="webhook_event_source_unique"),
        ]
        indexes = [models.Index(fields=["object_type", "object_id"], name="webhook_event_object_idx")]

    def __str__(self) -> str:
        return f"evt_{self.pk} {self.type}"

    @property
    def public_id(self) -> str:
        return f"evt_{self.pk}"


class WebhookDelivery(models.Model):
    """An event on its way to one endpoint: at most one per (event, endpoint), retried until it is
    delivered or the attempts run out."""

    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, editable=False)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="webhook_delivery_event_endpoint_unique"),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING]),
                name="webhook_delivery_due_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint}"


class WebhookAttempt(models.Model):
    """One HTTP request of a delivery, as sent and as answered (the delivery log)."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    manual = models.BooleanField(default=False, help_text="Sent by staff (redeliver), not by the schedule.")
    attempted_at = models.DateTimeField()
    url = models.URLField(max_length=2000)
    request_headers = models.JSONField(default=dict)
    request_body = models.TextField()
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, help_text="The start of the response body.")
    error = models.CharField(max_length=500, blank=True, help_text="Why no response came (timeout, refused…).")
    duration_ms = models.PositiveIntegerField()
    succeeded = models.BooleanField(default=False)

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery}"


class WebhookSourceCursor(models.Model):
    """How far the collector has read one event source (see services.webhook_events_collect)."""

    source = models.CharField(max_length=64)
    scanned_id = models.BigIntegerField(default=0, help_text="The highest source id read.")
    settled_id = models.BigIntegerField(
        default=0, help_text="Every source row up to this id was committed and read (no later commit is expected)."
    )
    candidate_id = models.BigIntegerField(default=0, help_text="Becomes settled once candidate_since is old enough.")
    candidate_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source"], name="webhook_source_cursor_unique")]

    def __str__(self) -> str:
        return f"{self.source} @ {self.scanned_id}"
