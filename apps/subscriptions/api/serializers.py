from djmoney.money import Money
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.accounts.models import Customer
from apps.billing.constants import ChangeTiming, ProrationBehavior
from apps.catalog import pricing
from apps.catalog.api.serializers import PriceInputSerializer
from apps.catalog.constants import FeatureKind, ThresholdScope, VersionMigrationTiming
from apps.catalog.models import Plan, PlanVersion
from apps.catalog.services import PriceInput, TierInput
from apps.core.api.serializers import DecimalStringField, MoneyOutputSerializer
from apps.invoices.api.serializers import InvoiceListOutputSerializer
from apps.subscriptions.models import Subscription, SubscriptionPriceOverride


class PriceOverrideOutputSerializer(serializers.ModelSerializer):
    """A subscription's custom price for one charge, beside the plan's price it replaces."""

    charge = serializers.PrimaryKeyRelatedField(read_only=True)
    charge_name = serializers.CharField(source="charge.name", read_only=True)
    price_model = serializers.CharField(source="charge.price_model", read_only=True)
    amount = DecimalStringField()
    tiers = serializers.ListField(child=serializers.DictField(), read_only=True)
    included_units = DecimalStringField()
    percentage = DecimalStringField()
    fixed_fee = DecimalStringField()
    min_per_transaction = DecimalStringField(allow_null=True)
    max_per_transaction = DecimalStringField(allow_null=True)
    minimum_amount = DecimalStringField(allow_null=True)
    description = serializers.SerializerMethodField(help_text="The custom price in words.")
    plan_price = serializers.SerializerMethodField(
        help_text="The plan version's price it replaces, in words (null: the charge has none in the currency)."
    )

    class Meta:
        model = SubscriptionPriceOverride
        fields = [
            "charge", "charge_name", "price_model", "currency", "amount", "tiers", "package_size", "package_rounding",
            "included_units", "percentage", "fixed_fee", "min_per_transaction", "max_per_transaction",
            "minimum_amount", "note", "description", "plan_price", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_description(self, override: SubscriptionPriceOverride) -> str:
        return pricing.price_describe(override.to_spec())

    def get_plan_price(self, override: SubscriptionPriceOverride) -> str | None:
        price = override.charge.price_for(override.currency)
        return pricing.price_describe(price.to_spec()) if price is not None else None


class PriceOverrideInputSerializer(PriceInputSerializer):
    """A custom price: the fields of a catalog price in the charge's price model (the subscription's
    currency; no dimension values or peak window: it replaces every price of the charge)."""

    dimension_values = None
    time_window = None
    currency = serializers.CharField(
        max_length=3, required=False, help_text="ISO 4217; the subscription's currency (the default)."
    )
    note = serializers.CharField(max_length=255, required=False, default="", allow_blank=True)

    def to_price_input(self, *, currency: str) -> PriceInput:
        data = dict(self.validated_data)
        data.pop("note", None)
        data["currency"] = data.get("currency") or currency
        return PriceInput(**{key: value for key, value in data.items() if key != "tiers"},
                          tiers=[TierInput(**tier) for tier in data["tiers"]])  # fmt: skip


class SubscriptionProgressiveBillingOutputSerializer(serializers.Serializer):
    """The progressive billing thresholds in force for a subscription (docs/billing-rules.md)."""

    custom = serializers.BooleanField(help_text="True: the subscription's own thresholds; false: its plan version's.")
    currency = serializers.CharField(help_text="The subscription's currency: the thresholds are amounts in it.")
    thresholds = serializers.ListField(child=serializers.CharField(), help_text="Fixed thresholds (usage to date).")
    every = serializers.CharField(allow_null=True, help_text="Recurring threshold, or null.")
    scope = serializers.ChoiceField(
        choices=ThresholdScope.choices,
        help_text='What the thresholds measure: "period" (the usage of the current period; each threshold fires '
        'once per period) or "lifetime" (the usage since the subscription started; each fires once in its life).',
    )
    enabled = serializers.BooleanField(help_text="Whether the subscription is billed progressively at all.")


def progressive_billing_data(subscription: Subscription) -> dict:
    from apps.catalog.progressive import plain
    from apps.subscriptions.selectors import subscription_progressive_schedule

    schedule, custom = subscription_progressive_schedule(subscription)
    return {
        "custom": custom,
        "currency": subscription.currency,
        "thresholds": [plain(amount) for amount in schedule.amounts],
        "every": plain(schedule.every) if schedule.every is not None else None,
        "scope": schedule.scope,
        "enabled": bool(schedule),
    }


class SubscriptionOutputSerializer(serializers.ModelSerializer):
    customer = serializers.PrimaryKeyRelatedField(read_only=True)
    plan = serializers.PrimaryKeyRelatedField(read_only=True)
    plan_version = serializers.PrimaryKeyRelatedField(read_only=True, help_text="The plan version it is billed at.")
    plan_version_number = serializers.IntegerField(source="plan_version.number", read_only=True)
    pending_plan_version = serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True, help_text="A version it moves to when the next period begins."
    )
    currency = serializers.CharField(read_only=True, help_text="The customer's billing currency (ISO 4217).")
    price_overrides = PriceOverrideOutputSerializer(
        many=True, read_only=True, help_text="Custom prices: where this subscription differs from its plan version."
    )
    progressive_billing = serializers.SerializerMethodField(
        help_text="Progressive billing thresholds in force: its own or its plan version's."
    )

    class Meta:
        model = Subscription
        fields = [
            "id",
            "customer",
            "plan",
            "plan_version",
            "plan_version_number",
            "pending_plan_version",
            "quantity",
            "currency",
            "status",
            "billing_anchor_at",
            "started_at",
            "trial_end_at",
            "paused_at",
            "current_period_start_at",
            "current_period_end_at",
            "next_billing_at",
            "cancel_at_period_end",
            "canceled_at",
            "ended_at",
            "cancellation_reason",
            "price_overrides",
            "progressive_billing",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(SubscriptionProgressiveBillingOutputSerializer)
    def get_progressive_billing(self, subscription: Subscription) -> dict:
        return progressive_billing_data(subscription)


class SubscriptionCreateOutputSerializer(SubscriptionOutputSerializer):
    invoices = InvoiceListOutputSerializer(
        many=True, read_only=True, help_text="Its invoices (those issued at once on creation)."
    )

    class Meta(SubscriptionOutputSerializer.Meta):
        fields = [*SubscriptionOutputSerializer.Meta.fields, "invoices"]
        read_only_fields = fields


class SubscriptionCreateInputSerializer(serializers.Serializer):
    customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.all(), help_text="Customer id.")
    plan = serializers.PrimaryKeyRelatedField(queryset=Plan.objects.all(), help_text="Plan id.")
    quantity = serializers.IntegerField(min_value=1, max_value=2147483647, default=1)
    started_at = serializers.DateTimeField(
        required=False, help_text="When the first period starts (default: now). Past periods are invoiced at once."
    )
    trial_days = serializers.IntegerField(
        min_value=0, max_value=730, required=False, allow_null=True, default=None,
        help_text="Days of free trial; omit for the plan's trial length, 0 for none.",
    )  # fmt: skip
    billing_cycle_day = serializers.IntegerField(
        min_value=1, max_value=28, required=False, allow_null=True, default=None,
        help_text="Calendar billing (monthly plans): bill on this day of every month; the first period is "
        "prorated. Omit to bill on the anniversary of the start.",
    )  # fmt: skip


class SubscriptionCancelInputSerializer(serializers.Serializer):
    at_period_end = serializers.BooleanField(
        default=True,
        help_text="True: the subscription does not renew and ends when the current period ends (undo until "
        "then). False: it ends now and nothing more is billed.",
    )
    reason = serializers.CharField(required=False, default="", allow_blank=True, max_length=500)
    prorate = serializers.BooleanField(
        default=False,
        help_text="With `at_period_end: false`: credit the unused time of the period already invoiced; the "
        "credit is taken off the customer's next invoices.",
    )

    def validate(self, attrs: dict) -> dict:
        if attrs["prorate"] and attrs["at_period_end"]:
            raise serializers.ValidationError(
                {"prorate": ["Only a cancellation now has unused time to credit; set at_period_end to false."]}
            )
        return attrs


class SubscriptionMigrateVersionInputSerializer(serializers.Serializer):
    version = serializers.PrimaryKeyRelatedField(
        queryset=PlanVersion.objects.all(), help_text="Id of a version of the subscription's plan."
    )
    timing = serializers.ChoiceField(
        choices=VersionMigrationTiming.choices,
        default=VersionMigrationTiming.NEXT_PERIOD,
        help_text="`next_period` (default): the version takes over when the next period begins. `now`: it "
        "prices everything billed from now on (the period already invoiced is not re-billed).",
    )


class SubscriptionChangeInputSerializer(serializers.Serializer):
    plan = serializers.PrimaryKeyRelatedField(
        queryset=Plan.objects.all(), required=False, allow_null=True, default=None,
        help_text="The new plan (same billing interval); omit to keep the plan.",
    )  # fmt: skip
    quantity = serializers.IntegerField(
        min_value=1, max_value=1_000_000, required=False, allow_null=True, default=None,
        help_text="The new quantity; omit to keep it.",
    )  # fmt: skip
    timing = serializers.ChoiceField(
        choices=ChangeTiming.choices, default=ChangeTiming.NOW,
        help_text="`now`, or `period_end` (scheduled; applied when the next period begins, nothing prorated).",
    )  # fmt: skip
    proration = serializers.ChoiceField(
        choices=ProrationBehavior.choices, default=ProrationBehavior.PRORATE,
        help_text="For changes made now: `prorate` (credit and charge on the next invoice), `invoice_now` (the "
        "same lines on an invoice issued at once) or `none`.",
    )  # fmt: skip
    effective_at = serializers.DateTimeField(
        required=False, allow_null=True, default=None,
        help_text="For changes made now: date the change back within the current period (prorations are "
        "computed from then). Never before the current period's start, never in the future.",
    )  # fmt: skip


class LinePreviewOutputSerializer(serializers.Serializer):
    kind = serializers.CharField()
    description = serializers.CharField()
    period_start_at = serializers.DateTimeField(allow_null=True)
    period_end_at = serializers.DateTimeField(allow_null=True)
    quantity = DecimalStringField()
    unit_amount = serializers.SerializerMethodField(help_text="Null where no single unit price applies.")
    amount = serializers.SerializerMethodField(help_text="Rounded once; negative for credits.")
    explanation = serializers.ListField(child=serializers.CharField())

    @extend_schema_field(MoneyOutputSerializer(allow_null=True))
    def get_unit_amount(self, line) -> dict | None:
        if line.unit_amount is None:
            return None
        return MoneyOutputSerializer(Money(line.unit_amount, line.currency)).data

    @extend_schema_field(MoneyOutputSerializer)
    def get_amount(self, line) -> dict:
        return MoneyOutputSerializer(Money(line.amount, line.currency)).data


class ChangePreviewOutputSerializer(serializers.Serializer):
    timing = serializers.CharField()
    proration = serializers.CharField()
    effective_at = serializers.DateTimeField()
    invoiced_now = serializers.BooleanField(help_text="True when the lines are invoiced at once (`invoice_now`).")
    lines = LinePreviewOutputSerializer(many=True, help_text="Proration credits and charges.")
    total = serializers.SerializerMethodField(help_text="What the change costs now (negative: a credit).")

    @extend_schema_field(MoneyOutputSerializer)
    def get_total(self, preview) -> dict:
        return MoneyOutputSerializer(Money(preview.total, preview.currency)).data


class SubscriptionChangeOutputSerializer(serializers.Serializer):
    subscription = SubscriptionOutputSerializer()
    change = ChangePreviewOutputSerializer(source="preview")
    invoice = serializers.IntegerField(
        source="invoice.pk", read_only=True, allow_null=True, help_text="Id of the invoice issued at once, if any."
    )
    scheduled_change = serializers.IntegerField(
        source="scheduled_change.pk", read_only=True, allow_null=True, help_text="Id of the scheduled change, if any."
    )


class UpcomingInvoiceOutputSerializer(serializers.Serializer):
    billing_at = serializers.DateTimeField(help_text="When the billing run issues it.")
    period_start_at = serializers.DateTimeField()
    period_end_at = serializers.DateTimeField()
    lines = LinePreviewOutputSerializer(many=True)
    subtotal = serializers.SerializerMethodField()
    tax_total = serializers.SerializerMethodField(help_text="Tax added by exclusive rates.")
    total = serializers.SerializerMethodField()
    amount_due = serializers.SerializerMethodField(help_text="The total, or zero when the total is below zero.")
    credited_to_balance = serializers.SerializerMethodField(
        help_text="What the total comes to below zero: credited to the customer's balance when the invoice is issued."
    )
    reverse_charge = serializers.BooleanField(help_text="No VAT charged: the customer accounts for it.")

    @extend_schema_field(MoneyOutputSerializer)
    def get_tax_total(self, upcoming) -> dict:
        return MoneyOutputSerializer(Money(upcoming.tax_total, upcoming.currency)).data

    @extend_schema_field(MoneyOutputSerializer)
    def get_subtotal(self, upcoming) -> dict:
        return MoneyOutputSerializer(Money(upcoming.subtotal, upcoming.currency)).data

    @extend_schema_field(MoneyOutputSerializer)
    def get_total(self, upcoming) -> dict:
        return MoneyOutputSerializer(Money(upcoming.total, upcoming.currency)).data

    @extend_schema_field(MoneyOutputSerializer)
    def get_amount_due(self, upcoming) -> dict:
        return MoneyOutputSerializer(Money(upcoming.amount_due, upcoming.currency)).data

    @extend_schema_field(MoneyOutputSerializer)
    def get_credited_to_balance(self, upcoming) -> dict:
        return MoneyOutputSerializer(Money(upcoming.credited_to_balance, upcoming.currency)).data


class SubscriptionPauseInputSerializer(serializers.Serializer):
    prorate = serializers.BooleanField(
        default=True, help_text="Credit the unused time of the period already invoiced (on the invoice at resume)."
    )
    reason = serializers.CharField(required=False, default="", allow_blank=True, max_length=500)


# --- Entitlements (docs/entitlements.md) -----------------------------------------------------------

ENTITLEMENT_VALUE_SCHEMA = {
    "oneOf": [{"type": "boolean"}, {"type": "integer", "minimum": 0}, {"type": "string"}],
    "description": 'On/off: true or false. Limit: a whole number, or "unlimited". Value: text.',
}


@extend_schema_field(ENTITLEMENT_VALUE_SCHEMA)
class EntitlementValueField(serializers.Field):
    def to_representation(self, value):
        return value


class EntitlementSourceOutputSerializer(serializers.Serializer):
    subscription = serializers.IntegerField(help_text="The subscription that grants it.")
    plan = serializers.CharField(help_text="Its plan's code.")
    plan_version = serializers.IntegerField(help_text="The number of its plan version.")
    status = serializers.CharField(help_text="trialing, active or past_due.")
    value = EntitlementValueField(help_text="What this subscription grants.")


class EntitlementOutputSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="The feature's code.")
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=FeatureKind.choices)
    value = EntitlementValueField(
        help_text="Combined over the subscriptions: limits add up (any unlimited: unlimited), on/off is on when any "
        "grant is on, a value is the latest subscription's."
    )
    sources = EntitlementSourceOutputSerializer(many=True, help_text="The subscriptions it comes from, oldest first.")


class EntitlementsOutputSerializer(serializers.Serializer):
    customer = serializers.IntegerField()
    features = EntitlementOutputSerializer(
        many=True,
        help_text="What the customer's trialing, active and past-due subscriptions grant, by feature code; a feature "
        "no subscription grants is absent.",
    )
