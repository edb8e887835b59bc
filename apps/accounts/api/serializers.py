from django_countries.serializer_fields import CountryField
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from apps.accounts.constants import CollectionMethod, InvoiceGrouping, TaxIdStatus, TaxIdType
from apps.accounts.models import BillingContact, Customer, SimulatedClock, validate_time_zone
from apps.core.api.serializers import MAX_NESTED_ITEMS, MoneyOutputSerializer, validate_currency_code

TAX_ID_HELP = (
    "Checked and normalized: a VAT number (EU, UK, Switzerland, Norway) must pass its format and check-digit "
    "check and belong to the customer's country (EU numbers are stored with their prefix, e.g. DE123456788, "
    "EL094259216 for Greece); a refused one is a 400 with a `tax_id` field error. Empty removes it."
)
TAX_ID_TYPE_HELP = (
    "The kind of tax ID (Stripe's names). Empty or left out: the customer's country's VAT number, a US EIN in the "
    "US, else `other`, which is stored as typed, not checked, and never allows the EU reverse charge."
)


class BillingContactOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = BillingContact
        fields = ["id", "name", "email", "receives_invoices"]
        read_only_fields = fields


class BillingContactInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255, required=False, default="", allow_blank=True)
    email = serializers.EmailField(max_length=254)
    receives_invoices = serializers.BooleanField(required=False, default=True, help_text="Bills are emailed here.")


_BILLING_CONTACTS_HELP = (
    "People who receive the bills by email besides `email` (e.g. accounts payable). When sent, the list "
    "replaces the customer's contacts (matched by email, without case)."
)


class CustomerOutputSerializer(serializers.ModelSerializer):
    country = serializers.CharField(source="country.code", help_text="ISO 3166-1 alpha-2 code.")
    currency = serializers.CharField(help_text="The one currency this customer is billed in (ISO 4217).")
    billing_contacts = BillingContactOutputSerializer(
        many=True, read_only=True, help_text="Who receives the bills by email besides `email`."
    )
    # Empty when not set: declared so that the schema's enums include "" (read-only model fields lose
    # allow_blank, and the schema then refused the empty values every customer without them has).
    tax_id_type = serializers.ChoiceField(choices=TaxIdType.choices, allow_blank=True, read_only=True)
    tax_id_status = serializers.ChoiceField(choices=TaxIdStatus.choices, allow_blank=True, read_only=True)
    invoice_grouping = serializers.ChoiceField(
        choices=InvoiceGrouping.choices, allow_blank=True, read_only=True, help_text="Empty: the default."
    )

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
            "tax_id_type",
            "tax_id_status",
            "tax_id_checked_at",
            "tax_exempt",
            "payment_terms_days",
            "invoice_grouping",
            "collection_method",
            "time_zone",
            "test_clock",
            "billing_contacts",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


COLLECTION_METHOD_HELP = (
    "charge_automatically: finalized invoices are charged to the customer's default card; send_invoice: the "
    "customer is sent the invoice and pays it. Copied onto each invoice at finalization."
)


TIME_ZONE_HELP = (
    "IANA time zone name, e.g. Asia/Shanghai (default UTC): the hours of a usage charge's peak and off-peak "
    "prices are counted in it."
)


class CustomerBalanceOutputSerializer(serializers.Serializer):
    customer = serializers.IntegerField()
    credit_balance = MoneyOutputSerializer(
        help_text="Credits waiting to be taken off the customer's next invoices (credit notes credited to the "
        "balance, unused time of canceled subscriptions, money paid beyond what was due), never taking an "
        "invoice below zero."
    )


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
    tax_id = serializers.CharField(max_length=64, required=False, default="", allow_blank=True, help_text=TAX_ID_HELP)
    tax_id_type = serializers.ChoiceField(
        choices=TaxIdType.choices, required=False, default="", allow_blank=True, help_text=TAX_ID_TYPE_HELP
    )
    tax_exempt = serializers.BooleanField(required=False, default=False, help_text="Never charged tax.")
    payment_terms_days = serializers.IntegerField(min_value=0, max_value=365, required=False, allow_null=True)
    invoice_grouping = serializers.ChoiceField(
        choices=InvoiceGrouping.choices, required=False, default="", allow_blank=True,
        help_text="per_customer: one invoice for all subscriptions renewing on the same date; "
        "per_subscription: one each; empty: the default.",
    )  # fmt: skip
    collection_method = serializers.ChoiceField(
        choices=CollectionMethod.choices, required=False, default=CollectionMethod.SEND_INVOICE,
        help_text=COLLECTION_METHOD_HELP,
    )  # fmt: skip
    time_zone = serializers.CharField(
        max_length=64, required=False, default="UTC", validators=[validate_time_zone], help_text=TIME_ZONE_HELP
    )
    test_clock = serializers.PrimaryKeyRelatedField(
        queryset=SimulatedClock.objects.all(), required=False, allow_null=True, default=None,
        help_text="Test customers only: attach to a test clock (cannot change later).",
    )  # fmt: skip
    billing_contacts = BillingContactInputSerializer(
        many=True, required=False, default=list, max_length=MAX_NESTED_ITEMS, help_text=_BILLING_CONTACTS_HELP
    )

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
    tax_id = serializers.CharField(max_length=64, required=False, allow_blank=True, help_text=TAX_ID_HELP)
    tax_id_type = serializers.ChoiceField(
        choices=TaxIdType.choices, required=False, allow_blank=True, help_text=TAX_ID_TYPE_HELP
    )
    tax_exempt = serializers.BooleanField(required=False, help_text="Never charged tax.")
    payment_terms_days = serializers.IntegerField(min_value=0, max_value=365, required=False, allow_null=True)
    invoice_grouping = serializers.ChoiceField(
        choices=InvoiceGrouping.choices, required=False, allow_blank=True,
        help_text="per_customer: one invoice for all subscriptions renewing on the same date; "
        "per_subscription: one each; empty: the default.",
    )  # fmt: skip
    collection_method = serializers.ChoiceField(
        choices=CollectionMethod.choices, required=False, help_text=COLLECTION_METHOD_HELP
    )
    time_zone = serializers.CharField(
        max_length=64, required=False, validators=[validate_time_zone], help_text=TIME_ZONE_HELP
    )
    billing_contacts = BillingContactInputSerializer(
        many=True, required=False, max_length=MAX_NESTED_ITEMS, help_text=_BILLING_CONTACTS_HELP
    )


@extend_schema_serializer(component_name="TestClockOutput")  # the API's name for them
class SimulatedClockOutputSerializer(serializers.ModelSerializer):
    customer_count = serializers.IntegerField(read_only=True, help_text="Customers living at this clock's time.")

    class Meta:
        model = SimulatedClock
        fields = ["id", "name", "frozen_at", "customer_count", "created_at", "updated_at"]
        read_only_fields = fields


@extend_schema_serializer(component_name="TestClockCreateInput")  # the API's name for them
class SimulatedClockCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255)
    frozen_at = serializers.DateTimeField(required=False, help_text="Where the clock starts (default: now).")


@extend_schema_serializer(component_name="TestClockAdvanceInput")  # the API's name for them
class SimulatedClockAdvanceInputSerializer(serializers.Serializer):
    frozen_at = serializers.DateTimeField(help_text="The new time; after the clock's time, at most five years on.")
