from rest_framework import serializers

from apps.core.api.serializers import DecimalStringField, MoneyOutputSerializer
from apps.invoices.models import BillingRun, Invoice, InvoiceLine, InvoiceTax


class InvoiceListOutputSerializer(serializers.ModelSerializer):
    customer = serializers.PrimaryKeyRelatedField(read_only=True)
    subscription = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    currency = serializers.CharField(read_only=True, help_text="ISO 4217 code of every amount on the invoice.")
    subtotal = MoneyOutputSerializer(read_only=True)
    tax_total = MoneyOutputSerializer(read_only=True)
    total = MoneyOutputSerializer(read_only=True)
    has_pdf = serializers.SerializerMethodField(help_text="Whether the PDF bill has been rendered.")

    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "status",
            "customer",
            "subscription",
            "currency",
            "subtotal",
            "tax_total",
            "total",
            "period_start_at",
            "period_end_at",
            "issued_at",
            "due_on",
            "paid_at",
            "voided_at",
            "marked_uncollectible_at",
            "has_pdf",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_has_pdf(self, invoice: Invoice) -> bool:
        return bool(invoice.pdf)


class InvoiceLineOutputSerializer(serializers.ModelSerializer):
    quantity = DecimalStringField(help_text='Decimal string, e.g. "3" or "1.5".')
    unit_amount = MoneyOutputSerializer(
        read_only=True,
        allow_null=True,
        help_text="May carry more decimals than the currency; null where no single unit price applies (tiers, "
        "packages, percentages: see `explanation`).",
    )
    amount = MoneyOutputSerializer(read_only=True, help_text="Rounded once to the currency's minor unit.")
    explanation = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="How the amount was computed, step by step."
    )

    class Meta:
        model = InvoiceLine
        fields = [
            "id",
            "position",
            "kind",
            "description",
            "period_start_at",
            "period_end_at",
            "quantity",
            "unit_amount",
            "amount",
            "explanation",
        ]
        read_only_fields = fields


class InvoiceTaxOutputSerializer(serializers.ModelSerializer):
    percentage = DecimalStringField(help_text='Decimal string, e.g. "19" or "7.25".')
    inclusive = serializers.BooleanField(
        read_only=True, help_text="The lines already contain this tax (not added to the total)."
    )
    taxable_amount = MoneyOutputSerializer(read_only=True, help_text="The net amount the tax is computed on.")
    tax_amount = MoneyOutputSerializer(read_only=True)

    class Meta:
        model = InvoiceTax
        fields = ["name", "percentage", "inclusive", "taxable_amount", "tax_amount"]
        read_only_fields = fields


class InvoiceDetailOutputSerializer(InvoiceListOutputSerializer):
    lines = InvoiceLineOutputSerializer(many=True, read_only=True)
    taxes = InvoiceTaxOutputSerializer(
        many=True, read_only=True, help_text="Tax per rate (for inclusive rates: the tax the lines contain)."
    )
    seller_details = serializers.DictField(read_only=True, help_text="Seller as printed on the bill (frozen at issue).")
    customer_details = serializers.DictField(
        read_only=True, help_text="Buyer as printed on the bill (frozen at issue)."
    )

    class Meta(InvoiceListOutputSerializer.Meta):
        fields = [
            *InvoiceListOutputSerializer.Meta.fields,
            "memo",
            "auto_finalize_at",
            "lines",
            "taxes",
            "reverse_charge",
            "seller_details",
            "customer_details",
            "pdf_sha256",
            "pdf_rendered_at",
        ]
        read_only_fields = fields


class InvoiceVoidInputSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, default="", allow_blank=True, max_length=500)


class InvoiceMarkPaidInputSerializer(serializers.Serializer):
    reference = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=255, help_text="E.g. the bank transfer reference."
    )


class InvoiceMarkUncollectibleInputSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, default="", allow_blank=True, max_length=500)


class InvoiceSendOutputSerializer(serializers.Serializer):
    invoice = serializers.IntegerField(source="invoice_id", read_only=True)
    number = serializers.CharField(source="invoice.number", read_only=True)
    sent_at = serializers.DateTimeField(source="occurred_at", read_only=True)
    recipients = serializers.SerializerMethodField(help_text="Who the bill was emailed to.")
    pdf_sha256 = serializers.SerializerMethodField(help_text="SHA-256 of the PDF bill attached.")

    def get_recipients(self, event) -> list[str]:
        return list(event.data.get("recipients", []))

    def get_pdf_sha256(self, event) -> str:
        return str(event.data.get("pdf_sha256", ""))


class BillingRunOutputSerializer(serializers.ModelSerializer):
    triggered_by = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True, help_text="Staff user id.")
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    errors = serializers.ListField(child=serializers.DictField(), read_only=True)

    class Meta:
        model = BillingRun
        fields = [
            "id",
            "as_of",
            "trigger",
            "triggered_by",
            "status",
            "started_at",
            "finished_at",
            "duration_seconds",
            "due_count",
            "invoiced_count",
            "skipped_count",
            "failed_count",
            "finalized_count",
            "errors",
        ]
        read_only_fields = fields
