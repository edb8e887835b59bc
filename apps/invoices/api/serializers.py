from decimal import Decimal

from django.utils.translation import gettext
from django_countries.serializer_fields import CountryField
from djmoney.money import Money
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.accounts.constants import CollectionMethod
from apps.core.api.serializers import (
    MAX_LIST_ITEMS,
    DecimalField,
    DecimalStringField,
    MoneyInputSerializer,
    MoneyOutputSerializer,
)
from apps.invoices.constants import BillingReason, CreditNoteLineKind, CreditNoteReason
from apps.invoices.models import (
    CreditNote,
    CreditNoteLine,
    CreditNoteTax,
    Invoice,
    InvoicedPeriod,
    InvoiceItem,
    InvoiceLine,
    InvoiceTax,
    TaxRate,
)
from apps.invoices.selectors import invoice_amount_due


class InvoiceListOutputSerializer(serializers.ModelSerializer):
    customer = serializers.PrimaryKeyRelatedField(read_only=True)
    subscription = serializers.PrimaryKeyRelatedField(
        read_only=True,
        allow_null=True,
        help_text="The subscription billed; null on an invoice grouping several (see `invoiced_periods`) or "
        "not from a subscription.",
    )
    currency = serializers.CharField(read_only=True, help_text="ISO 4217 code of every amount on the invoice.")
    subtotal = MoneyOutputSerializer(read_only=True)
    tax_total = MoneyOutputSerializer(read_only=True)
    total = MoneyOutputSerializer(read_only=True)
    amount_paid = MoneyOutputSerializer(read_only=True, help_text="Paid by succeeded payments allocated to it.")
    amount_due = serializers.SerializerMethodField(
        help_text="What is still owed: the total less what payments paid and what credit notes took off it while "
        "unpaid (0 for drafts and once paid or void)."
    )
    collection_method = serializers.ChoiceField(
        choices=CollectionMethod.choices,
        read_only=True,
        help_text="charge_automatically (the customer's card is charged) or send_invoice (the customer pays it); "
        "the customer's setting, copied at finalization.",
    )
    has_pdf = serializers.SerializerMethodField(help_text="Whether the PDF bill has been rendered.")
    billing_reason = serializers.ChoiceField(
        choices=BillingReason.choices,
        read_only=True,
        help_text="Why the invoice was made: `subscription_cycle` (a period), `subscription_update` (a change or "
        "an end), `subscription_threshold` (an interim invoice: progressive billing, the usage of the period so "
        "far), `manual` (a one-off invoice), `credit_purchase` (prepaid credits).",
    )

    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "status",
            "billing_reason",
            "customer",
            "subscription",
            "currency",
            "subtotal",
            "tax_total",
            "total",
            "amount_paid",
            "amount_due",
            "collection_method",
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

    @extend_schema_field(MoneyOutputSerializer)
    def get_amount_due(self, invoice: Invoice) -> dict:
        return MoneyOutputSerializer(Money(invoice_amount_due(invoice), invoice.currency)).data


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
    subscription = serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True, help_text="On an invoice grouping several subscriptions: the one billed."
    )
    product = serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True, help_text="A one-off charge's product, when it names one."
    )
    tax_rate = serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True, help_text="A one-off charge's own tax rate (null: the customer's)."
    )

    class Meta:
        model = InvoiceLine
        fields = [
            "id",
            "position",
            "subscription",
            "kind",
            "description",
            "period_start_at",
            "period_end_at",
            "quantity",
            "unit_amount",
            "amount",
            "explanation",
            "product",
            "tax_rate",
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


class InvoicedPeriodOutputSerializer(serializers.ModelSerializer):
    subscription = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = InvoicedPeriod
        fields = ["subscription", "period_start_at", "period_end_at"]
        read_only_fields = fields


class InvoiceCreditNoteSummaryOutputSerializer(serializers.ModelSerializer):
    total = MoneyOutputSerializer(read_only=True)

    class Meta:
        model = CreditNote
        fields = ["id", "number", "status", "total", "issued_at"]
        read_only_fields = fields


class InvoiceDetailOutputSerializer(InvoiceListOutputSerializer):
    credit_notes = InvoiceCreditNoteSummaryOutputSerializer(many=True, read_only=True)
    invoiced_periods = InvoicedPeriodOutputSerializer(
        many=True,
        read_only=True,
        help_text="The subscription periods the invoice bills (one for a renewal invoice; one per subscription "
        "on an invoice grouping a customer's subscriptions renewing on the same date; none for other invoices).",
    )
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
            "invoiced_periods",
            "lines",
            "taxes",
            "reverse_charge",
            "seller_details",
            "customer_details",
            "pdf_sha256",
            "pdf_rendered_at",
            "credit_notes",
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


class CreditNoteLineInputSerializer(serializers.Serializer):
    invoice_line = serializers.IntegerField(help_text="Id of the invoice line to credit (a charge, not a discount).")
    quantity = DecimalField(
        max_digits=19, decimal_places=6, required=False, allow_null=True,
        help_text="Units of the line to credit. Give a quantity or an amount; neither credits all that is left.",
    )  # fmt: skip
    amount = MoneyInputSerializer(
        required=False, allow_null=True, help_text="Amount of the line to credit (before tax)."
    )


class CreditNoteCreateInputSerializer(serializers.Serializer):
    """Exactly one of: `full`, `lines`, `amount` (lines and an amount may also be combined)."""

    reason = serializers.ChoiceField(choices=CreditNoteReason.choices)
    memo = serializers.CharField(required=False, default="", allow_blank=True, max_length=2000)
    full = serializers.BooleanField(required=False, default=False, help_text="Credit all that is left of the invoice.")
    lines = CreditNoteLineInputSerializer(many=True, required=False, max_length=MAX_LIST_ITEMS)
    amount = MoneyInputSerializer(
        required=False, allow_null=True,
        help_text="A plain amount to credit (before tax; the tax is credited at the invoice's rates).",
    )  # fmt: skip
    credit_to_balance = MoneyInputSerializer(
        required=False, allow_null=True,
        help_text="Paid invoices: how much goes to the customer's balance (default: what is not refunded).",
    )  # fmt: skip
    refund_amount = MoneyInputSerializer(
        required=False,
        allow_null=True,
        help_text="Paid (or partly paid) invoices: how much is refunded, out of the invoice's payments.",
    )
    refund_reference = serializers.CharField(required=False, default="", allow_blank=True, max_length=255)

    def _check_currency(self, value: Money | None) -> Decimal | None:
        if value is None:
            return None
        currency = self.context["currency"]
        if str(value.currency) != currency:
            raise serializers.ValidationError(
                {"currency": [gettext("The invoice is in %(currency)s.") % {"currency": currency}]}
            )
        return value.amount

    def validate(self, attrs: dict) -> dict:
        errors: dict = {}
        for name in ("amount", "credit_to_balance", "refund_amount"):
            try:
                attrs[name] = self._check_currency(attrs.get(name))
            except serializers.ValidationError as exc:
                errors[name] = exc.detail
        line_errors: list = []
        for line in attrs.get("lines", []):
            try:
                line["amount"] = self._check_currency(line.get("amount"))
                line_errors.append({})
            except serializers.ValidationError as exc:
                line_errors.append({"amount": exc.detail})
        if any(line_errors):
            errors["lines"] = line_errors
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class CreditNoteVoidInputSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, default="", allow_blank=True, max_length=500)


class CreditNoteLineOutputSerializer(serializers.ModelSerializer):
    invoice_line = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    quantity = DecimalStringField(allow_null=True, help_text="Units credited, when credited by quantity.")
    amount = MoneyOutputSerializer(read_only=True)
    explanation = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = CreditNoteLine
        fields = ["id", "position", "kind", "invoice_line", "description", "quantity", "amount", "explanation"]
        read_only_fields = fields


class CreditNoteTaxOutputSerializer(serializers.ModelSerializer):
    percentage = DecimalStringField(help_text='Decimal string, e.g. "19".')
    taxable_amount = MoneyOutputSerializer(read_only=True)
    tax_amount = MoneyOutputSerializer(read_only=True)

    class Meta:
        model = CreditNoteTax
        fields = ["name", "percentage", "inclusive", "taxable_amount", "tax_amount"]
        read_only_fields = fields


class CreditNoteListOutputSerializer(serializers.ModelSerializer):
    invoice = serializers.PrimaryKeyRelatedField(read_only=True)
    invoice_number = serializers.CharField(source="invoice.number", read_only=True)
    customer = serializers.PrimaryKeyRelatedField(read_only=True)
    currency = serializers.CharField(read_only=True)
    subtotal = MoneyOutputSerializer(read_only=True)
    tax_total = MoneyOutputSerializer(read_only=True)
    total = MoneyOutputSerializer(read_only=True)
    amount_due_reduction = MoneyOutputSerializer(read_only=True, help_text="Taken off what was due on the invoice.")
    credit_to_balance = MoneyOutputSerializer(read_only=True, help_text="Credited to the customer's balance.")
    refund_amount = MoneyOutputSerializer(
        read_only=True, help_text="Refunded (see /api/v1/refunds?credit_note= for the refunds of the payments)."
    )
    balance_returned = serializers.SerializerMethodField(
        help_text="The share of the balance credit applied on the invoice that the credit note put back on the "
        "customer's balance (in proportion to the charges credited; not part of its total)."
    )
    has_pdf = serializers.SerializerMethodField()

    class Meta:
        model = CreditNote
        fields = [
            "id", "number", "status", "reason", "invoice", "invoice_number", "customer", "currency", "subtotal",
            "tax_total", "total", "amount_due_reduction", "credit_to_balance", "refund_amount", "balance_returned",
            "issued_at",
            "voided_at", "has_pdf", "created_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(MoneyOutputSerializer)
    def get_balance_returned(self, credit_note: CreditNote) -> dict:
        return MoneyOutputSerializer(Money(credit_note.balance_returned, credit_note.currency)).data

    def get_has_pdf(self, credit_note: CreditNote) -> bool:
        return bool(credit_note.pdf)


class CreditNoteDetailOutputSerializer(CreditNoteListOutputSerializer):
    lines = CreditNoteLineOutputSerializer(many=True, read_only=True)
    taxes = CreditNoteTaxOutputSerializer(many=True, read_only=True)

    class Meta(CreditNoteListOutputSerializer.Meta):
        fields = [
            *CreditNoteListOutputSerializer.Meta.fields,
            "memo", "refund_reference", "reverse_charge", "lines", "taxes", "pdf_sha256", "pdf_rendered_at",
        ]  # fmt: skip
        read_only_fields = fields


class CreditNotePreviewLineOutputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=CreditNoteLineKind.choices)
    description = serializers.CharField()
    invoice_line = serializers.IntegerField(source="invoice_line_id", allow_null=True)
    quantity = DecimalStringField(allow_null=True)
    amount = MoneyOutputSerializer()
    explanation = serializers.ListField(child=serializers.CharField())


class CreditNotePreviewTaxOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    percentage = DecimalStringField()
    inclusive = serializers.BooleanField()
    taxable_amount = MoneyOutputSerializer()
    tax_amount = MoneyOutputSerializer()


class CreditNotePreviewOutputSerializer(serializers.Serializer):
    """The credit note that would be issued (nothing is written), and where it leaves the invoice."""

    invoice = serializers.IntegerField()
    currency = serializers.CharField()
    lines = CreditNotePreviewLineOutputSerializer(many=True)
    taxes = CreditNotePreviewTaxOutputSerializer(many=True)
    subtotal = MoneyOutputSerializer()
    tax_total = MoneyOutputSerializer()
    total = MoneyOutputSerializer()
    amount_due_reduction = MoneyOutputSerializer()
    credit_to_balance = MoneyOutputSerializer()
    refund_amount = MoneyOutputSerializer()
    balance_returned = MoneyOutputSerializer(
        help_text="The share of the balance credit applied on the invoice it would put back on the customer's "
        "balance (in proportion to the charges credited; not part of its total)."
    )
    creditable_before = MoneyOutputSerializer(help_text="Left to credit on the invoice before this credit note.")
    creditable_after = MoneyOutputSerializer()
    amount_due_before = MoneyOutputSerializer()
    amount_due_after = MoneyOutputSerializer()
    settles_invoice = serializers.BooleanField(help_text="The invoice is unpaid and nothing is due after it.")
    creditable_before_credits = MoneyOutputSerializer(
        help_text="Of what the invoice billed before prepaid credits (its lines and tax), left to credit before "
        "this credit note; on an invoice the credits paid in full the total is 0.00 but this is not."
    )
    returns_prepaid_credits = serializers.BooleanField(
        help_text="The invoice consumed prepaid credits: the credits' share of the lines credited goes back to the "
        "wallets (nothing of it is refunded as money)."
    )


class TaxRateOutputSerializer(serializers.ModelSerializer):
    percentage = DecimalStringField(help_text='Decimal string, e.g. "20" or "7.25".')
    country = serializers.CharField(source="country.code", read_only=True, help_text="ISO 3166-1 alpha-2 code.")

    class Meta:
        model = TaxRate
        fields = ["id", "name", "percentage", "country", "region", "inclusive", "is_active", "created_at", "updated_at"]
        read_only_fields = fields


class TaxRateCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=128, help_text='Printed on the bill, e.g. "VAT" or "Sales tax".')
    percentage = DecimalField(max_digits=7, decimal_places=4, min_value=Decimal(0), max_value=Decimal(100))
    country = CountryField(help_text="ISO 3166-1 alpha-2 code: customers billed to this country pay the rate.")
    region = serializers.CharField(
        max_length=128, required=False, default="", allow_blank=True,
        help_text="State or region code (e.g. CA), matched against the customer's state; empty for the whole country.",
    )  # fmt: skip
    inclusive = serializers.BooleanField(
        required=False, default=False, help_text="Prices already include this tax (it is not added on top)."
    )


class TaxRateUpdateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=128, required=False)
    percentage = DecimalField(
        max_digits=7, decimal_places=4, min_value=Decimal(0), max_value=Decimal(100), required=False
    )
    country = CountryField(required=False, help_text="Fixed: sending another value is refused.")
    region = serializers.CharField(
        max_length=128, required=False, allow_blank=True, help_text="Fixed: sending another value is refused."
    )
    inclusive = serializers.BooleanField(required=False, help_text="Fixed: sending another value is refused.")
    is_active = serializers.BooleanField(required=False, help_text="false: no longer charged on new invoices.")


# --- One-off charges: pending invoice items and one-off invoices ---------------------------------------


class _OneOffChargeFields(serializers.Serializer):
    """The fields of one one-off charge, checked for their types here and for the rest (the customer's
    currency, an active tax rate, a service period that ends after it starts) by the service."""

    description = serializers.CharField(
        max_length=500, required=False, allow_blank=True, default="",
        help_text="Printed on the bill. May be left out when `product` is given: the product's name.",
    )  # fmt: skip
    quantity = DecimalField(
        max_digits=19, decimal_places=6, min_value=Decimal("0.000001"), help_text='Decimal string > 0, e.g. "2".'
    )
    unit_amount = DecimalField(
        max_digits=28, decimal_places=12, min_value=Decimal(0),
        help_text='Unit price in the customer\'s currency, decimal string ≥ 0 (e.g. "150.00", or "0.0125"); the '
        "line's amount is quantity × unit price, rounded once to the currency's minor unit.",
    )  # fmt: skip
    product = serializers.IntegerField(required=False, allow_null=True, default=None, help_text="A product's id.")
    tax_rate = serializers.IntegerField(
        required=False, allow_null=True, default=None,
        help_text="An active tax rate's id: the line is taxed at it instead of the customer's rate (exempt and "
        "reverse-charged customers pay no tax on any line).",
    )  # fmt: skip
    period_start_at = serializers.DateTimeField(
        required=False, allow_null=True, default=None, help_text="The service period, when it has one (ISO 8601)."
    )
    period_end_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class InvoiceItemCreateInputSerializer(_OneOffChargeFields):
    customer = serializers.IntegerField(help_text="The customer billed.")
    currency = serializers.CharField(
        max_length=3, required=False, help_text="ISO 4217; must be the customer's currency (never converted)."
    )


class InvoiceItemUpdateInputSerializer(_OneOffChargeFields):
    currency = serializers.CharField(max_length=3, required=False, help_text="Must be the customer's currency.")


class OneOffInvoiceLineInputSerializer(_OneOffChargeFields):
    pass


class OneOffInvoiceCreateInputSerializer(serializers.Serializer):
    customer = serializers.IntegerField(help_text="The customer billed.")
    currency = serializers.CharField(
        max_length=3, required=False, help_text="ISO 4217; must be the customer's currency (never converted)."
    )
    lines = OneOffInvoiceLineInputSerializer(many=True, max_length=100, allow_empty=False)
    memo = serializers.CharField(required=False, allow_blank=True, default="", help_text="Printed on the bill.")
    due_on = serializers.DateField(
        required=False, allow_null=True, default=None, help_text="Default: the customer's payment terms."
    )
    finalize = serializers.BooleanField(
        required=False, default=False,
        help_text="Issue at once (numbered, PDF, email, card charged when the customer pays automatically). "
        "Otherwise the invoice is a draft the billing run issues when the review time is over "
        "(`INVOICE_DRAFT_GRACE_HOURS`; at once when it is 0).",
    )  # fmt: skip


class InvoiceItemOutputSerializer(serializers.ModelSerializer):
    customer = serializers.PrimaryKeyRelatedField(read_only=True)
    subscription = serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True, help_text="Set on items made by billing for one subscription (prorations)."
    )
    invoice = serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True, help_text="The invoice that billed the item; null while it is pending."
    )
    invoice_number = serializers.SerializerMethodField(help_text="That invoice's number (null on a draft).")
    status = serializers.SerializerMethodField(help_text="`pending` (waits for the next invoice) or `billed`.")
    currency = serializers.CharField(read_only=True)
    quantity = DecimalStringField()
    unit_amount = MoneyOutputSerializer(read_only=True, allow_null=True)
    amount = MoneyOutputSerializer(read_only=True, help_text="quantity × unit price, rounded once.")
    explanation = serializers.ListField(child=serializers.CharField(), read_only=True)
    product = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    tax_rate = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)

    class Meta:
        model = InvoiceItem
        fields = [
            "id", "customer", "subscription", "status", "invoice", "invoice_number", "kind", "description",
            "quantity", "unit_amount", "amount", "currency", "product", "tax_rate", "period_start_at",
            "period_end_at", "explanation", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_status(self, item: InvoiceItem) -> str:
        return "pending" if item.invoice_id is None else "billed"

    def get_invoice_number(self, item: InvoiceItem) -> str | None:
        return item.invoice.number if item.invoice_id is not None else None
