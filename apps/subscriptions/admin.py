from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AdminSplitDateTime

from apps.core.admin import ReadOnlyInline, ServiceAdminMixin, adopt, status_badge
from apps.invoices.admin_inlines import InvoiceSummaryInline
from apps.invoices.services import subscription_start

from .constants import SubscriptionStatus
from .models import Subscription, SubscriptionEvent

STATUS_TONES = {
    SubscriptionStatus.INCOMPLETE: "neutral",
    SubscriptionStatus.TRIALING: "info",
    SubscriptionStatus.ACTIVE: "success",
    SubscriptionStatus.PAST_DUE: "warning",
    SubscriptionStatus.PAUSED: "neutral",
    SubscriptionStatus.CANCELED: "danger",
}


class SubscriptionAddForm(forms.ModelForm):
    """What staff choose when subscribing a customer; the service derives everything else (currency,
    periods, status) and validates the choice."""

    started_at = forms.SplitDateTimeField(
        required=False,
        widget=AdminSplitDateTime,
        help_text="When the first period starts (UTC). Empty means now.",
    )

    class Meta:
        model = Subscription
        fields = ["customer", "plan", "quantity", "started_at"]

    def _post_clean(self):
        # No model validation here: the instance is built by `subscription_start`, which validates it.
        pass


class SubscriptionInvoiceInline(InvoiceSummaryInline):
    pass


class SubscriptionEventInline(ReadOnlyInline):
    model = SubscriptionEvent
    fields = ["occurred_at", "type", "actor", "data"]
    verbose_name_plural = "history (audit trail)"
    view_permission_from_parent = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")


@admin.register(Subscription)
class SubscriptionAdmin(ServiceAdminMixin, admin.ModelAdmin):
    list_display = ["reference", "customer", "plan", "quantity", "status_badge", "current_period", "next_billing_at"]
    list_filter = ["status", ("plan", admin.RelatedOnlyFieldListFilter), "currency"]
    search_fields = ["customer__name", "customer__external_id", "plan__code", "plan__name"]
    list_select_related = ["customer", "plan"]
    date_hierarchy = "started_at"
    autocomplete_fields = ["customer", "plan"]
    add_fieldsets = [(None, {"fields": ["customer", "plan", "quantity", "started_at"]})]
    fieldsets = [
        (None, {"fields": ["customer", "plan", "quantity", "currency", "status"]}),
        (
            "Billing periods",
            {
                "fields": [
                    "billing_anchor_at",
                    "started_at",
                    "current_period_start_at",
                    "current_period_end_at",
                    "next_billing_at",
                ]
            },
        ),
        ("Cancellation", {"fields": ["cancel_at_period_end", "canceled_at", "ended_at", "cancellation_reason"]}),
        ("Record", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]
    readonly_fields = ["currency", "created_at", "updated_at"]
    inlines = [SubscriptionInvoiceInline, SubscriptionEventInline]
    actions = None

    # Subscriptions change only through lifecycle services (billing, and later change/cancel); the
    # admin creates them through `subscription_start` (which invoices the first period) and otherwise shows them.

    def has_change_permission(self, request, obj=None):
        if obj is not None:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = SubscriptionAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    @admin.display(description="subscription", ordering="id")
    def reference(self, subscription: Subscription) -> str:
        return f"#{subscription.pk}"

    @admin.display(description="status", ordering="status")
    def status_badge(self, subscription: Subscription) -> str:
        return status_badge(subscription.get_status_display(), STATUS_TONES.get(subscription.status, "neutral"))

    @admin.display(description="current period", ordering="current_period_start_at")
    def current_period(self, subscription: Subscription) -> str:
        return f"{subscription.current_period_start_at:%Y-%m-%d} → {subscription.current_period_end_at:%Y-%m-%d}"

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        created = self.call_service(
            subscription_start,
            customer=data["customer"],
            plan=data["plan"],
            quantity=data["quantity"],
            started_at=data.get("started_at"),
            actor=request.user,
        )
        adopt(obj, created)
