import django_filters
from django import forms

from apps.payments.models import Payment, Refund


class _IdFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField


class PaymentFilter(django_filters.FilterSet):
    invoice = _IdFilter(field_name="allocations__invoice", distinct=True, help_text="Payments allocated to it.")
    received_at_after = django_filters.IsoDateTimeFilter(
        field_name="received_at", lookup_expr="gte", help_text="Received at or after this moment (ISO 8601)."
    )
    received_at_before = django_filters.IsoDateTimeFilter(
        field_name="received_at", lookup_expr="lt", help_text="Received before this moment (ISO 8601)."
    )

    class Meta:
        model = Payment
        fields = ["customer", "status", "provider", "method", "invoice", "received_at_after", "received_at_before"]


class RefundFilter(django_filters.FilterSet):
    customer = _IdFilter(field_name="payment__customer")

    class Meta:
        model = Refund
        fields = ["payment", "credit_note", "status", "customer"]
