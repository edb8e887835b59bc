from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import AdminSplitDateTime
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from apps.accounts.credentials import (
    api_key_create,
    api_key_revoke,
    portal_token_revoke,
    user_token_create,
    user_token_revoke,
)
from apps.accounts.invitations import customer_invitation_create, customer_invitation_revoke
from apps.accounts.models import (
    ApiKey,
    BillingContact,
    Customer,
    CustomerInvitation,
    CustomerMembership,
    PortalToken,
    SimulatedClock,
    UserToken,
)
from apps.accounts.permissions import CUSTOMER_BILLING_FIELDS, customer_fields_refused
from apps.accounts.selectors import customer_now
from apps.accounts.services import CUSTOMER_EDITABLE_FIELDS, customer_create, customer_update, simulated_clock_create
from apps.billing.services.simulated_clocks import simulated_clock_advance
from apps.core import clock
from apps.core.admin import ReadOnlyInline, ServiceAdminMixin, adopt, staff_datetime, staff_money, status_badge
from apps.core.errors import ApplicationError
from apps.invoices.admin_inlines import InvoiceSummaryInline
from apps.invoices.selectors import customer_balance
from apps.payments.admin_inlines import CustomerPaymentInline
from apps.payments.stripe.admin import StripeCustomerInline
from apps.subscriptions.models import Subscription
from apps.usage.reports import usage_daily

from .invoice_items import customer_one_off_links, one_off_invoice_view


class CustomerMembershipInline(admin.TabularInline):
    """A customer's portal users. They join by accepting an invitation (Portal invitations), never
    added here; a membership's user is never changed (that would hand the customer to someone else)."""

    model = CustomerMembership
    fields = ["user", "role", "language", "created_at"]
    readonly_fields = ["user", "created_at"]
    extra = 0
    verbose_name = _("portal user")
    verbose_name_plural = _("portal users (they join by accepting an invitation)")

    def has_add_permission(self, request, obj=None):
        return False


class CustomerInvitationInline(ReadOnlyInline):
    """Invitations to the customer's portal team (made and revoked in Accounts › Portal invitations)."""

    model = CustomerInvitation
    fields = ["email", "role", "state", "invited_by", "created_at", "expires_at"]
    readonly_fields = ["state"]
    verbose_name_plural = _("portal invitations (invite or revoke in Accounts › Portal invitations)")

    @admin.display(description=_("state"))
    def state(self, invitation: CustomerInvitation) -> str:
        return _invitation_badge(invitation)


def _invitation_badge(invitation: CustomerInvitation) -> str:
    state = invitation.status_at(clock.now())
    tone = {"pending": "info", "accepted": "success", "revoked": "danger"}.get(state, "neutral")
    return status_badge(CustomerInvitation.Status(state).label, tone)


class BillingContactInline(admin.TabularInline):
    """Who receives the customer's bills by email besides the customer's own email."""

    model = BillingContact
    fields = ["name", "email", "receives_invoices"]
    extra = 0
    verbose_name = _("billing contact")
    verbose_name_plural = _("billing contacts (receive the bills by email, with the customer's email)")


class CustomerSubscriptionInline(ReadOnlyInline):
    model = Subscription
    fields = [
        "subscription",
        "plan",
        "quantity",
        "status",
        "current_period_start_at",
        "current_period_end_at",
        "next_billing_at",
    ]
    readonly_fields = ["subscription"]
    verbose_name_plural = _("subscriptions")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("plan", "customer")

    @admin.display(description=_("subscription"))
    def subscription(self, subscription: Subscription) -> str:
        url = reverse("admin:subscriptions_subscription_change", args=[subscription.pk])
        return format_html('<a href="{}">#{}</a>', url, subscription.pk)


class CustomerInvoiceInline(InvoiceSummaryInline):
    pass


@admin.register(Customer)
class CustomerAdmin(ServiceAdminMixin, admin.ModelAdmin):
    list_display = ["name", "external_id", "email", "country", "currency", "created_at"]
    list_filter = ["country", "currency", "tax_id_status", ("test_clock", admin.EmptyFieldListFilter)]
    search_fields = ["name", "email", "external_id", "tax_id"]
    date_hierarchy = "created_at"
    ordering = ["name", "id"]
    fieldsets = [
        (None, {"fields": ["name", "external_id", "email"]}),
        (
            _("Billing"),
            {
                "fields": [
                    "currency",
                    "payment_terms_days",
                    "invoice_grouping",
                    "collection_method",
                    "preferred_language",
                    "time_zone",
                    ("tax_id", "tax_id_type"),
                    ("tax_id_status", "tax_id_checked_at"),
                    "tax_exempt",
                    "test_clock",
                ]
            },
        ),
        (
            _("Address"),
            {"fields": ["address_line1", "address_line2", "postal_code", "city", "state", "country"]},
        ),
        (_("Activity"), {"fields": ["billing_summary", "created_at", "updated_at"]}),
    ]
    inlines = [
        BillingContactInline,
        CustomerMembershipInline,
        CustomerInvitationInline,
        CustomerSubscriptionInline,
        CustomerInvoiceInline,
        CustomerPaymentInline,
        StripeCustomerInline,
    ]

    change_form_template = "admin/accounts/customer/change_form.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        customer = self.get_object(request, unquote(object_id))
        extra_context = dict(extra_context or {})
        if customer is not None:
            if request.user.has_perm("usage.view_usageevent"):
                extra_context["usage_charts"] = usage_daily(customer=customer, now=customer_now(customer))
            if request.user.has_perm("payments.add_payment"):
                extra_context["record_payment_url"] = reverse("admin:payments_payment_add") + f"?customer={customer.pk}"
            extra_context["one_off_links"] = customer_one_off_links(request, customer)
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        view = self.admin_site.admin_view
        custom = [
            path(
                "<path:object_id>/one-off-invoice/",
                view(lambda request, object_id: one_off_invoice_view(self, request, object_id)),
                name="accounts_customer_one_off_invoice",
            )
        ]
        return custom + super().get_urls()

    def get_readonly_fields(self, request, obj=None):
        readonly = ["billing_summary", "tax_id_status", "tax_id_checked_at", "created_at", "updated_at"]
        if obj is not None:
            # The billing currency is fixed once the customer exists (prices, invoices and
            # subscriptions all depend on it).
            readonly += ["currency", "test_clock"]
            readonly += customer_fields_refused(actor=request.user, fields=CUSTOMER_BILLING_FIELDS)
        return readonly

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return self.fieldsets[:3]
        return self.fieldsets

    def get_inlines(self, request, obj):
        if obj is None:
            return [BillingContactInline]
        return self.inlines

    @admin.display(description=_("billing"))
    def billing_summary(self, customer: Customer) -> str:
        counts = Customer.objects.filter(pk=customer.pk).aggregate(
            subscriptions=Count("subscriptions", distinct=True), invoices=Count("invoices", distinct=True)
        )
        subscriptions_url = (
            reverse("admin:subscriptions_subscription_changelist") + f"?customer__id__exact={customer.pk}"
        )
        invoices_url = reverse("admin:invoices_invoice_changelist") + f"?customer__id__exact={customer.pk}"
        balance = customer_balance(customer=customer)
        return format_html(
            '<a href="{}">{}</a> · <a href="{}">{}</a> · {}',
            subscriptions_url,
            _("%(count)s subscription(s)") % {"count": counts["subscriptions"]},
            invoices_url,
            _("%(count)s invoice(s)") % {"count": counts["invoices"]},
            _("credit balance %(amount)s") % {"amount": staff_money(balance.amount, customer.currency)},
        )

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            changes = {name: data[name] for name in form.changed_data if name in CUSTOMER_EDITABLE_FIELDS}
            if changes:
                adopt(obj, self.call_service(customer_update, customer_id=obj.pk, actor=request.user, **changes))
        else:
            fields = {name: data[name] for name in CUSTOMER_EDITABLE_FIELDS if name in data}
            adopt(
                obj,
                self.call_service(
                    customer_create, currency=data["currency"], test_clock=data.get("test_clock"), **fields
                ),
            )


class SimulatedClockCustomerInline(ReadOnlyInline):
    model = Customer
    fields = ["customer", "email", "currency"]
    readonly_fields = ["customer"]
    verbose_name_plural = _("customers on this clock")

    @admin.display(description=_("customer"))
    def customer(self, customer: Customer) -> str:
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:accounts_customer_change", args=[customer.pk]), customer
        )


class SimulatedClockAdvanceForm(forms.Form):
    frozen_at = forms.SplitDateTimeField(
        label=_("Advance to"),
        widget=AdminSplitDateTime,
        help_text=_("UTC; after the clock's time, at most five years on."),
    )


@admin.register(SimulatedClock)
class SimulatedClockAdmin(ServiceAdminMixin, admin.ModelAdmin):
    change_form_template = "admin/accounts/simulatedclock/change_form.html"
    list_display = ["name", "frozen_at", "customer_count", "created_at"]
    search_fields = ["name"]
    date_hierarchy = "frozen_at"
    fields = ["name", "frozen_at", "created_at", "updated_at"]
    inlines = [SimulatedClockCustomerInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(customer_total=Count("customers"))

    def get_readonly_fields(self, request, obj=None):
        # Time moves only forward, through "Advance" (which runs what falls due on the way).
        return ["frozen_at", "created_at", "updated_at"] if obj is not None else ["created_at", "updated_at"]

    @admin.display(description=_("customers"), ordering="customer_total")
    def customer_count(self, test_clock: SimulatedClock) -> int:
        return test_clock.customer_total

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        adopt(
            obj,
            self.call_service(
                simulated_clock_create, name=form.cleaned_data["name"], frozen_at=form.cleaned_data.get("frozen_at")
            ),
        )

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/advance/", view(self.advance_view), name="accounts_simulatedclock_advance")
        ] + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "advance_form": SimulatedClockAdvanceForm(), "advance_url": reverse(
            "admin:accounts_simulatedclock_advance", args=[object_id]
        ), "can_advance": self.has_change_permission(request)}  # fmt: skip
        return super().change_view(request, object_id, form_url, extra_context)

    def advance_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_change_permission(request):
            raise PermissionDenied
        test_clock = self.get_object(request, unquote(object_id))
        if test_clock is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        form = SimulatedClockAdvanceForm(request.POST)
        change_url = reverse("admin:accounts_simulatedclock_change", args=[test_clock.pk])
        if not form.is_valid():
            for errors in form.errors.values():
                for error in errors:
                    self.message_user(request, _("Not advanced: %(error)s") % {"error": error}, messages.ERROR)
            return HttpResponseRedirect(change_url)
        try:
            advanced = simulated_clock_advance(
                test_clock_id=test_clock.pk, to=form.cleaned_data["frozen_at"], actor=request.user
            )
        except ApplicationError as exc:
            messages_ = [message for field_messages in exc.fields.values() for message in field_messages]
            error = f"{exc.message} {' '.join(messages_)}".strip()
            self.message_user(request, _("Not advanced: %(error)s") % {"error": error}, messages.ERROR)
            return HttpResponseRedirect(change_url)
        runs = advanced.billing_runs.filter(as_of__gt=test_clock.frozen_at)
        invoices = sum(run.invoiced_count for run in runs)
        self.message_user(
            request,
            _("%(clock)s is now at %(time)s UTC: %(runs)s billing run(s), %(invoices)s invoice(s) created.")
            % {
                "clock": advanced.name,
                "time": staff_datetime(advanced.frozen_at),
                "runs": runs.count(),
                "invoices": invoices,
            },
            messages.SUCCESS,
        )
        return HttpResponseRedirect(change_url)


class ApiKeyAddForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["name"]


@admin.register(ApiKey)
class ApiKeyAdmin(ServiceAdminMixin, admin.ModelAdmin):
    list_display = ["name", "prefix", "state", "created_by", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    fields = ["name", "prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyAddForm
            kwargs["fields"] = ["name"]
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return ["name"] if obj is None else self.fields

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the record of a key stays

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description=_("state"))
    def state(self, api_key: ApiKey) -> str:
        return status_badge("revoked", "danger") if api_key.revoked_at else status_badge("active", "success")

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)  # only the name can change
            return
        api_key, raw_key = self.call_service(api_key_create, name=form.cleaned_data["name"], actor=request.user)
        adopt(obj, api_key)
        self.message_user(
            request,
            _("API key created. Copy it now, it is shown only this once: %(key)s") % {"key": raw_key},
            messages.WARNING,
        )

    @admin.action(description=_("Revoke the selected API keys"), permissions=["change"])
    def revoke(self, request, queryset):
        for api_key in queryset:
            api_key_revoke(api_key_id=api_key.pk)
        self.message_user(
            request, _("%(count)s API key(s) revoked; requests with them are refused.") % {"count": queryset.count()}
        )


class UserTokenAddForm(forms.ModelForm):
    class Meta:
        model = UserToken
        fields = ["user", "name"]


@admin.register(UserToken)
class UserTokenAdmin(ServiceAdminMixin, admin.ModelAdmin):
    """Users' API tokens (`Authorization: Token bpu_…`). Only superusers make them (a token acts with
    all of its user's rights); the secret is shown once, only its hash is stored."""

    list_display = ["name", "prefix", "user", "state", "created_by", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["user", "created_by"]
    search_fields = ["name", "prefix", "user__username", "user__email"]
    fields = ["name", "prefix", "user", "created_by", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "user", "created_by", "created_at", "last_used_at", "revoked_at"]
    autocomplete_fields = ["user"]
    actions = ["revoke"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = UserTokenAddForm
            kwargs["fields"] = ["user", "name"]
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return ["user", "name"] if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def has_add_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the record of a token stays

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description=_("state"))
    def state(self, token: UserToken) -> str:
        return status_badge("revoked", "danger") if token.revoked_at else status_badge("active", "success")

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)  # only the name can change
            return
        token, raw_token = self.call_service(
            user_token_create, user_id=form.cleaned_data["user"].pk, name=form.cleaned_data["name"], actor=request.user
        )
        adopt(obj, token)
        self.message_user(
            request,
            _(
                "Token created for %(user)s. Copy it now, it is shown only this once "
                "(header: Authorization: Token …): %(token)s"
            )
            % {"user": token.user, "token": raw_token},
            messages.WARNING,
        )

    @admin.action(description=_("Revoke the selected tokens"), permissions=["change"])
    def revoke(self, request, queryset):
        for token in queryset:
            user_token_revoke(token_id=token.pk)
        self.message_user(
            request, _("%(count)s token(s) revoked; requests with them are refused.") % {"count": queryset.count()}
        )


@admin.register(PortalToken)
class PortalTokenAdmin(admin.ModelAdmin):
    """Customer users' personal tokens for the customer API (made in the portal). Staff see them and may
    revoke a leaked one; they never see a secret."""

    list_display = ["name", "prefix", "membership", "state", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["membership__user", "membership__customer"]
    search_fields = ["name", "prefix", "membership__user__email", "membership__customer__name"]
    fields = ["name", "prefix", "membership", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # customer users make their own, in the portal

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the record of a token stays

    @admin.display(description=_("state"))
    def state(self, token: PortalToken) -> str:
        return status_badge("revoked", "danger") if token.revoked_at else status_badge("active", "success")

    @admin.action(description=_("Revoke the selected tokens"), permissions=["change"])
    def revoke(self, request, queryset):
        for token in queryset:
            portal_token_revoke(membership_id=token.membership_id, token_id=token.pk)
        self.message_user(
            request, _("%(count)s token(s) revoked; requests with them are refused.") % {"count": queryset.count()}
        )


class CustomerInvitationAddForm(forms.ModelForm):
    class Meta:
        model = CustomerInvitation
        fields = ["customer", "email", "role"]


@admin.register(CustomerInvitation)
class CustomerInvitationAdmin(ServiceAdminMixin, admin.ModelAdmin):
    """Invitations to customers' portal teams. Staff invite someone by email (e.g. a new customer's
    first owner); they join only by accepting. Revoked or accepted invitations stay for the record."""

    list_display = ["email", "customer", "role", "state", "invited_by", "created_at", "expires_at"]
    list_filter = ["role", ("accepted_at", admin.EmptyFieldListFilter), ("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["customer", "invited_by"]
    search_fields = ["email", "customer__name"]
    autocomplete_fields = ["customer"]
    fields = ["customer", "email", "role", "state", "invited_by", "created_at", "expires_at", "accepted_at",
              "accepted_by", "revoked_at"]  # fmt: skip
    readonly_fields = ["state", "invited_by", "created_at", "expires_at", "accepted_at", "accepted_by", "revoked_at"]
    actions = ["revoke"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = CustomerInvitationAddForm
            kwargs["fields"] = ["customer", "email", "role"]
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return ["customer", "email", "role"] if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return self.fields if obj is not None else []  # an invitation never changes; revoke it

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description=_("state"))
    def state(self, invitation: CustomerInvitation) -> str:
        return _invitation_badge(invitation)

    def save_model(self, request, obj, form, change):
        if change:
            return
        data = form.cleaned_data
        invitation = self.call_service(
            customer_invitation_create,
            customer_id=data["customer"].pk,
            email=data["email"],
            role=data["role"],
            actor=request.user,
        )
        adopt(obj, invitation)

    @admin.action(description=_("Revoke the selected invitations"), permissions=["change"])
    def revoke(self, request, queryset):
        revoked = 0
        for invitation in queryset.filter(accepted_at__isnull=True):
            customer_invitation_revoke(invitation_id=invitation.pk)
            revoked += 1
        self.message_user(
            request, _("%(count)s invitation(s) revoked; their links no longer work.") % {"count": revoked}
        )
