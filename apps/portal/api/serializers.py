"""The customer API's shapes: what a customer user may see of their own account (no staff fields)."""

from django_countries.serializer_fields import CountryField
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.accounts.constants import PortalLanguage, TaxIdType
from apps.accounts.models import Customer, CustomerMembership, PortalToken
from apps.core.api.serializers import DecimalStringField, MoneyOutputSerializer
from apps.invoices.models import CreditNote, Invoice, InvoiceLine
from apps.subscriptions.models import Subscription


class PortalMembershipOutputSerializer(serializers.ModelSerializer):
    customer_name = serializers.CharField(source="customer.name")

    class Meta:
        model = CustomerMembership
        fields = ["customer_id", "customer_name", "role", "language"]
        read_only_fields = fields


class PortalMeOutputSerializer(serializers.Serializer):
    username = serializers.CharField()
    email = serializers.EmailField()
    customer_id = serializers.IntegerField(help_text="The customer this request acts for.")
    role = serializers.CharField()
    language = serializers.CharField(help_text="The portal language in force for this user and customer.")
    memberships = PortalMembershipOutputSerializer(many=True)


class PortalBillingDetailsOutputSerializer(serializers.ModelSerializer):
    country = serializers.CharField(source="country.code")
    billing_emails = serializers.SerializerMethodField()

    class Meta:
        model = Customer
        fields = [
            "id", "name", "email", "billing_emails", "address_line1", "address_line2", "city", "postal_code",
            "state", "country", "currency", "tax_id", "tax_id_type", "tax_id_status", "preferred_language",
        ]  # fmt: skip
        read_only_fields = fields

    def get_billing_emails(self, customer) -> list[str]:
        return [c.email for c in customer.billing_contacts.all() if c.receives_invoices]


class PortalBillingDetailsInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255, required=False)
    email = serializers.EmailField(required=False)
    billing_emails = serializers.ListField(child=serializers.EmailField(), required=False, max_length=20)
    address_line1 = serializers.CharField(max_length=255, required=False, allow_blank=True)
    address_line2 = serializers.CharField(max_length=255, required=False, allow_blank=True)
    city = serializers.CharField(max_length=128, required=False, allow_blank=True)
    postal_code = serializers.CharField(max_length=32, required=False, allow_blank=True)
    state = serializers.CharField(max_length=128, required=False, allow_blank=True)
    country = CountryField(required=False)
    tax_id = serializers.CharField(max_length=64, required=False, allow_blank=True)
    tax_id_type = serializers.ChoiceField(choices=TaxIdType.choices, required=False, allow_blank=True)
    preferred_language = serializers.ChoiceField(choices=PortalLanguage.choices, required=False)


class PortalInvoiceOutputSerializer(serializers.ModelSerializer):
    total = MoneyOutputSerializer()
    subtotal = MoneyOutputSerializer()
    tax_total = MoneyOutputSerializer()
    amount_due = serializers.SerializerMethodField()

    class Meta:
        model = Invoice
        fields = [
            "id", "number", "status", "issued_at", "due_on", "period_start_at", "period_end_at", "subtotal",
            "tax_total", "total", "amount_due", "paid_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(MoneyOutputSerializer)
    def get_amount_due(self, invoice) -> dict:
        from djmoney.money import Money

        from apps.invoices.selectors import invoice_amount_due

        return MoneyOutputSerializer(Money(invoice_amount_due(invoice), invoice.currency)).data


class PortalInvoiceLineOutputSerializer(serializers.ModelSerializer):
    quantity = DecimalStringField()
    amount = MoneyOutputSerializer()

    class Meta:
        model = InvoiceLine
        fields = ["description", "kind", "period_start_at", "period_end_at", "quantity", "amount"]
        read_only_fields = fields


class PortalInvoiceDetailOutputSerializer(PortalInvoiceOutputSerializer):
    lines = PortalInvoiceLineOutputSerializer(many=True)
    credit_note_ids = serializers.SerializerMethodField()

    class Meta(PortalInvoiceOutputSerializer.Meta):
        fields = [*PortalInvoiceOutputSerializer.Meta.fields, "lines", "credit_note_ids"]
        read_only_fields = fields

    def get_credit_note_ids(self, invoice) -> list[int]:
        return [note.pk for note in invoice.credit_notes.all()]


class PortalCreditNoteOutputSerializer(serializers.ModelSerializer):
    total = MoneyOutputSerializer()
    invoice_number = serializers.CharField(source="invoice.number")

    class Meta:
        model = CreditNote
        fields = ["id", "number", "status", "reason", "invoice_id", "invoice_number", "issued_at", "total"]
        read_only_fields = fields


class PortalSubscriptionOutputSerializer(serializers.ModelSerializer):
    plan_name = serializers.CharField(source="plan.name")
    product_name = serializers.CharField(source="plan.product.name")

    class Meta:
        model = Subscription
        fields = [
            "id", "plan_id", "plan_name", "product_name", "quantity", "currency", "status",
            "current_period_start_at", "current_period_end_at", "next_billing_at", "cancel_at_period_end",
            "canceled_at", "ended_at", "paused_at",
        ]  # fmt: skip
        read_only_fields = fields


class PortalSubscriptionChangeInputSerializer(serializers.Serializer):
    plan = serializers.IntegerField(required=False, allow_null=True, default=None, help_text="An allowed plan's id.")
    quantity = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False, allow_null=True, default=None)


class PortalSubscriptionCancelInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


class PortalMetricUsageOutputSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    aggregation = serializers.CharField()
    total = DecimalStringField()
    days = serializers.SerializerMethodField()

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_days(self, usage) -> list[dict]:
        return [{"day": day.date().isoformat(), "value": format(value.normalize(), "f")} for day, value in usage.days]


class PortalPlanOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    product_name = serializers.CharField(source="product.name")
    interval = serializers.CharField()
    interval_count = serializers.IntegerField()


class PortalLanguageInputSerializer(serializers.Serializer):
    language = serializers.ChoiceField(
        choices=PortalLanguage.choices, allow_blank=True, help_text="Empty: the customer's language."
    )


class PortalInvoicePayInputSerializer(serializers.Serializer):
    payment_method = serializers.CharField(
        max_length=255,
        required=False,
        allow_blank=True,
        help_text="One of the customer's cards; default: the default card.",
    )


class PortalPaymentOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField(help_text="succeeded, failed, requires_action, pending or processing.")
    amount = MoneyOutputSerializer()
    failure_code = serializers.CharField(
        help_text="Why it failed, as Stripe's code (e.g. `insufficient_funds`, `card_declined`); empty otherwise."
    )
    failure_message = serializers.CharField(help_text="Why it failed, in words, in the request's language.")
    client_secret = serializers.CharField(help_text="For `requires_action`: Stripe.js `confirmCardPayment`.")


class PortalTokenOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = PortalToken
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = fields


class PortalTokenCreatedOutputSerializer(PortalTokenOutputSerializer):
    token = serializers.CharField(help_text="The secret, shown this once: send it as `Authorization: Bearer …`.")

    class Meta(PortalTokenOutputSerializer.Meta):
        fields = [*PortalTokenOutputSerializer.Meta.fields, "token"]
        read_only_fields = fields


class PortalTokenInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text='What uses this token, e.g. "Accounting export".')
