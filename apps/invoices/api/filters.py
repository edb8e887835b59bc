import django_filters
from django import forms

from apps.invoices.constants import InvoiceLineKind
from apps.invoices.models import CreditNote, Invoice, InvoiceItem, TaxRate
from apps.invoices.selectors import subscription_invoices


class _IdFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField


class InvoiceFilter(django_filters.FilterSet):
    subscription = _IdFilter(
        method="filter_subscription",
        help_text="Invoices billing this subscription, alone or grouped with the customer's others.",
    )
    issued_at_after = django_filters.IsoDateTimeFilter(
        field_name="issued_at", lookup_expr="gte", help_text="Issued at or after this moment (ISO 8601)."
    )
    issued_at_before = django_filters.IsoDateTimeFilter(
        field_name="issued_at", lookup_expr="lt", help_text="Issued before this moment (ISO 8601)."
    )

    class Meta:
        model = Invoice
        fields = ["customer", "status", "billing_reason", "subscription", "issued_at_after", "issued_at_before"]

    def filter_subscription(self, queryset, name, value):
        return subscription_invoices(subscription_id=value, invoices=queryset)


class CreditNoteFilter(django_filters.FilterSet):
    issued_at_after = django_filters.IsoDateTimeFilter(
        field_name="issued_at", lookup_expr="gte", help_text="Issued at or after this moment (ISO 8601)."
    )
    issued_at_before = django_filters.IsoDateTimeFilter(
        field_name="issued_at", lookup_expr="lt", help_text="Issued before this moment (ISO 8601)."
    )

    class Meta:
        model = CreditNote
        fields = ["invoice", "customer", "status", "reason", "issued_at_after", "issued_at_before"]


class TaxRateFilter(django_filters.FilterSet):
    class Meta:
        model = TaxRate
        fields = ["country", "region", "inclusive", "is_active"]


class InvoiceItemFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(
        choices=[("pending", "pending"), ("billed", "billed")],
        method="filter_status",
        help_text="`pending`: waiting for the customer's next invoice; `billed`: taken by an invoice.",
    )
    kind = django_filters.ChoiceFilter(choices=InvoiceLineKind.choices)
    created_at_after = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="Added at or after this moment (ISO 8601)."
    )
    created_at_before = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="Added before this moment (ISO 8601)."
    )

    class Meta:
        model = InvoiceItem
        fields = ["customer", "invoice", "subscription", "status", "kind", "created_at_after", "created_at_before"]

    def filter_status(self, queryset, name, value):
        return queryset.filter(invoice__isnull=value == "pending")
