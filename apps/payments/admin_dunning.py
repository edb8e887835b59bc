"""Admin of dunning: campaigns, customers' own settings, and "Customers in dunning" (one row per
invoice in dunning, with the amount due, the step and the next action, and the recovery figures)."""

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, pgettext
from django.utils.translation import gettext_lazy as _

from apps.accounts.selectors import customer_now
from apps.core.admin import ReadOnlyInline, ServiceAdminMixin, adopt, status_badge
from apps.core.errors import ApplicationError
from apps.core.event_details import event_details_text
from apps.invoices.selectors import invoices_with_amount_due
from apps.invoices.templatetags.invoice_format import money

from .dunning.constants import DunningActionKind, DunningStatus
from .dunning.models import CustomerDunningSetting, DunningCampaign, InvoiceDunning, InvoiceDunningEvent
from .dunning.selectors import dunning_recovery_figures, dunning_recovery_totals
from .dunning.services import (
    customer_dunning_set,
    dunning_campaign_create,
    dunning_campaign_delete,
    dunning_campaign_update,
    dunning_exclude,
    dunning_resume,
    dunning_run_next_action,
)

STATUS_TONES = {
    DunningStatus.ACTIVE: "warning",
    DunningStatus.RECOVERED: "success",
    DunningStatus.EXHAUSTED: "danger",
    DunningStatus.EXCLUDED: "neutral",
    DunningStatus.CLOSED: "neutral",
    DunningStatus.REOPENED: "neutral",
}


class DaysField(forms.CharField):
    """A list of days typed as "3, 5, 7" (empty: none)."""

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return ", ".join(str(day) for day in value)
        return value

    def to_python(self, value):
        text = super().to_python(value) or ""
        days = []
        for part in text.replace(";", ",").split(","):
            part = part.strip()
            if not part:
                continue
            if not part.isdigit():
                raise forms.ValidationError(_("Give whole numbers of days separated by commas, e.g. 3, 5, 7."))
            days.append(int(part))
        return days


class DunningCampaignForm(forms.ModelForm):
    retry_days = DaysField(required=False, help_text=_("Days after the first failed card payment, e.g. 3, 5, 7."))
    reminder_days_before_due = DaysField(required=False, help_text=_("Days before the due date, e.g. 3."))
    reminder_days_after_due = DaysField(required=False, help_text=_("Days after the due date, e.g. 1, 7."))

    class Meta:
        model = DunningCampaign
        fields = [
            "name", "description", "is_default", "reminder_days_before_due", "reminder_days_after_due",
            "retry_days", "final_notice_day", "end_action", "end_action_day",
        ]  # fmt: skip

    def _post_clean(self):
        # The service validates the campaign (and makes it the only default).
        pass


@admin.register(DunningCampaign)
class DunningCampaignAdmin(ServiceAdminMixin, admin.ModelAdmin):
    """Changing a campaign applies to dunnings that start afterwards; running ones keep their rules."""

    form = DunningCampaignForm
    list_display = ["name", "is_default", "schedule", "end_action", "end_action_day", "updated_at"]
    list_filter = ["is_default", "end_action"]
    search_fields = ["name"]

    @admin.display(description=_("schedule"))
    def schedule(self, obj):
        parts = [_("reminder −%(day)s") % {"day": day} for day in sorted(obj.reminder_days_before_due, reverse=True)]
        parts += [_("reminder +%(day)s") % {"day": day} for day in obj.reminder_days_after_due]
        parts += [_("retry +%(day)s after failure") % {"day": day} for day in obj.retry_days]
        if obj.final_notice_day:
            parts.append(_("final notice +%(day)s") % {"day": obj.final_notice_day})
        return ", ".join(parts) or "—"

    def save_model(self, request, obj, form, change):
        values = {name: form.cleaned_data[name] for name in DunningCampaignForm.Meta.fields}
        if change:
            adopt(obj, self.call_service(dunning_campaign_update, campaign_id=obj.pk, actor=request.user, **values))
        else:
            adopt(obj, self.call_service(dunning_campaign_create, actor=request.user, **values))

    def delete_model(self, request, obj):
        try:
            dunning_campaign_delete(campaign_id=obj.pk, actor=request.user)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


class CustomerDunningSettingForm(forms.ModelForm):
    class Meta:
        model = CustomerDunningSetting
        fields = ["customer", "campaign", "excluded", "note"]

    def _post_clean(self):
        pass


@admin.register(CustomerDunningSetting)
class CustomerDunningSettingAdmin(ServiceAdminMixin, admin.ModelAdmin):
    """A customer's own campaign, or its exclusion from dunning (excluding pauses its dunnings)."""

    form = CustomerDunningSettingForm
    list_display = ["customer", "campaign", "excluded", "updated_at"]
    list_filter = ["excluded", "campaign"]
    list_select_related = ["customer", "campaign"]
    search_fields = ["customer__name", "customer__email", "customer__external_id"]
    autocomplete_fields = ["customer"]

    def get_readonly_fields(self, request, obj=None):
        return ["customer"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        customer = obj.customer if change else data["customer"]
        campaign_id = data["campaign"].pk if data["campaign"] else None
        adopt(
            obj,
            self.call_service(
                customer_dunning_set, customer_id=customer.pk, campaign_id=campaign_id, excluded=data["excluded"],
                note=data["note"], actor=request.user,
            ),
        )  # fmt: skip

    def has_delete_permission(self, request, obj=None):
        return False  # include the customer again (untick "excluded") instead: its history stays


class DunningEventInline(ReadOnlyInline):
    model = InvoiceDunningEvent
    fields = ["occurred_at", "type", "step", "action_kind", "scheduled_at", "actor", "details"]
    readonly_fields = ["details"]
    view_permission_from_parent = True
    verbose_name_plural = _("history")

    @admin.display(description=_("details"))
    def details(self, event: InvoiceDunningEvent) -> str:
        return event_details_text(event.data)


class NextActionFilter(admin.SimpleListFilter):
    title = _("next action")
    parameter_name = "next_action_kind"

    def lookups(self, request, model_admin):
        return DunningActionKind.choices

    def queryset(self, request, queryset):
        return queryset.filter(next_action_kind=self.value()) if self.value() else queryset


class CurrencyFilter(admin.SimpleListFilter):
    title = _("currency")
    parameter_name = "currency"

    def lookups(self, request, model_admin):
        currencies = InvoiceDunning.objects.order_by().values_list("amount_due_at_start_currency", flat=True).distinct()
        return [(currency, currency) for currency in sorted(currencies)]

    def queryset(self, request, queryset):
        return queryset.filter(amount_due_at_start_currency=self.value()) if self.value() else queryset


@admin.register(InvoiceDunning)
class InvoiceDunningAdmin(admin.ModelAdmin):
    """Customers in dunning: each unpaid invoice under a campaign, what is due, where it stands."""

    change_list_template = "admin/payments/invoicedunning/change_list.html"
    list_display = [
        "customer", "invoice_link", "amount_due", "status_badge", "step_display", "next_action", "next_action_at",
        "campaign", "started_at",
    ]  # fmt: skip
    list_filter = ["status", NextActionFilter, "campaign", CurrencyFilter, "start_reason"]
    list_select_related = ["customer", "campaign"]
    search_fields = ["customer__name", "customer__email", "invoice__number"]
    date_hierarchy = "started_at"
    ordering = ["next_action_at", "id"]
    inlines = [DunningEventInline]
    actions = ["exclude_selected", "resume_selected", "run_next_action_now"]
    fields = [
        "customer", "invoice", "campaign", "status", "start_reason", "step", "next_action_kind", "next_action_at",
        "started_at", "first_failed_at", "ended_at", "amount_due_at_start", "amount_recovered", "campaign_rules",
        "plan_table",
    ]  # fmt: skip
    readonly_fields = fields

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        # The invoices' amounts due with their credit notes, in the same query.
        invoices = invoices_with_amount_due()
        from django.db.models import Prefetch

        return queryset.prefetch_related(Prefetch("invoice", queryset=invoices))

    @admin.display(description=_("invoice"), ordering="invoice__number")
    def invoice_link(self, obj):
        url = reverse("admin:invoices_invoice_change", args=[obj.invoice_id])
        return format_html('<a href="{}">{}</a>', url, obj.invoice)

    @admin.display(description=_("amount due"))
    def amount_due(self, obj):
        return money(obj.invoice.amount_due)

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj):
        return status_badge(obj.get_status_display(), STATUS_TONES.get(obj.status, "neutral"))

    @admin.display(description=_("plan"))
    def plan_table(self, obj):
        """Every action of the plan with its moment and what became of it."""
        outcomes = {event.step: event.get_type_display() for event in obj.events.all() if event.step is not None}
        kinds = dict(DunningActionKind.choices)
        rows = []
        for entry in obj.plan:
            if entry["step"] in outcomes:
                outcome = outcomes[entry["step"]]
            elif entry["step"] == obj.step and obj.status == DunningStatus.ACTIVE:
                outcome = pgettext("dunning step", "next")
            else:
                outcome = pgettext("dunning step", "planned") if obj.status == DunningStatus.ACTIVE else "—"
            attempt = gettext("attempt %(attempt)s") % {"attempt": entry["attempt"]} if entry["attempt"] else ""
            rows.append((entry["step"] + 1, kinds.get(entry["kind"], entry["kind"]), entry["at"][:16].replace("T", " "),
                         attempt, outcome))  # fmt: skip
        body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{} UTC</td><td>{}</td><td>{}</td></tr>", rows)
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th></th><th>{}</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            gettext("Step"), gettext("Action"), gettext("When"), gettext("Outcome"), body,
        )  # fmt: skip

    @admin.display(description=_("next action"), ordering="next_action_kind")
    def next_action(self, obj):
        return obj.get_next_action_kind_display() if obj.next_action_kind else "—"

    @admin.display(description=_("step"))
    def step_display(self, obj):
        if not obj.next_action_at:
            return "—"
        return gettext("%(step)s of %(steps)s") % {"step": min(obj.step + 1, len(obj.plan)), "steps": len(obj.plan)}

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        # The form is read-only; "change" is what the actions need.
        return super().has_change_permission(request, obj) if obj is None else False

    def changelist_view(self, request, extra_context=None):
        figures = dunning_recovery_figures()
        extra_context = {
            **(extra_context or {}),
            "recovery_figures": figures,
            "recovery_totals": dunning_recovery_totals(figures),
        }
        return super().changelist_view(request, extra_context=extra_context)

    def _each(self, request, queryset, service, done: str, **kwargs) -> None:
        for dunning in queryset:
            try:
                with transaction.atomic():
                    service(dunning_id=dunning.pk, actor=request.user, **kwargs)
            except ApplicationError as exc:
                self.message_user(request, _about(dunning, exc.message), messages.ERROR)
            else:
                self.message_user(request, _about(dunning, done), messages.SUCCESS)

    @admin.action(description=_("Pause (exclude) the selected dunnings"), permissions=["change"])
    def exclude_selected(self, request, queryset):
        self._each(
            request, queryset, dunning_exclude, _("dunning paused (excluded)."), reason=gettext("paused by staff")
        )

    @admin.action(description=_("Resume the selected dunnings"), permissions=["change"])
    def resume_selected(self, request, queryset):
        self._each(request, queryset, dunning_resume, _("dunning resumed."))

    @admin.action(description=_("Run the next action now"), permissions=["change"])
    def run_next_action_now(self, request, queryset):
        for dunning in queryset:
            try:
                event = dunning_run_next_action(
                    dunning_id=dunning.pk, now=customer_now(dunning.customer), actor=request.user, force=True
                )
            except ApplicationError as exc:
                self.message_user(request, _about(dunning, exc.message), messages.ERROR)
                continue
            if event is None:
                self.message_user(
                    request,
                    _("%(invoice)s: the invoice is settled; the dunning ended.") % {"invoice": dunning.invoice},
                    messages.INFO,
                )
            else:
                self.message_user(
                    request,
                    gettext("%(invoice)s: %(action)s — %(outcome)s.")
                    % {
                        "invoice": dunning.invoice,
                        "action": event.get_action_kind_display().lower(),
                        "outcome": event.get_type_display().lower(),
                    },
                    messages.SUCCESS if event.type == "action_done" else messages.WARNING,
                )


def _about(dunning, message) -> str:
    """An action's outcome for one dunning, as the message staff read: "INV-2026-000001: dunning resumed."."""
    return gettext("%(invoice)s: %(message)s") % {"invoice": dunning.invoice, "message": message}
