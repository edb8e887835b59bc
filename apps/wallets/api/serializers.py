from decimal import Decimal

from rest_framework import serializers

from apps.core.api.serializers import DecimalField, MoneyOutputSerializer

from ..constants import GrantCategory, WalletEntryKind
from ..models import CreditPurchase, Wallet, WalletEntry


def _credits_field(**kwargs) -> DecimalField:
    return DecimalField(max_digits=19, decimal_places=4, **kwargs)


class WalletOutputSerializer(serializers.ModelSerializer):
    balance = _credits_field(read_only=True, help_text="Credits: the sum of the wallet's ledger.")
    balance_amount = serializers.SerializerMethodField(help_text="What the balance is worth at the wallet's rate.")

    class Meta:
        model = Wallet
        fields = [
            "id", "customer", "name", "currency", "rate", "priority", "balance", "balance_amount",
            "top_up_threshold", "top_up_credits", "top_up_valid_days", "created_at",
        ]  # fmt: skip

    def get_balance_amount(self, wallet) -> dict:
        from djmoney.money import Money

        from ..services.ledger import credits_worth

        value = credits_worth(credits=Decimal(wallet.balance), wallet=wallet)
        return MoneyOutputSerializer(Money(value, wallet.currency)).data


class WalletCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    rate = DecimalField(max_digits=19, decimal_places=6, min_value=Decimal("0.000001"),
                        help_text="What one credit is worth in the customer's currency.")  # fmt: skip
    priority = serializers.IntegerField(min_value=0, max_value=32767, default=100)
    top_up_threshold = _credits_field(required=False, allow_null=True, min_value=Decimal(0))
    top_up_credits = _credits_field(required=False, allow_null=True, min_value=Decimal("0.0001"))
    top_up_valid_days = serializers.IntegerField(required=False, allow_null=True, min_value=1)


class WalletEntryOutputSerializer(serializers.ModelSerializer):
    amount = MoneyOutputSerializer()
    kind = serializers.ChoiceField(choices=WalletEntryKind.choices)
    invoice_number = serializers.CharField(source="invoice.number", default=None, read_only=True)
    credit_note_number = serializers.CharField(source="credit_note.number", default=None, read_only=True)

    class Meta:
        model = WalletEntry
        fields = [
            "id", "kind", "credits", "amount", "lot", "expires_on", "category", "reason", "invoice", "invoice_number",
            "returned_from", "credit_note", "credit_note_number", "occurred_at",
        ]  # fmt: skip


class WalletGrantInputSerializer(serializers.Serializer):
    credits = _credits_field(min_value=Decimal("0.0001"))
    category = serializers.ChoiceField(choices=GrantCategory.choices)
    reason = serializers.CharField(max_length=2000)
    expires_on = serializers.DateField(required=False, allow_null=True)


class WalletPurchaseInputSerializer(serializers.Serializer):
    credits = _credits_field(min_value=Decimal("0.0001"))
    expires_on = serializers.DateField(required=False, allow_null=True)


class CreditPurchaseOutputSerializer(serializers.ModelSerializer):
    invoice_number = serializers.CharField(source="invoice.number", read_only=True)
    amount_due = MoneyOutputSerializer(source="invoice.amount_due", read_only=True)

    class Meta:
        model = CreditPurchase
        fields = ["id", "wallet", "credits", "expires_on", "trigger", "status", "invoice", "invoice_number",
                  "amount_due", "created_at"]  # fmt: skip
