import django_filters

from apps.accounts.constants import TaxIdStatus
from apps.accounts.models import Customer


class CustomerFilter(django_filters.FilterSet):
    country = django_filters.CharFilter(field_name="country", lookup_expr="iexact", help_text="ISO 3166-1 alpha-2.")
    currency = django_filters.CharFilter(field_name="currency", lookup_expr="iexact", help_text="ISO 4217.")
    external_id = django_filters.CharFilter(field_name="external_id")
    tax_id_status = django_filters.ChoiceFilter(
        choices=TaxIdStatus.choices, help_text="E.g. `invalid`: tax IDs recorded before they were checked, to fix."
    )

    class Meta:
        model = Customer
        fields = ["country", "currency", "external_id", "tax_id_status"]
