import django_filters

from apps.invoices.models import CreditNote, Invoice


class InvoiceFilter(django_filters.FilterSet):
    issued_at_after = django_filters.IsoDateTimeFilter(
        field_name="issued_at", lookup_expr="gte", help_text="Issued at or after this moment (ISO 8601)."
    )
    issued_at_before = django_filters.IsoDateTimeFilter(
        field_name="issued_at", lookup_expr="lt", help_text="Issued before this moment (ISO 8601)."
    )

    class Meta:
        model = Invoice
        fields = ["customer", "status", "subscription", "issued_at_after", "issued_at_before"]


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
