from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.accounts.models import Customer
from apps.core.api.serializers import DecimalField, MoneyInputSerializer, MoneyOutputSerializer
from apps.payments.constants import MANUAL_METHOD_CHOICES
from apps.payments.models import Payment, PaymentAllocation, PaymentEvent, Refund
from apps.payments.services import payment_credited_to_balance


class PaymentAllocationOutputSerializer(serializers.ModelSerializer):
    invoice = serializers.PrimaryKeyRelatedField(read_only=True)
    invoice_number = serializers.CharField(source="invoice.number", read_only=True, allow_null=True)
    amount = MoneyOutputSerializer(read_only=True)

    class Meta:
        model = PaymentAllocation
        fields = ["invoice", "invoice_number", "amount"]
        read_only_fields = fields


class PaymentListOutputSerializer(serializers.ModelSerializer):
    customer = serializers.PrimaryKeyRelatedField(read_only=True)
    amount = MoneyOutputSerializer(read_only=True)
    amount_refunded = MoneyOutputSerializer(read_only=True, help_text="Refunds that succeeded.")
    allocations = PaymentAllocationOutputSerializer(
        many=True, read_only=True, help_text="The invoices the payment pays (counted once it has succeeded)."
    )

    class Meta:
        model = Payment
        fields = [
            "id",
            "customer",
            "provider",
            "method",
            "status",
            "amount",
            "amount_refunded",
            "reference",
            "provider_payment_id",
            "received_at",
            "allocations",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class RefundOutputSerializer(serializers.ModelSerializer):
    payment = serializers.PrimaryKeyRelatedField(read_only=True)
    credit_note = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    credit_note_number = serializers.CharField(source="credit_note.number", read_only=True, allow_null=True)
    amount = MoneyOutputSerializer(read_only=True)
    failure_message = serializers.CharField(
        source="failure_text", read_only=True, help_text="Why it failed, in words (`failure_code`: Stripe's code)."
    )
    provider_failure_message = serializers.CharField(
        source="failure_message", read_only=True, help_text="Stripe's own sentence, as Stripe sent it (English)."
    )

    class Meta:
        model = Refund
        fields = [
            "id",
            "payment",
            "credit_note",
            "credit_note_number",
            "amount",
            "status",
            "reason",
            "reference",
            "provider_refund_id",
            "failure_code",
            "failure_message",
            "provider_failure_message",
            "succeeded_at",
            "failed_at",
            "created_at",
        ]
        read_only_fields = fields


class PaymentEventOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = PaymentEvent
        fields = ["type", "occurred_at", "data"]
        read_only_fields = fields


class PaymentDetailOutputSerializer(PaymentListOutputSerializer):
    credited_to_balance = serializers.SerializerMethodField(
        help_text="The part not allocated to invoices, credited to the customer's balance."
    )
    refunds = RefundOutputSerializer(many=True, read_only=True)
    events = PaymentEventOutputSerializer(many=True, read_only=True)
    failure_message = serializers.CharField(
        source="failure_text",
        read_only=True,
        help_text="Why it failed, in words, in the request's language (`failure_code`: Stripe's code).",
    )
    provider_failure_message = serializers.CharField(
        source="failure_message", read_only=True, help_text="Stripe's own sentence, as Stripe sent it (English)."
    )

    class Meta(PaymentListOutputSerializer.Meta):
        fields = [
            *PaymentListOutputSerializer.Meta.fields,
            "credited_to_balance",
            "failure_code",
            "failure_message",
            "provider_failure_message",
            "next_action_url",
            "idempotency_key",
            "reversed_at",
            "reversal_reason",
            "refunds",
            "events",
        ]
        read_only_fields = fields

    @extend_schema_field(MoneyOutputSerializer)
    def get_credited_to_balance(self, payment: Payment) -> dict:
        from djmoney.money import Money

        return MoneyOutputSerializer(Money(payment_credited_to_balance(payment), payment.currency)).data


class PaymentAllocationInputSerializer(serializers.Serializer):
    invoice = serializers.IntegerField(help_text="An open or uncollectible invoice of the customer.")
    amount = DecimalField(
        max_digits=19, decimal_places=6, help_text='Decimal string in the payment\'s currency, e.g. "40.00".'
    )


class PaymentManualCreateInputSerializer(serializers.Serializer):
    customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.all())
    amount = MoneyInputSerializer(help_text="In the customer's currency; greater than zero.")
    method = serializers.ChoiceField(
        choices=MANUAL_METHOD_CHOICES,
        help_text="How the money arrived.",
    )
    reference = serializers.CharField(
        max_length=255,
        help_text="The bank transfer's reference, the cheque or receipt number. Unique among the customer's "
        "manual payments (reversed ones aside; case and surrounding spaces aside): the same reference again is "
        "a 409 with a field error on `reference`, and nothing is recorded.",
    )
    received_at = serializers.DateTimeField(help_text="When the money arrived (ISO 8601 with a time zone).")
    allocations = PaymentAllocationInputSerializer(
        many=True,
        required=False,
        allow_null=True,
        default=None,
        help_text="Which invoices it pays and how much of each; the rest goes to the customer's credit balance. "
        "Left out: the customer's unpaid invoices, oldest due first.",
    )

    def validate_amount(self, value) -> dict:
        return {"amount": Decimal(value.amount), "currency": str(value.currency)}


class PaymentReverseInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, help_text="Why the payment is undone (kept in its history).")
