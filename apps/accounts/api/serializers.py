from django_countries.serializer_fields import CountryField
from rest_framework import serializers

from apps.accounts.models import Customer
from apps.core.api.serializers import validate_currency_code


class CustomerOutputSerializer(serializers.ModelSerializer):
    country = serializers.CharField(source="country.code", help_text="ISO 3166-1 alpha-2 code.")
    currency = serializers.CharField(help_text="The one currency this customer is billed in (ISO 4217).")

    class Meta:
        model = Customer
        fields = [
            "id",
            "external_id",
            "name",
            "email",
            "address_line1",
            "address_line2",
            "city",
            "postal_code",
            "state",
            "country",
            "currency",
            "tax_id",
            "payment_terms_days",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class CustomerCreateInputSerializer(serializers.Serializer):
    external_id = serializers.CharField(max_length=255, required=False, default="", allow_blank=True)
    name = serializers.CharField(max_length=255)
    email = serializers.EmailField()
    address_line1 = serializers.CharField(max_length=255, required=False, default="", allow_blank=True)
    address_line2 = serializers.CharField(max_length=255, required=False, default="", allow_blank=True)
    city = serializers.CharField(max_length=128, required=False, default="", allow_blank=True)
    postal_code = serializers.CharField(max_length=32, required=False, default="", allow_blank=True)
    state = serializers.CharField(max_length=128, required=False, default="", allow_blank=True)
    country = CountryField(help_text="ISO 3166-1 alpha-2 code.")
    currency = serializers.CharField(max_length=3, help_text="ISO 4217 code; cannot be changed later.")
    tax_id = serializers.CharField(max_length=64, required=False, default="", allow_blank=True)
    payment_terms_days = serializers.IntegerField(min_value=0, max_value=365, required=False, allow_null=True)

    def validate_currency(self, value: str) -> str:
        return validate_currency_code(value)


class CustomerUpdateInputSerializer(serializers.Serializer):
    """Partial update: only the fields sent are changed. The currency is accepted here only to be
    refused by the service with a field error (it never changes)."""

    external_id = serializers.CharField(max_length=255, required=False, allow_blank=True)
    name = serializers.CharField(max_length=255, required=False)
    email = serializers.EmailField(required=False)
    address_line1 = serializers.CharField(max_length=255, required=False, allow_blank=True)
    address_line2 = serializers.CharField(max_length=255, required=False, allow_blank=True)
    city = serializers.CharField(max_length=128, required=False, allow_blank=True)
    postal_code = serializers.CharField(max_length=32, required=False, allow_blank=True)
    state = serializers.CharField(max_length=128, required=False, allow_blank=True)
    country = CountryField(required=False, help_text="ISO 3166-1 alpha-2 code.")
    currency = serializers.CharField(max_length=3, required=False, help_text="Cannot be changed (always refused).")
    tax_id = serializers.CharField(max_length=64, required=False, allow_blank=True)
    payment_terms_days = serializers.IntegerField(min_value=0, max_value=365, required=False, allow_null=True)
