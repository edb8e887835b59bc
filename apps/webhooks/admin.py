from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from apps.core.admin import ReadOnlyInline, ServiceAdminMixin, adopt, status_badge
from apps.core.errors import ApplicationError
from apps.core.outbox import event_types

from .constants import DeliveryStatus
from .models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from .services import (
    webhook_delivery_redeliver,
    webhook_endpoint_create,
    webhook_endpoint_secret_roll,
    webhook_endpoint_update,
)

DELIVERY_TONES = {
    DeliveryStatus.PENDING: "info",
    DeliveryStatus.RETRYING: "warning",
    DeliveryStatus.SUCCEEDED: "success",
    DeliveryStatus.FAILED: "danger",
}


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(label=_("URL"), max_length=2000, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every event type."),
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "event_types", "is_active"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["event_types"].choices = [
            (name, f"{name} — {description}") for name, description in event_types().items()
        ]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ServiceAdminMixin, admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["__str__", "url", "types", "state", "consecutive_failures", "delivery_counts", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["url", "description"]
    readonly_fields = ["consecutive_failures", "disabled_at", "created_by", "created_at", "deliveries_link"]
    actions = ["roll_secret"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                delivered=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.SUCCEEDED)),
                undelivered=Count("deliveries", filter=~Q(deliveries__status=DeliveryStatus.SUCCEEDED)),
            )
        )

    @admin.display(description=_("event types"))
    def types(self, obj):
        return ", ".join(obj.event_types) or "all"

    @admin.display(description=_("state"))
    def state(self, obj):
        if obj.disabled_at:
            return status_badge(_("disabled after failures"), "danger")
        return status_badge("active", "success") if obj.is_active else status_badge("inactive", "neutral")

    @admin.display(description=_("delivered / not yet"))
    def delivery_counts(self, obj):
        return f"{obj.delivered} / {obj.undelivered}"

    @admin.display(description=_("deliveries"))
    def deliveries_link(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        url = reverse("admin:webhooks_webhookdelivery_changelist") + f"?endpoint__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, _("Delivery log"))

    def has_delete_permission(self, request, obj=None):
        return False  # turn it off instead: its delivery log stays

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in ["url", "description", "event_types", "is_active"]}
        if change:
            endpoint = self.call_service(webhook_endpoint_update, endpoint_id=obj.pk, **data)
            adopt(obj, endpoint)
            return
        endpoint, secret = self.call_service(webhook_endpoint_create, **data, actor=request.user)
        adopt(obj, endpoint)
        self.message_user(
            request,
            _("Webhook endpoint created. Its signing secret is shown only this once, copy it now: %(secret)s")
            % {"secret": secret},
            messages.WARNING,
        )

    @admin.action(description=_("Roll the signing secret (shown once)"), permissions=["change"])
    def roll_secret(self, request, queryset):
        for endpoint in queryset:
            _rolled, secret = webhook_endpoint_secret_roll(endpoint_id=endpoint.pk)
            self.message_user(
                request,
                _("New signing secret of %(endpoint)s (shown only this once): %(secret)s")
                % {"endpoint": endpoint, "secret": secret},
                messages.WARNING,
            )


class WebhookAttemptInline(ReadOnlyInline):
    model = WebhookAttempt
    fields = ["number", "manual", "attempted_at", "response_status", "error", "duration_ms", "response_body"]
    view_permission_from_parent = True


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "event_link", "event_type", "endpoint", "status_badge", "attempt_count",
                    "last_response_status", "next_attempt_at", "delivered_at"]  # fmt: skip
    list_filter = ["status", "endpoint", "event__type"]
    list_select_related = ["event", "endpoint"]
    search_fields = ["event__type", "endpoint__url"]
    date_hierarchy = "created_at"
    fields = ["event_link", "endpoint", "status", "attempt_count", "next_attempt_at", "last_attempt_at",
              "last_response_status", "delivered_at", "created_at", "request_body"]  # fmt: skip
    readonly_fields = fields
    inlines = [WebhookAttemptInline]
    actions = ["redeliver"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("status"))
    def status_badge(self, obj):
        return status_badge(obj.get_status_display(), DELIVERY_TONES.get(obj.status, "neutral"))

    @admin.display(description=_("event"))
    def event_link(self, obj):
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:webhooks_webhookevent_change", args=[obj.event_id]), obj.event
        )

    @admin.display(description=_("type"), ordering="event__type")
    def event_type(self, obj):
        return obj.event.type

    @admin.display(description=_("payload"))
    def request_body(self, obj):
        from .services import webhook_event_body

        return webhook_event_body(obj.event).decode()

    @admin.action(description=_("Redeliver the selected deliveries now"), permissions=["change"])
    def redeliver(self, request, queryset):
        for delivery in queryset.select_related("event", "endpoint"):
            try:
                attempt = webhook_delivery_redeliver(delivery_id=delivery.pk)
            except ApplicationError as exc:
                self.message_user(request, f"{delivery}: {exc.message}", messages.ERROR)
                continue
            if attempt.succeeded:
                self.message_user(request, f"{delivery}: delivered (HTTP {attempt.response_status}).", messages.SUCCESS)
            else:
                outcome = f"HTTP {attempt.response_status}" if attempt.response_status else attempt.error
                self.message_user(
                    request,
                    _("%(delivery)s: not delivered (%(outcome)s).") % {"delivery": delivery, "outcome": outcome},
                    messages.ERROR,
                )


class WebhookDeliveryInline(ReadOnlyInline):
    model = WebhookDelivery
    fields = ["endpoint", "status", "attempt_count", "last_response_status", "delivered_at"]
    view_permission_from_parent = True


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ["public_id", "type", "object_type", "object_id", "occurred_at", "created_at"]
    list_filter = ["type", "object_type"]
    search_fields = ["type"]
    date_hierarchy = "occurred_at"
    fields = ["type", "object_type", "object_id", "occurred_at", "source", "source_id", "data", "created_at"]
    readonly_fields = fields
    inlines = [WebhookDeliveryInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
