from django.contrib import admin
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html

from apps.core.admin import ReadOnlyInline, ServiceAdminMixin, adopt
from apps.invoices.admin_inlines import InvoiceSummaryInline
from apps.subscriptions.models import Subscription

from .models import Customer, CustomerMembership
from .services import CUSTOMER_EDITABLE_FIELDS, customer_create, customer_update


class CustomerMembershipInline(admin.TabularInline):
    model = CustomerMembership
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]
    autocomplete_fields = ["user"]
    extra = 0
    verbose_name = "portal user"
    verbose_name_plural = "portal users"


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
    verbose_name_plural = "subscriptions"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("plan", "customer")

    @admin.display(description="subscription")
    def subscription(self, subscription: Subscription) -> str:
        url = reverse("admin:subscriptions_subscription_change", args=[subscription.pk])
        return format_html('<a href="{}">#{}</a>', url, subscription.pk)


class CustomerInvoiceInline(InvoiceSummaryInline):
    pass


@admin.register(Customer)
class CustomerAdmin(ServiceAdminMixin, admin.ModelAdmin):
    list_display = ["name", "external_id", "email", "country", "currency", "created_at"]
    list_filter = ["country", "currency"]
    search_fields = ["name", "email", "external_id", "tax_id"]
    date_hierarchy = "created_at"
    ordering = ["name", "id"]
    fieldsets = [
        (None, {"fields": ["name", "external_id", "email"]}),
        ("Billing", {"fields": ["currency", "payment_terms_days", "tax_id"]}),
        (
            "Address",
            {"fields": ["address_line1", "address_line2", "postal_code", "city", "state", "country"]},
        ),
        ("Activity", {"fields": ["billing_summary", "created_at", "updated_at"]}),
    ]
    inlines = [CustomerMembershipInline, CustomerSubscriptionInline, CustomerInvoiceInline]

    def get_readonly_fields(self, request, obj=None):
        readonly = ["billing_summary", "created_at", "updated_at"]
        if obj is not None:
            # The billing currency is fixed once the customer exists (prices, invoices and
            # subscriptions all depend on it).
            readonly.append("currency")
        return readonly

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return self.fieldsets[:3]
        return self.fieldsets

    def get_inlines(self, request, obj):
        if obj is None:
            return [CustomerMembershipInline]
        return self.inlines

    @admin.display(description="billing")
    def billing_summary(self, customer: Customer) -> str:
        counts = Customer.objects.filter(pk=customer.pk).aggregate(
            subscriptions=Count("subscriptions", distinct=True), invoices=Count("invoices", distinct=True)
        )
        subscriptions_url = (
            reverse("admin:subscriptions_subscription_changelist") + f"?customer__id__exact={customer.pk}"
        )
        invoices_url = reverse("admin:invoices_invoice_changelist") + f"?customer__id__exact={customer.pk}"
        return format_html(
            '<a href="{}">{} subscription(s)</a> · <a href="{}">{} invoice(s)</a>',
            subscriptions_url,
            counts["subscriptions"],
            invoices_url,
            counts["invoices"],
        )

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            changes = {name: data[name] for name in form.changed_data if name in CUSTOMER_EDITABLE_FIELDS}
            if changes:
                adopt(obj, self.call_service(customer_update, customer_id=obj.pk, **changes))
        else:
            fields = {name: data[name] for name in CUSTOMER_EDITABLE_FIELDS if name in data}
            adopt(obj, self.call_service(customer_create, currency=data["currency"], **fields))
