"""Alerts and budgets for staff: set thresholds (through the services), filter and search them, and
read each alert's crossing history (read-only: crossings are recorded by evaluation only)."""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.core.admin import ReadOnlyInline, ServiceAdminMixin, adopt, status_badge

from .models import Alert, AlertCrossing
from .services import alert_create, alert_delete, alert_update

WATCHED = ["customer", "subscription", "kind", "metric"]


class AlertForm(forms.ModelForm):
    thresholds = forms.CharField(
        help_text=_(
            "One or more numbers above zero, separated by commas: usage units, or money in the customer's "
            "currency for a spend alert. E.g. 100, 500, 1000."
        ),
    )

    class Meta:
        model = Alert
        fields = ["customer", "subscription", "kind", "metric", "thresholds", "name", "is_hard_limit", "is_active"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["thresholds"] = ", ".join(self.instance.thresholds)

    def clean_thresholds(self) -> list[str]:
        return [part.strip() for part in self.cleaned_data["thresholds"].split(",") if part.strip()]

    def _post_clean(self) -> None:
        # The service checks and saves (thresholds as numbers, the metric on the plan); the model's own
        # validation would read the comma-separated text as the JSON list it is not yet.
        pass


class AlertCrossingInline(ReadOnlyInline):
    model = AlertCrossing
    fields = ["crossed_at", "threshold", "value", "currency", "period_start_at", "period_end_at", "is_limit",
              "notified_at"]  # fmt: skip
    ordering = ["-crossed_at", "-id"]
    view_permission_from_parent = True


@admin.register(Alert)
class AlertAdmin(ServiceAdminMixin, admin.ModelAdmin):
    form = AlertForm
    list_display = ["__str__", "customer", "subscription", "kind", "metric", "threshold_list", "origin",
                    "hard_limit", "state", "created_at"]  # fmt: skip
    list_select_related = ["customer", "subscription__plan", "metric"]
    list_filter = ["kind", "origin", "is_active", "is_hard_limit", ("metric", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "customer__name", "customer__external_id", "metric__code"]
    autocomplete_fields = ["customer", "subscription", "metric"]
    readonly_fields = ["origin", "created_by", "created_at", "updated_at"]
    date_hierarchy = "created_at"
    inlines = [AlertCrossingInline]
    actions = ["deactivate"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return [*WATCHED, *fields] if obj is not None else fields  # what it watches stays

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # one at a time, through the service
        return actions

    @admin.display(description=_("thresholds"))
    def threshold_list(self, obj):
        return ", ".join(obj.thresholds)

    @admin.display(description=_("hard limit"), boolean=True)
    def hard_limit(self, obj):
        return obj.is_hard_limit

    @admin.display(description=_("state"))
    def state(self, obj):
        return status_badge("active", "success") if obj.is_active else status_badge("inactive", "neutral")

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        changes = {name: data[name] for name in ["thresholds", "name", "is_hard_limit", "is_active"]}
        if change:
            alert = self.call_service(alert_update, alert_id=obj.pk, **changes)
        else:
            watched = {name: data.get(name) for name in WATCHED}
            alert = self.call_service(alert_create, **watched, **changes, actor=request.user)
        adopt(obj, alert)

    def delete_model(self, request, obj):
        alert_delete(alert_id=obj.pk)

    @admin.action(description=_("Turn off (stop evaluating, keep the history)"), permissions=["change"])
    def deactivate(self, request, queryset):
        for alert in queryset:
            alert_update(alert_id=alert.pk, is_active=False)
            self.message_user(request, gettext("%(alert)s is turned off.") % {"alert": alert})


@admin.register(AlertCrossing)
class AlertCrossingAdmin(admin.ModelAdmin):
    """Every threshold crossed: when, at which value, in which period, whether it was a hard limit and
    when the billing contacts were emailed."""

    list_display = ["crossed_at", "alert", "customer", "threshold", "value", "currency", "period_start_at",
                    "period_end_at", "is_limit", "notified_at"]  # fmt: skip
    list_select_related = ["alert", "customer"]
    list_filter = ["is_limit", "alert__kind", "alert__origin", ("notified_at", admin.EmptyFieldListFilter)]
    search_fields = ["alert__name", "customer__name", "customer__external_id"]
    date_hierarchy = "crossed_at"
    readonly_fields = ["alert", "customer", "threshold", "value", "currency", "period_start_at", "period_end_at",
                       "crossed_at", "is_limit", "notified_at", "recipients"]  # fmt: skip

    def has_add_permission(self, request):
        return False  # recorded by evaluation only

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
