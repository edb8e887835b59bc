from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from apps.core.models import TimeStampedModel

from .constants import DeliveryStatus


class WebhookEndpoint(TimeStampedModel):
    """A URL of the seller's systems that receives our events, signed with its own secret."""

    url = models.URLField(_("URL"), max_length=2000, help_text=_("HTTPS in production; it receives a POST per event."))
    description = models.CharField(max_length=255, blank=True, verbose_name=_("description"))
    event_types = models.JSONField(
        default=list,
        blank=True,
        help_text=_("The event types sent to this endpoint; empty means every type."),
        verbose_name=_("event types"),
    )
    secret = models.CharField(
        max_length=64, editable=False, help_text=_("Signs every delivery; shown once."), verbose_name=_("secret")
    )
    is_active = models.BooleanField(
        default=True, help_text=_("Inactive endpoints receive nothing."), verbose_name=_("is active")
    )
    consecutive_failures = models.PositiveIntegerField(
        default=0, editable=False, verbose_name=_("consecutive failures")
    )
    disabled_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text=_("When it was turned off after too many failures in a row."),
        verbose_name=_("disabled at"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        verbose_name=_("created by"),
    )

    class Meta:
        ordering = ["id"]
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")

    def __str__(self) -> str:
        return self.description or self.url

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class WebhookEvent(models.Model):
    """One public event, recorded once per domain event (the unique source row makes sure of it)."""

    source = models.CharField(
        max_length=64, help_text=_("The domain table the event comes from."), verbose_name=_("source")
    )
    source_id = models.BigIntegerField(verbose_name=_("source ID"))
    type = models.CharField(max_length=64, verbose_name=_("type"))
    occurred_at = models.DateTimeField(verbose_name=_("occurred at"))
    object_type = models.CharField(max_length=32, verbose_name=_("object type"))
    object_id = models.BigIntegerField(verbose_name=_("object ID"))
    data = models.JSONField(default=dict, verbose_name=_("data"))
    created_at = models.DateTimeField(auto_now_add=True, editable=False, verbose_name=_("created at"))

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "source_id"], name="webhook_event_source_unique"),
        ]
        indexes = [models.Index(fields=["object_type", "object_id"], name="webhook_event_object_idx")]
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")

    def __str__(self) -> str:
        return f"evt_{self.pk} {self.type}"

    @property
    def public_id(self) -> str:
        return f"evt_{self.pk}"


class WebhookDelivery(models.Model):
    """An event on its way to one endpoint: at most one per (event, endpoint), retried until it is
    delivered or the attempts run out."""

    event = models.ForeignKey(
        WebhookEvent, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("event")
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("endpoint")
    )
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING, verbose_name=_("status")
    )
    attempt_count = models.PositiveIntegerField(default=0, verbose_name=_("attempt count"))
    next_attempt_at = models.DateTimeField(null=True, blank=True, verbose_name=_("next attempt at"))
    last_attempt_at = models.DateTimeField(null=True, blank=True, verbose_name=_("last attempt at"))
    last_response_status = models.PositiveSmallIntegerField(
        null=True, blank=True, verbose_name=_("last response status")
    )
    delivered_at = models.DateTimeField(null=True, blank=True, verbose_name=_("delivered at"))
    created_at = models.DateTimeField(auto_now_add=True, editable=False, verbose_name=_("created at"))

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = _("webhook deliveries")
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
        verbose_name = _("webhook delivery")

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint}"


class WebhookAttempt(models.Model):
    """One HTTP request of a delivery, as sent and as answered (the delivery log)."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempts", verbose_name=_("delivery")
    )
    number = models.PositiveIntegerField(verbose_name=_("number"))
    manual = models.BooleanField(
        default=False, help_text=_("Sent by staff (redeliver), not by the schedule."), verbose_name=_("manual")
    )
    attempted_at = models.DateTimeField(verbose_name=_("attempted at"))
    url = models.URLField(max_length=2000, verbose_name=_("URL"))
    request_headers = models.JSONField(default=dict, verbose_name=_("request headers"))
    request_body = models.TextField(verbose_name=_("request body"))
    response_status = models.PositiveSmallIntegerField(null=True, blank=True, verbose_name=_("response status"))
    response_body = models.TextField(
        blank=True, help_text=_("The start of the response body."), verbose_name=_("response body")
    )
    error = models.CharField(
        max_length=500, blank=True, help_text=_("Why no response came (timeout, refused…)."), verbose_name=_("error")
    )
    duration_ms = models.PositiveIntegerField(verbose_name=_("duration (ms)"))
    succeeded = models.BooleanField(default=False, verbose_name=_("succeeded"))

    class Meta:
        ordering = ["delivery", "number"]
        verbose_name = _("webhook attempt")
        verbose_name_plural = _("webhook attempts")

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery}"


class WebhookSourceCursor(models.Model):
    """How far the collector has read one event source (see services.webhook_events_collect)."""

    source = models.CharField(max_length=64, verbose_name=_("source"))
    scanned_id = models.BigIntegerField(
        default=0, help_text=_("The highest source id read."), verbose_name=_("scanned ID")
    )
    settled_id = models.BigIntegerField(
        default=0,
        help_text=_("Every source row up to this id was committed and read (no later commit is expected)."),
        verbose_name=_("settled ID"),
    )
    candidate_id = models.BigIntegerField(
        default=0, help_text=_("Becomes settled once candidate_since is old enough."), verbose_name=_("candidate ID")
    )
    candidate_since = models.DateTimeField(null=True, blank=True, verbose_name=_("candidate since"))

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source"], name="webhook_source_cursor_unique")]
        verbose_name = _("webhook source cursor")
        verbose_name_plural = _("webhook source cursors")

    def __str__(self) -> str:
        return f"{self.source} @ {self.scanned_id}"
