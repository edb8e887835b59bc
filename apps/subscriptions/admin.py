from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AdminSplitDateTime
from django.template.response import TemplateResponse

from apps.catalog.constants import VersionMigrationTiming
from apps.catalog.models import PlanVersion
from apps.core.admin import ReadOnlyInline, ServiceAdminMixin, adopt, status_badge
from apps.core.errors import ApplicationError
from apps.invoices.admin_inlines import InvoiceSummaryInline
from apps.invoices.services import subscription_start

from .constants import SubscriptionStatus
from .models import Subscription, SubscriptionEvent
from .services import subscription_migrate_version

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

    billing_cycle_day = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=28,
        help_text="Calendar billing (monthly plans): bill on this day of every month, first period prorated. "
        "Empty: on the anniversary of the start.",
    )
    trial_days = forms.IntegerField(
        required=False, min_value=0, max_value=730, help_text="Days of free trial. Empty: the plan's trial length."
    )
    started_at = forms.SplitDateTimeField(
        required=False,
        widget=AdminSplitDateTime,
        help_text="When the first period starts (UTC). Empty means now.",
    )

    class Meta:
        model = Subscription
        fields = ["customer", "plan", "quantity", "started_at", "trial_days", "billing_cycle_day"]

    def _post_clean(self):
        # No model validation here: the instance is built by `subscription_start`, which validates it.
        pass


class PlanVersionFilter(admin.SimpleListFilter):
    title = "plan version"
    parameter_name = "plan_version__id__exact"

    def lookups(self, request, model_admin):
        versions = PlanVersion.objects.filter(subscriptions__isnull=False).distinct().select_related("plan")
        return [(version.pk, str(version)) for version in versions.order_by("plan__name", "number")]

    def queryset(self, request, queryset):
        return queryset.filter(plan_version_id=self.value()) if self.value() else queryset


class MigrateVersionForm(forms.Form):
    timing = forms.ChoiceField(
        choices=VersionMigrationTiming.choices, initial=VersionMigrationTiming.NEXT_PERIOD, widget=forms.RadioSelect
    )


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
    list_filter = [
        "status",
        ("plan", admin.RelatedOnlyFieldListFilter),
        PlanVersionFilter,
        "currency",
    ]
    search_fields = ["customer__name", "customer__external_id", "plan__code", "plan__name"]
    list_select_related = ["customer", "plan", "plan_version"]
    date_hierarchy = "started_at"
    autocomplete_fields = ["customer", "plan"]
    add_fieldsets = [
        (None, {"fields": ["customer", "plan", "quantity", "started_at", "trial_days", "billing_cycle_day"]})
    ]
    fieldsets = [
        (
            None,
            {"fields": ["customer", "plan", "plan_version", "pending_plan_version", "quantity", "currency", "status"]},
        ),
        (
            "Billing periods",
            {
                "fields": [
                    "billing_anchor_at",
                    "started_at",
                    "trial_end_at",
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
    actions = ["migrate_to_latest_version"]

    # Subscriptions change only through lifecycle services (billing, and later change/cancel); the
    # admin creates them through `subscription_start` (which invoices the first period) and otherwise shows them.

    def has_change_permission(self, request, obj=None):
        if obj is not None:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description="Move to the plan's latest version", permissions=["change"])
    def migrate_to_latest_version(self, request, queryset):
        queryset = queryset.select_related("customer", "plan", "plan_version").prefetch_related(
            "plan__versions__charges__prices"
        )
        rows = [{"subscription": s, "target": self._latest_version_for(s)} for s in queryset]
        form = MigrateVersionForm(request.POST if request.POST.get("post") == "yes" else None)
        if not form.is_bound or not form.is_valid():
            context = {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Move to the plan's latest version",
                "rows": rows,
                "form": form,
                "action_name": "migrate_to_latest_version",
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/subscriptions/subscription/migrate_version.html", context)
        timing = form.cleaned_data["timing"]
        moved = 0
        for row in rows:
            subscription, target = row["subscription"], row["target"]
            if target is None:
                continue
            try:
                subscription_migrate_version(
                    subscription_id=subscription.pk, version=target, timing=timing, actor=request.user
                )
            except ApplicationError as exc:
                self.message_user(request, f"Subscription #{subscription.pk}: {exc.message}", messages.ERROR)
            else:
                moved += 1
        when = "now" if timing == VersionMigrationTiming.NOW else "from their next period"
        self.message_user(request, f"{moved} subscription(s) moved to their plan's latest version {when}.")
        return None

    @staticmethod
    def _latest_version_for(subscription: Subscription):
        latest = subscription.plan.current_version
        if latest is None or latest.pk == subscription.plan_version_id:
            return None
        return latest

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
            trial_days=data.get("trial_days"),
            billing_cycle_day=data.get("billing_cycle_day"),
            actor=request.user,
        )
        adopt(obj, created)
