from rest_framework import serializers


class CardOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    brand = serializers.CharField()
    last4 = serializers.CharField()
    exp_month = serializers.IntegerField()
    exp_year = serializers.IntegerField()
    is_default = serializers.BooleanField()


class SetupIntentOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    client_secret = serializers.CharField(help_text="For Stripe.js `confirmCardSetup` in the browser.")
    publishable_key = serializers.CharField()


class PaymentMethodAttachInputSerializer(serializers.Serializer):
    setup_intent = serializers.RegexField(
        r"^seti_[A-Za-z0-9_]+$", max_length=255, help_text="The SetupIntent the browser confirmed with the card."
    )
    make_default = serializers.BooleanField(default=False)


class CardChargeOutputSerializer(serializers.Serializer):
    """The collection attempt a charge made: its payment and how it went."""

    payment = serializers.IntegerField(source="pk")
    status = serializers.CharField()
    amount = serializers.DecimalField(source="amount.amount", max_digits=19, decimal_places=4)
    currency = serializers.CharField()
    idempotency_key = serializers.CharField()
    provider_payment_id = serializers.CharField()
    failure_code = serializers.CharField()
    failure_message = serializers.CharField()
    next_action_url = serializers.CharField()
