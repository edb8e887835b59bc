from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import AdminSplitDateTime
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from apps.billing.constants import ChangeTiming, ProrationBehavior
from apps.billing.services import (
    subscription_cancel,
    subscription_cancel_credit_preview,
    subscription_change,
    subscription_change_preview,
    subscription_pause,
    subscription_resume,
    subscription_start,
    subscription_upcoming_invoice,
)
from apps.catalog import pricing
from apps.catalog.constants import VersionMigrationTiming
from apps.catalog.models import Plan, PlanVersion
from apps.catalog.progressive import schedule_text
from apps.core.admin import (
    ReadOnlyInline,
    ServiceAdminMixin,
    adopt,
    application_error_to_form,
    staff_date,
    staff_datetime,
    staff_money,
    status_badge,
)
from apps.core.errors import ApplicationError
from apps.core.event_details import event_details_text
from apps.invoices.admin_inlines import InvoicedPeriodInline, InvoiceSummaryInline
from apps.invoices.selectors import subscription_invoices
from apps.subscriptions.admin import price_override_add_url, progressive_billing_url
from apps.subscriptions.constants import SubscriptionStatus
from apps.subscriptions.models import Subscription, SubscriptionEvent, SubscriptionPriceOverride
from apps.subscriptions.selectors import subscription_progressive_schedule
from apps.subscriptions.services import subscription_cancel_undo, subscription_migrate_version

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
        help_text=_(
            "Calendar billing (monthly plans): bill on this day of every month, first period prorated. "
            "Empty: on the anniversary of the start."
        ),
    )
    trial_days = forms.IntegerField(
        required=False, min_value=0, max_value=730, help_text=_("Days of free trial. Empty: the plan's trial length.")
    )
    started_at = forms.SplitDateTimeField(
        required=False,
        widget=AdminSplitDateTime,
        help_text=_("When the first period starts (UTC). Empty means now."),
    )

    class Meta:
        model = Subscription
        fields = ["customer", "plan", "quantity", "started_at", "trial_days", "billing_cycle_day"]

    def _post_clean(self):
        # No model validation here: the instance is built by `subscription_start`, which validates it.
        pass


class PlanVersionFilter(admin.SimpleListFilter):
    title = _("plan version")
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
    verbose_name_plural = _("history (audit trail)")
    view_permission_from_parent = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")


class SubscriptionPriceOverrideInline(ReadOnlyInline):
    """The subscription's custom prices beside the plan's: where it differs from its plan version. Set,
    changed and removed on each price's own page (its form shows the service's errors field by field)."""

    model = SubscriptionPriceOverride
    fields = ["charge", "plan_price", "custom_price", "note", "updated_at"]
    verbose_name = _("custom price")
    verbose_name_plural = _("custom prices (where this subscription differs from its plan)")
    view_permission_from_parent = True
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("charge").prefetch_related("charge__prices__tiers")

    @admin.display(description=_("plan price"))
    def plan_price(self, override: SubscriptionPriceOverride) -> str:
        price = override.charge.price_for(override.currency)
        return pricing.price_describe(price.to_spec()) if price is not None else "—"

    @admin.display(description=_("custom price"))
    def custom_price(self, override: SubscriptionPriceOverride) -> str:
        return pricing.price_describe(override.to_spec())


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
            _("Billing periods"),
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
        (_("Cancellation"), {"fields": ["cancel_at_period_end", "canceled_at", "ended_at", "cancellation_reason"]}),
        (_("Prices"), {"fields": ["prices_differ", "progressive_thresholds"]}),
        (_("Record"), {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]
    readonly_fields = ["currency", "created_at", "updated_at", "prices_differ", "progressive_thresholds"]
    inlines = [
        SubscriptionPriceOverrideInline,
        SubscriptionInvoiceInline,
        InvoicedPeriodInline,
        SubscriptionEventInline,
    ]
    change_form_template = "admin/subscriptions/subscription/change_form.html"
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

    @admin.action(description=_("Move to the plan's latest version"), permissions=["change"])
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
                "title": _("Move to the plan's latest version"),
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
        when = _("now") if timing == VersionMigrationTiming.NOW else _("from their next period")
        self.message_user(
            request,
            _("%(count)s subscription(s) moved to their plan's latest version %(when)s.")
            % {"count": moved, "when": when},
        )
        return None

    @staticmethod
    def _latest_version_for(subscription: Subscription):
        latest = subscription.plan.current_version
        if latest is None or latest.pk == subscription.plan_version_id:
            return None
        return latest

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else self.fieldsets

    def has_operation_permission(self, request) -> bool:
        return super().has_change_permission(request)

    def get_urls(self):
        view = self.admin_site.admin_view
        operations = [
            path(
                f"<path:object_id>/{name.replace('_', '-')}/",
                view(lambda request, object_id, name=name: subscription_operation_view(self, request, object_id, name)),
                name=f"subscriptions_subscription_{name}",
            )
            for name in SUBSCRIPTION_OPERATIONS
        ]
        undo = path(
            "<path:object_id>/cancel-undo/", view(self.cancel_undo_view), name="subscriptions_subscription_cancel_undo"
        )
        return [*operations, undo, *super().get_urls()]

    def cancel_undo_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST" or not self.has_operation_permission(request):
            raise PermissionDenied
        subscription = self.get_object(request, unquote(object_id))
        if subscription is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        try:
            subscription_cancel_undo(subscription_id=subscription.pk, actor=request.user)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.message_user(
                request, _("The scheduled cancellation is undone; the subscription renews."), messages.SUCCESS
            )
        return HttpResponseRedirect(reverse("admin:subscriptions_subscription_change", args=[subscription.pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        subscription = self.get_object(request, unquote(object_id))
        extra_context = dict(extra_context or {})
        if subscription is not None:
            allowed = self.has_operation_permission(request)
            extra_context["subscription_operations"] = [
                {
                    "name": name,
                    "label": SUBSCRIPTION_OPERATIONS[name][0],
                    "url": reverse(f"admin:subscriptions_subscription_{name}", args=[subscription.pk]),
                }
                for name in (_operation_names(subscription) if allowed else [])
            ]
            if allowed and subscription.cancel_at_period_end and subscription.status != SubscriptionStatus.CANCELED:
                extra_context["cancel_undo_url"] = reverse(
                    "admin:subscriptions_subscription_cancel_undo", args=[subscription.pk]
                )
            try:
                extra_context["upcoming"] = subscription_upcoming_invoice(subscription_id=subscription.pk)
            except ApplicationError as exc:
                extra_context["upcoming_note"] = exc.message
            extra_context["timeline"] = subscription_timeline(subscription)
        return super().change_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = SubscriptionAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    @admin.display(description=_("plan prices"))
    def prices_differ(self, subscription: Subscription) -> str:
        """A marker: whether the subscription is billed at its plan version's prices, and a link to set a
        custom price (the page it opens is for finance admins: others are refused there)."""
        count = subscription.price_overrides.filter(charge__plan_version_id=subscription.plan_version_id).count()
        if count:
            marker = status_badge(
                ngettext(
                    "Differs from its plan: %(count)s custom price",
                    "Differs from its plan: %(count)s custom prices",
                    count,
                )
                % {"count": count},
                "warning",
            )
        else:
            marker = status_badge(gettext("The plan's prices"), "neutral")
        if subscription.status == SubscriptionStatus.CANCELED:
            return marker
        return format_html(
            '{} <a href="{}">{}</a>', marker, price_override_add_url(subscription.pk), gettext("Set a custom price")
        )

    @admin.display(description=_("progressive billing"))
    def progressive_thresholds(self, subscription: Subscription) -> str:
        """The thresholds in force (its own or its plan's) and whether interim invoices await deduction."""
        schedule, custom = subscription_progressive_schedule(subscription)
        if not schedule:
            marker = status_badge(gettext("Off"), "warning" if custom else "neutral")
        else:
            where = gettext("its own") if custom else gettext("the plan's")
            text = f"{schedule_text(schedule, subscription.currency)} ({where})"
            marker = status_badge(text, "warning" if custom else "neutral")
        if subscription.interim_invoices_pending:
            marker = format_html(
                "{} {}", marker, status_badge(gettext("Interim invoices to deduct at period end"), "info")
            )
        if subscription.status == SubscriptionStatus.CANCELED:
            return marker
        return format_html(
            '{} <a href="{}">{}</a>', marker, progressive_billing_url(subscription), gettext("Set thresholds")
        )

    @admin.display(description=_("subscription"), ordering="id")
    def reference(self, subscription: Subscription) -> str:
        return f"#{subscription.pk}"

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, subscription: Subscription) -> str:
        return status_badge(subscription.get_status_display(), STATUS_TONES.get(subscription.status, "neutral"))

    @admin.display(description=_("current period"), ordering="current_period_start_at")
    def current_period(self, subscription: Subscription) -> str:
        return f"{staff_date(subscription.current_period_start_at)} → {staff_date(subscription.current_period_end_at)}"

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


# --- Operations on one subscription, each with a preview before it is confirmed ---------------------


class SubscriptionChangeForm(forms.Form):
    plan = forms.ModelChoiceField(queryset=Plan.objects.filter(is_archived=False), required=False)
    quantity = forms.IntegerField(min_value=1, required=False)
    timing = forms.ChoiceField(choices=ChangeTiming.choices, initial=ChangeTiming.NOW, widget=forms.RadioSelect)
    proration = forms.ChoiceField(
        choices=ProrationBehavior.choices, initial=ProrationBehavior.PRORATE, widget=forms.RadioSelect
    )


class SubscriptionCancelForm(forms.Form):
    when = forms.ChoiceField(
        choices=[("period_end", _("At the end of the current period (undo possible until then)")), ("now", _("Now"))],
        initial="period_end",
        widget=forms.RadioSelect,
    )
    prorate = forms.BooleanField(
        required=False, label=_("When canceling now: credit the unused time already invoiced (on the next invoices)")
    )
    reason = forms.CharField(required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2}))


class SubscriptionPauseForm(forms.Form):
    prorate = forms.BooleanField(
        required=False, initial=True, label=_("Credit the unused time already invoiced (on the invoice at resume)")
    )
    reason = forms.CharField(required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2}))


class SubscriptionResumeForm(forms.Form):
    pass


SUBSCRIPTION_OPERATIONS = {
    "change_plan": (_("Change plan or quantity"), SubscriptionChangeForm),
    "cancel": (_("Cancel"), SubscriptionCancelForm),
    "pause": (_("Pause"), SubscriptionPauseForm),
    "resume": (_("Resume"), SubscriptionResumeForm),
}


def _operation_names(subscription: Subscription) -> list[str]:
    if subscription.status == SubscriptionStatus.CANCELED:
        return []
    if subscription.status == SubscriptionStatus.PAUSED:
        return ["resume", "cancel", "change_plan"]
    names = ["change_plan", "cancel"]
    if subscription.status == SubscriptionStatus.ACTIVE and not subscription.cancel_at_period_end:
        names.append("pause")
    return names


def subscription_operation_view(model_admin, request: HttpRequest, object_id: str, operation: str) -> HttpResponse:
    """GET: the form. POST without `confirm`: the form and what it would do (preview). POST with
    `confirm`: do it through the service, then back to the subscription with a message."""
    if not model_admin.has_operation_permission(request):
        raise PermissionDenied
    subscription = model_admin.get_object(request, unquote(object_id))
    if subscription is None:
        return model_admin._get_obj_does_not_exist_redirect(request, model_admin.opts, object_id)
    label, form_class = SUBSCRIPTION_OPERATIONS[operation]
    change_url = reverse("admin:subscriptions_subscription_change", args=[subscription.pk])
    form = form_class(request.POST if request.method == "POST" else None)
    preview, error = None, None
    if request.method == "POST" and form.is_valid():
        try:
            if "confirm" in request.POST:
                message = _operation_run(subscription, operation, form.cleaned_data, request.user)
                model_admin.message_user(request, message, messages.SUCCESS)
                return HttpResponseRedirect(change_url)
            preview = _operation_preview(subscription, operation, form.cleaned_data)
        except ApplicationError as exc:
            application_error_to_form(form, exc)
            error = exc.message
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": f"{label}: subscription #{subscription.pk}",
        "subscription": subscription,
        "operation": operation,
        "operation_label": label,
        "form": form,
        "preview": preview,
        "error": error,
        "change_url": change_url,
        "media": model_admin.media + form.media,
    }
    return TemplateResponse(request, "admin/subscriptions/subscription/operation.html", context)


def _money_text(amount, currency: str) -> str:
    return staff_money(amount, currency)


def _operation_preview(subscription: Subscription, operation: str, data: dict) -> dict:
    currency = subscription.currency
    if operation == "change_plan":
        result = subscription_change_preview(
            subscription_id=subscription.pk, plan=data.get("plan"), quantity=data.get("quantity"),
            timing=data["timing"], proration=data["proration"],
        )  # fmt: skip
        if data["timing"] == ChangeTiming.PERIOD_END:
            summary = _("The change takes effect on %(moment)s UTC, when the next period begins.") % {
                "moment": staff_datetime(result.effective_at)
            }
        elif not result.lines:
            summary = _("The change takes effect now; nothing is prorated.")
        elif result.invoiced_now:
            summary = _("These lines are invoiced at once, on an invoice of their own.")
        else:
            summary = _("These lines go on the next invoice.")
        return {"summary": summary, "lines": result.lines, "total": _money_text(result.total, currency)}
    if operation == "cancel":
        if data["when"] == "now" and data.get("prorate"):
            lines = subscription_cancel_credit_preview(subscription_id=subscription.pk)
            total = sum((line.amount for line in lines), Decimal(0))
            return {
                "summary": _("The subscription ends now; the unused time is credited on the customer's next invoices."),
                "lines": lines,
                "total": _money_text(total, currency),
            }
        if data["when"] == "now":
            return {"summary": _("The subscription ends now; nothing more is billed.")}
        return {
            "summary": _("The subscription ends on %(moment)s UTC and is not renewed; you can undo this until then.")
            % {"moment": staff_datetime(subscription.current_period_end_at)}
        }
    if operation == "pause":
        return {"summary": _("Nothing is billed while the subscription is paused. Resuming starts a new period.")}
    return {"summary": _("A new period starts now and is invoiced at once, with any credit from the pause.")}


def _operation_run(subscription: Subscription, operation: str, data: dict, actor) -> str:
    if operation == "change_plan":
        result = subscription_change(
            subscription_id=subscription.pk, plan=data.get("plan"), quantity=data.get("quantity"),
            timing=data["timing"], proration=data["proration"], actor=actor,
        )  # fmt: skip
        if result.scheduled_change is not None:
            return _("Change scheduled for %(moment)s UTC.") % {
                "moment": staff_datetime(result.scheduled_change.effective_at)
            }
        if result.invoice is not None:
            return _("Changed; the proration was invoiced at once (%(invoice)s).") % {"invoice": result.invoice}
        return _("Changed; %(count)s proration line(s) go on the next invoice.") % {"count": len(result.preview.lines)}
    if operation == "cancel":
        result = subscription_cancel(
            subscription_id=subscription.pk, when=data["when"], prorate=bool(data.get("prorate")), actor=actor,
            reason=data.get("reason", ""),
        )  # fmt: skip
        if data["when"] == ChangeTiming.PERIOD_END:
            return _("Cancellation at the end of the period scheduled.")
        if result.preview.lines:
            credit = _money_text(-result.preview.total, subscription.currency)
            return _("Canceled now; %(credit)s credited to the customer.") % {"credit": credit}
        return _("Canceled now.")
    if operation == "pause":
        subscription_pause(
            subscription_id=subscription.pk, prorate=data.get("prorate", False), reason=data.get("reason", ""),
            actor=actor,
        )  # fmt: skip
        return "Paused."
    result = subscription_resume(subscription_id=subscription.pk, actor=actor)
    return f"Resumed; {result.invoice} issued." if result.invoice else "Resumed."


def subscription_timeline(subscription: Subscription) -> list[dict]:
    """What happened to a subscription, oldest first: its recorded events and the invoices it got."""
    entries = [
        {"at": event.occurred_at, "what": event.get_type_display(), "detail": _event_detail(event.data), "url": ""}
        for event in subscription.events.select_related("actor")
    ]
    for invoice in subscription_invoices(subscription_id=subscription.pk).order_by("created_at"):
        period = ""
        if invoice.period_start_at and invoice.period_end_at:
            period = f"{staff_date(invoice.period_start_at)} → {staff_date(invoice.period_end_at)}, "
        entries.append(
            {
                "at": invoice.issued_at or invoice.created_at,
                "what": _("Invoice %(number)s — %(reason)s")
                % {"number": invoice.number or _("(draft)"), "reason": invoice.get_billing_reason_display().lower()},
                "detail": f"{period}{invoice.total} ({invoice.get_status_display().lower()})",
                "url": reverse("admin:invoices_invoice_change", args=[invoice.pk]),
            }
        )
    return sorted(entries, key=lambda entry: entry["at"])


def _event_detail(data: dict) -> str:
    return event_details_text(data) if data else ""
