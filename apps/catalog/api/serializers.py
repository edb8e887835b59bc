from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.accounts.models import Customer
from apps.catalog.constants import (
    DEFAULT_LATENESS_WINDOW_DAYS,
    MAX_LATENESS_WINDOW_DAYS,
    BillingInterval,
    BillingTiming,
    ChargeKind,
    CouponDuration,
    DiscountType,
    FeatureKind,
    MetricAggregation,
    PackageRounding,
    PriceModelChoice,
    PriceTimeWindow,
    ThresholdScope,
    TrialUsage,
    WeightedTimeUnit,
)
from apps.catalog.models import (
    BillableMetric,
    Charge,
    Coupon,
    Feature,
    FeatureGrant,
    Plan,
    PlanVersion,
    Price,
    PriceTier,
    Product,
)
from apps.catalog.services import ChargeInput, GrantInput, PriceInput, TierInput
from apps.core.api.serializers import (
    MAX_NESTED_ITEMS,
    DecimalField,
    DecimalStringField,
    MoneyInputSerializer,
    MoneyOutputSerializer,
    format_amount,
    validate_currency_code,
)
from apps.subscriptions.models import Discount, Subscription


def _decimal(**kwargs) -> DecimalField:
    kwargs.setdefault("min_value", Decimal(0))
    return DecimalField(max_digits=28, decimal_places=12, **kwargs)


class ProductOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = ["id", "code", "name", "description", "is_archived", "created_at", "updated_at"]
        read_only_fields = fields


class ProductCreateInputSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=64, help_text="Lower-case letters, digits, '.', '_' and '-'.")
    name = serializers.CharField(max_length=255)
    description = serializers.CharField(required=False, default="", allow_blank=True)


class BillableMetricOutputSerializer(serializers.ModelSerializer):
    percentile = DecimalStringField(allow_null=True, help_text='Percentile metrics: e.g. "95"; else null.')
    time_unit = serializers.ChoiceField(
        choices=WeightedTimeUnit.choices, allow_blank=True,
        help_text='Weighted sums: the time each level is weighted by (hour: GB-hours; month: GB-months); else "".',
    )  # fmt: skip
    filters = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text='Only events with one of these values count, e.g. {"region": ["eu"]}.',
    )

    class Meta:
        model = BillableMetric
        fields = [
            "id", "code", "name", "description", "aggregation", "field_name", "filters", "group_by",
            "lateness_window_days", "time_unit", "percentile", "interval_minutes", "is_archived", "created_at",
            "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class BillableMetricCreateInputSerializer(serializers.Serializer):
    code = serializers.CharField(
        max_length=64, help_text="What usage events name; lower-case letters, digits, '.', '_' and '-'."
    )
    name = serializers.CharField(max_length=255)
    description = serializers.CharField(required=False, default="", allow_blank=True)
    aggregation = serializers.ChoiceField(choices=MetricAggregation.choices)
    field_name = serializers.CharField(
        max_length=64, required=False, default="", allow_blank=True,
        help_text="The event property aggregated; required for every aggregation but count.",
    )  # fmt: skip
    filters = serializers.JSONField(
        required=False, default=dict, help_text='Property → allowed values, e.g. {"region": ["eu", "uk"]}.'
    )
    group_by = serializers.CharField(
        max_length=129, required=False, default="", allow_blank=True,
        help_text="An event property whose values are aggregated and priced separately, or two separated by a comma "
        '(e.g. "region,tier"): each pair of values is a group.',
    )  # fmt: skip
    lateness_window_days = serializers.IntegerField(
        min_value=0, max_value=MAX_LATENESS_WINDOW_DAYS, default=DEFAULT_LATENESS_WINDOW_DAYS,
        help_text="Events for an invoiced period are accepted this many days after the period's end and billed on "
        "the next invoice as late usage; 0 refuses them.",
    )  # fmt: skip
    time_unit = serializers.ChoiceField(
        choices=WeightedTimeUnit.choices, required=False, default="", allow_blank=True,
        help_text="weighted_sum only (required): each level of the gauge × the time it held, in hours, days or "
        "calendar months.",
    )  # fmt: skip
    percentile = DecimalField(
        max_digits=7, decimal_places=2, required=False, default=None, allow_null=True,
        help_text='percentile only (required): the percentile billed, above 0 and at most 100, e.g. "95".',
    )  # fmt: skip
    interval_minutes = serializers.IntegerField(
        required=False, default=None, allow_null=True, min_value=1,
        help_text="percentile only (required): the sample interval in minutes, a divisor of 60 (e.g. 5).",
    )  # fmt: skip


# --- output ---------------------------------------------------------------------------------------


class PriceTierOutputSerializer(serializers.ModelSerializer):
    up_to = DecimalStringField(allow_null=True, help_text="Last unit of the tier; null on the open-ended last tier.")
    unit_amount = DecimalStringField()
    flat_amount = DecimalStringField()
    percentage = DecimalStringField(help_text='Graduated percentage tiers: the rate, e.g. "2" for 2 %; else "0".')

    class Meta:
        model = PriceTier
        fields = ["up_to", "unit_amount", "flat_amount", "percentage"]


class PriceOutputSerializer(serializers.ModelSerializer):
    amount = DecimalStringField(help_text="Flat fee, unit price or package price (may have more decimals).")
    dimension_values = serializers.DictField(
        child=serializers.CharField(),
        help_text='The group of usage this price is for, e.g. {"region": "eu", "tier": "gold"}; {} for the '
        "charge's default price.",
    )
    time_window = serializers.ChoiceField(
        choices=PriceTimeWindow.choices,
        allow_blank=True,
        read_only=True,
        help_text='"peak": the price of the charge\'s peak hours; empty: the default price (off-peak hours).',
    )
    included_units = DecimalStringField()
    percentage = DecimalStringField()
    fixed_fee = DecimalStringField()
    min_per_transaction = DecimalStringField(allow_null=True)
    max_per_transaction = DecimalStringField(allow_null=True)
    minimum_amount = DecimalStringField(allow_null=True)
    tiers = PriceTierOutputSerializer(many=True, read_only=True)
    price_model = serializers.CharField(source="charge.price_model", read_only=True)
    charge = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = Price
        fields = [
            "id", "charge", "price_model", "currency", "dimension_values", "time_window", "amount", "package_size",
            "package_rounding",
            "included_units", "percentage", "fixed_fee", "min_per_transaction", "max_per_transaction", "minimum_amount",
            "tiers",
        ]  # fmt: skip
        read_only_fields = fields

    def to_representation(self, instance: Price) -> dict:
        # Amounts in the price's currency show its decimals ("49.00", "500" in JPY), more when they
        # have them ("0.00012").
        data = super().to_representation(instance)
        for name in ("amount", "fixed_fee", "min_per_transaction", "max_per_transaction", "minimum_amount"):
            value = getattr(instance, name)
            if value is not None:
                data[name] = format_amount(value, instance.currency)
        for tier, row in zip(instance.tiers.all(), data["tiers"], strict=True):
            row["unit_amount"] = format_amount(tier.unit_amount, instance.currency)
            row["flat_amount"] = format_amount(tier.flat_amount, instance.currency)
        return data


class ChargeOutputSerializer(serializers.ModelSerializer):
    prices = PriceOutputSerializer(many=True, read_only=True)
    pooled_allowance = DecimalStringField(
        allow_null=True,
        help_text="Usage charges: units each subscription adds to the pool of the customer's subscriptions on the "
        "plan; null when the charge has no pool.",
    )
    pool_code = serializers.CharField(
        help_text="Pooled charges: the pool shared across plans that the charge adds to (the customer's "
        "subscriptions whose charges on the metric name it share one pool); empty: the pool of the plan's "
        "subscriptions.",
    )

    class Meta:
        model = Charge
        fields = [
            "id", "position", "kind", "name", "price_model", "metric_code", "billing_timing", "pooled_allowance",
            "pool_code", "peak_start_hour", "peak_end_hour", "prices",
        ]  # fmt: skip
        read_only_fields = fields


GRANT_VALUE_SCHEMA = {
    "oneOf": [{"type": "boolean"}, {"type": "integer", "minimum": 0}, {"type": "string"}],
    "description": 'On/off: true or false. Limit: a whole number, or "unlimited". Value: text.',
}


@extend_schema_field(GRANT_VALUE_SCHEMA)
class GrantValueField(serializers.Field):
    """A grant's value as JSON gives it: checked against the feature's kind by the service."""

    def to_internal_value(self, data):
        return data

    def to_representation(self, value):
        return value


class FeatureOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Feature
        fields = ["id", "code", "name", "description", "kind", "created_at", "updated_at"]
        read_only_fields = fields


class FeatureCreateInputSerializer(serializers.Serializer):
    code = serializers.CharField(
        max_length=64, help_text="What the seller's application asks for; lower-case letters, digits, '.', '_', '-'."
    )
    name = serializers.CharField(max_length=255)
    kind = serializers.ChoiceField(choices=FeatureKind.choices)
    description = serializers.CharField(required=False, default="", allow_blank=True)


class FeatureUpdateInputSerializer(serializers.Serializer):
    """Partial update: only the fields sent change. The kind changes only while no version grants it."""

    name = serializers.CharField(max_length=255, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    kind = serializers.ChoiceField(choices=FeatureKind.choices, required=False)


class FeatureGrantOutputSerializer(serializers.ModelSerializer):
    feature = serializers.CharField(source="feature.code", help_text="The feature's code.")
    name = serializers.CharField(source="feature.name")
    kind = serializers.ChoiceField(source="feature.kind", choices=FeatureKind.choices)
    value = GrantValueField(source="typed_value")

    class Meta:
        model = FeatureGrant
        fields = ["feature", "name", "kind", "value"]


class FeatureGrantInputSerializer(serializers.Serializer):
    feature = serializers.CharField(max_length=64, help_text="The feature's code.")
    value = GrantValueField()

    def to_internal_value(self, data):
        return GrantInput(**super().to_internal_value(data))


class PlanVersionFeaturesInputSerializer(serializers.Serializer):
    features = FeatureGrantInputSerializer(
        many=True, max_length=MAX_NESTED_ITEMS, help_text="Everything the version grants (replaces what it granted)."
    )


class ProgressiveBillingOutputSerializer(serializers.Serializer):
    currency = serializers.CharField(help_text="ISO 4217: thresholds are amounts in this currency.")
    thresholds = serializers.ListField(
        child=serializers.CharField(), source="amounts",
        help_text="Fixed thresholds: usage amounts to date (before tax) that trigger an interim invoice.",
    )  # fmt: skip
    every = serializers.DecimalField(
        max_digits=19, decimal_places=6, allow_null=True, coerce_to_string=True, normalize_output=True,
        help_text="Recurring threshold: after the highest fixed one (or from zero), every this much more.",
    )  # fmt: skip
    scope = serializers.ChoiceField(
        choices=ThresholdScope.choices,
        help_text='What the thresholds measure: "period" (the usage of the current period; each threshold fires '
        'once per period) or "lifetime" (the usage since the subscription started; each fires once in its life).',
    )


class ProgressiveBillingInputSerializer(serializers.Serializer):
    """Progressive billing thresholds. Amounts are decimal strings (numbers are accepted); neither
    `thresholds` nor `every`: none. Checked by the service (field errors on `thresholds`, `every`)."""

    thresholds = serializers.ListField(
        child=serializers.CharField(max_length=40), required=False, default=list, allow_empty=True, max_length=100,
        help_text='Fixed thresholds, e.g. ["500.00", "1200.00"].',
    )  # fmt: skip
    every = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, default=None, max_length=40,
        help_text='A recurring threshold, e.g. "500.00".',
    )  # fmt: skip
    scope = serializers.ChoiceField(
        choices=ThresholdScope.choices, required=False, default=ThresholdScope.PERIOD,
        help_text='"period" (default): thresholds measure the usage of the current period, each firing once per '
        'period; "lifetime": the usage since the subscription started, each firing once in its life.',
    )  # fmt: skip


class PlanVersionProgressiveBillingInputSerializer(ProgressiveBillingInputSerializer):
    currency = serializers.CharField(max_length=3, help_text="One of the version's currencies.")


class PlanVersionOutputSerializer(serializers.ModelSerializer):
    plan = serializers.PrimaryKeyRelatedField(read_only=True)
    charges = ChargeOutputSerializer(many=True, read_only=True)
    features = FeatureGrantOutputSerializer(
        source="feature_grants", many=True, read_only=True, help_text="What the version grants its subscribers."
    )
    currencies = serializers.SerializerMethodField(help_text="Currencies every charge is priced in.")
    minimum_commitments = serializers.SerializerMethodField(
        help_text="The least a subscriber's period comes to, per currency (before tax and discounts); a true-up "
        "line on the invoice closing the period makes up the difference."
    )
    progressive_billing = ProgressiveBillingOutputSerializer(
        many=True, read_only=True,
        help_text="Progressive billing thresholds per currency: the period's usage is invoiced as soon as its amount "
        "to date reaches one; the invoice closing the period deducts those interim invoices.",
    )  # fmt: skip

    class Meta:
        model = PlanVersion
        fields = [
            "id", "plan", "number", "notes", "currencies", "minimum_commitments", "progressive_billing", "charges",
            "features", "created_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_currencies(self, version: PlanVersion) -> list[str]:
        return sorted(version.currencies)

    @extend_schema_field(MoneyOutputSerializer(many=True))
    def get_minimum_commitments(self, version: PlanVersion) -> list[dict]:
        return [MoneyOutputSerializer(row.amount_money).data for row in version.minimum_commitments.all()]


class PlanOutputSerializer(serializers.ModelSerializer):
    product = serializers.PrimaryKeyRelatedField(read_only=True)
    current_version = PlanVersionOutputSerializer(
        read_only=True, allow_null=True, help_text="The version new subscribers get (the latest)."
    )

    class Meta:
        model = Plan
        fields = [
            "id", "product", "code", "name", "description", "interval", "interval_count", "trial_days",
            "trial_usage", "is_archived", "current_version", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


# --- input ----------------------------------------------------------------------------------------


class PriceTierInputSerializer(serializers.Serializer):
    up_to = _decimal(allow_null=True, required=False, default=None, help_text="null on the last tier.")
    unit_amount = _decimal(required=False, default=Decimal(0), help_text="Graduated and volume tiers.")
    flat_amount = _decimal(required=False, default=Decimal(0))
    percentage = DecimalField(
        max_digits=7, decimal_places=4, min_value=Decimal(0), max_value=Decimal(100), default=Decimal(0),
        help_text='Graduated percentage tiers: the share of the amount in the tier, e.g. "2" for 2 %.',
    )  # fmt: skip


class PriceInputSerializer(serializers.Serializer):
    currency = serializers.CharField(max_length=3, help_text="ISO 4217 code the seller bills in.")
    dimension_values = serializers.DictField(
        child=serializers.CharField(max_length=255),
        required=False,
        default=dict,
        help_text="Usage charges on a metric grouped by one or two properties: a price for one group, with a value "
        'for each property, e.g. {"region": "eu", "tier": "gold"}; leave it out for the default price (every other '
        "group).",
    )
    time_window = serializers.ChoiceField(
        choices=PriceTimeWindow.choices,
        required=False,
        default=PriceTimeWindow.ALL_HOURS,
        allow_blank=True,
        help_text='Usage charges with peak hours: "peak" for the price of the peak hours; leave it out for the '
        "default price (every other hour).",
    )
    amount = _decimal(required=False, default=Decimal(0))
    tiers = PriceTierInputSerializer(many=True, required=False, default=list, max_length=MAX_NESTED_ITEMS)
    package_size = serializers.IntegerField(min_value=1, required=False, default=1)
    package_rounding = serializers.ChoiceField(
        choices=PackageRounding.choices,
        default=PackageRounding.UP,
        help_text="Package prices: a started package counts in full (up) or is free (down).",
    )
    included_units = DecimalField(max_digits=19, decimal_places=6, min_value=Decimal(0), default=Decimal(0))
    percentage = DecimalField(
        max_digits=7, decimal_places=4, min_value=Decimal(0), max_value=Decimal(100), default=Decimal(0)
    )
    fixed_fee = _decimal(required=False, default=Decimal(0))
    min_per_transaction = _decimal(required=False, allow_null=True, default=None)
    max_per_transaction = _decimal(required=False, allow_null=True, default=None)
    minimum_amount = _decimal(required=False, allow_null=True, default=None)

    def validate_currency(self, value: str) -> str:
        return validate_currency_code(value)


class ChargeInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255)
    kind = serializers.ChoiceField(choices=ChargeKind.choices, default=ChargeKind.RECURRING)
    price_model = serializers.ChoiceField(choices=PriceModelChoice.choices, default=PriceModelChoice.PER_UNIT)
    metric_code = serializers.CharField(max_length=64, required=False, default="", allow_blank=True)
    billing_timing = serializers.ChoiceField(
        choices=BillingTiming.choices,
        default=BillingTiming.IN_ADVANCE,
        help_text="Recurring charges: billed when the period begins (in_advance) or ends (in_arrears). Usage "
        "charges are always billed in arrears.",
    )
    pooled_allowance = DecimalField(
        max_digits=19,
        decimal_places=6,
        min_value=Decimal("0.000001"),
        required=False,
        allow_null=True,
        default=None,
        help_text="Usage charges on a count or sum metric: the units each subscription adds to a pool shared by the "
        'customer\'s subscriptions on this plan, e.g. "1" (GB per SIM); usage beyond the pool is priced by the '
        "charge. Events name their subscription in the property subscription_id.",
    )
    pool_code = serializers.CharField(
        max_length=64,
        required=False,
        default="",
        allow_blank=True,
        help_text='Pooled charges: a pool shared across plans, e.g. "iot-data". The customer\'s subscriptions whose '
        "charges on this metric name the same pool (and bill in the same currency) share one pool, each adding "
        "its own plan's pooled_allowance; the plans of a pool bill the same metric on the same interval. Empty: "
        "the pool of the customer's subscriptions on this plan.",
    )
    peak_start_hour = serializers.IntegerField(
        min_value=0,
        max_value=23,
        required=False,
        allow_null=True,
        default=None,
        help_text="Usage charges: the hour peak hours start (0–23) in the customer's time zone; usage in peak "
        "hours is priced by the charge's peak price, on a line of its own.",
    )
    peak_end_hour = serializers.IntegerField(
        min_value=0,
        max_value=23,
        required=False,
        allow_null=True,
        default=None,
        help_text="The hour peak hours end (0–23, excluded); before the start hour, they run past midnight.",
    )
    prices = PriceInputSerializer(many=True, allow_empty=False, max_length=MAX_NESTED_ITEMS)


def charge_inputs(data: list[dict]) -> list[ChargeInput]:
    """Validated charge data → the service's input objects."""
    return [
        ChargeInput(
            name=charge["name"],
            kind=charge["kind"],
            price_model=charge["price_model"],
            metric_code=charge["metric_code"],
            billing_timing=charge["billing_timing"],
            pooled_allowance=charge["pooled_allowance"],
            pool_code=charge["pool_code"],
            peak_start_hour=charge["peak_start_hour"],
            peak_end_hour=charge["peak_end_hour"],
            prices=[
                PriceInput(
                    **{key: value for key, value in price.items() if key != "tiers"},
                    tiers=[TierInput(**tier) for tier in price["tiers"]],
                )
                for price in charge["prices"]
            ],
        )
        for charge in data
    ]


class PlanCreateInputSerializer(serializers.Serializer):
    product = serializers.PrimaryKeyRelatedField(queryset=Product.objects.all(), help_text="Product id.")
    code = serializers.CharField(max_length=64, help_text="Lower-case letters, digits, '.', '_' and '-'.")
    name = serializers.CharField(max_length=255)
    description = serializers.CharField(required=False, default="", allow_blank=True)
    interval = serializers.ChoiceField(choices=BillingInterval.choices, default=BillingInterval.MONTH)
    interval_count = serializers.IntegerField(min_value=1, max_value=32767, default=1)
    trial_days = serializers.IntegerField(min_value=0, max_value=730, default=0)
    trial_usage = serializers.ChoiceField(
        choices=TrialUsage.choices, default=TrialUsage.FREE,
        help_text="Usage during a trial: free (shown at zero on the first invoice after it) or billed_after_trial.",
    )  # fmt: skip
    prices = MoneyInputSerializer(
        many=True,
        required=False,
        default=list,
        max_length=MAX_NESTED_ITEMS,
        help_text='The simple case, one fee per period per unit, one per currency: [{"amount": "49.00", …}].',
    )
    charges = ChargeInputSerializer(
        many=True,
        required=False,
        default=list,
        max_length=MAX_NESTED_ITEMS,
        help_text="Any price models: the charges of the first version.",
    )
    minimum_commitments = MoneyInputSerializer(
        many=True,
        required=False,
        default=list,
        max_length=MAX_NESTED_ITEMS,
        help_text="At most one per currency the charges are priced in: the least a subscriber's period comes to "
        "(fees and usage, before tax and discounts).",
    )

    def validate(self, attrs: dict) -> dict:
        attrs["charges"] = charge_inputs(attrs["charges"])
        return attrs


class PlanVersionCreateInputSerializer(serializers.Serializer):
    plan = serializers.PrimaryKeyRelatedField(queryset=Plan.objects.all(), help_text="Plan id.")
    notes = serializers.CharField(required=False, default="", allow_blank=True)
    charges = ChargeInputSerializer(many=True, allow_empty=False, max_length=MAX_NESTED_ITEMS)
    minimum_commitments = MoneyInputSerializer(
        many=True,
        required=False,
        default=list,
        max_length=MAX_NESTED_ITEMS,
        help_text="At most one per currency the charges are priced in: the least a subscriber's period comes to "
        "(fees and usage, before tax and discounts).",
    )

    def validate(self, attrs: dict) -> dict:
        attrs["charges"] = charge_inputs(attrs["charges"])
        return attrs


class PlanVersionUpdateInputSerializer(serializers.Serializer):
    notes = serializers.CharField(required=False, allow_blank=True)
    charges = ChargeInputSerializer(many=True, allow_empty=False, max_length=MAX_NESTED_ITEMS)
    minimum_commitments = MoneyInputSerializer(
        many=True,
        required=False,
        max_length=MAX_NESTED_ITEMS,
        help_text="Replaces the version's minimum commitments; leave it out to keep them.",
    )

    def validate(self, attrs: dict) -> dict:
        attrs["charges"] = charge_inputs(attrs["charges"])
        return attrs


class PriceQuoteInputSerializer(serializers.Serializer):
    quantity = DecimalField(
        max_digits=28, decimal_places=12, min_value=Decimal(0), required=False, default=Decimal(0),
        help_text='Units to price, as a decimal string (e.g. "1500"); for graduated percentage prices, the amount '
        '(e.g. the payment volume "5050.00"). For percentage prices, ignored: the number of transactions is used.',
    )  # fmt: skip
    transactions = serializers.ListField(
        child=DecimalField(max_digits=28, decimal_places=12, min_value=Decimal(0)),
        required=False,
        default=list,
        max_length=100_000,
        help_text="Percentage prices: the amount of each transaction.",
    )


class QuoteLineOutputSerializer(serializers.Serializer):
    description = serializers.CharField()
    quantity = DecimalStringField()
    unit_amount = DecimalStringField()
    flat_amount = DecimalStringField()
    amount = DecimalStringField(help_text="Exact, before rounding.")


class PriceQuoteOutputSerializer(serializers.Serializer):
    currency = serializers.CharField()
    quantity = DecimalStringField()
    billable_quantity = DecimalStringField(help_text="After included (free) units.")
    exact_amount = DecimalStringField(help_text="The exact sum of the lines, before rounding.")
    amount = serializers.SerializerMethodField(help_text="Rounded once to the currency's minor unit.")
    minimum_true_up = serializers.SerializerMethodField(help_text="What a minimum charge per period adds.")
    total = serializers.SerializerMethodField(help_text="amount + minimum_true_up.")
    lines = QuoteLineOutputSerializer(many=True, help_text="How the amount is computed, step by step.")

    def get_amount(self, quote) -> str:
        return str(quote.amount)

    def get_minimum_true_up(self, quote) -> str:
        return str(quote.minimum_true_up)

    def get_total(self, quote) -> str:
        return str(quote.total)


# --- coupons and discounts ------------------------------------------------------------------------


class CouponOutputSerializer(serializers.ModelSerializer):
    percent_off = DecimalStringField(allow_null=True, help_text='Percentage coupons: e.g. "25"; else null.')
    amounts = serializers.SerializerMethodField(help_text="Fixed-amount coupons: the amount off per currency.")
    product_ids = serializers.PrimaryKeyRelatedField(
        source="products", many=True, read_only=True, help_text="The products it discounts; empty: every product."
    )
    redemption_count = serializers.IntegerField(read_only=True, help_text="Times redeemed so far.")

    class Meta:
        model = Coupon
        fields = [
            "id", "code", "name", "discount_type", "percent_off", "amounts", "duration", "duration_in_periods",
            "max_redemptions", "redemption_count", "redeem_by", "product_ids", "is_archived", "created_at",
            "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(MoneyOutputSerializer(many=True))
    def get_amounts(self, coupon: Coupon) -> list[dict]:
        return [MoneyOutputSerializer(amount.amount_off_money).data for amount in coupon.amounts.all()]


class CouponCreateInputSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=64, help_text="Lower-case letters, digits, '.', '_' and '-'.")
    name = serializers.CharField(max_length=255, help_text="Shown on the invoice line.")
    discount_type = serializers.ChoiceField(choices=DiscountType.choices)
    percent_off = DecimalField(
        max_digits=7,
        decimal_places=4,
        required=False,
        allow_null=True,
        default=None,
        help_text='Percentage coupons: more than 0, at most 100 (e.g. "25").',
    )
    amounts = MoneyInputSerializer(
        many=True, required=False, default=list, help_text="Fixed-amount coupons: the amount off, one per currency."
    )
    duration = serializers.ChoiceField(choices=CouponDuration.choices, default=CouponDuration.ONCE)
    duration_in_periods = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="Repeating coupons: invoices discounted (≥ 1)."
    )
    max_redemptions = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="Total redemptions allowed; null for no limit."
    )
    redeem_by = serializers.DateTimeField(
        required=False, allow_null=True, default=None, help_text="Cannot be redeemed from this moment on."
    )
    product_ids = serializers.ListField(
        child=serializers.IntegerField(),
        required=False,
        default=list,
        max_length=MAX_NESTED_ITEMS,
        help_text="Empty: every product.",
    )


class DiscountOutputSerializer(serializers.ModelSerializer):
    coupon = serializers.PrimaryKeyRelatedField(read_only=True)
    customer = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    subscription = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    is_active = serializers.BooleanField(read_only=True, help_text="Still discounts the next invoices.")

    class Meta:
        model = Discount
        fields = [
            "id", "coupon", "customer", "subscription", "starts_at", "periods_applied", "ended_at", "is_active",
            "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class DiscountCreateInputSerializer(serializers.Serializer):
    coupon = serializers.PrimaryKeyRelatedField(queryset=Coupon.objects.all(), help_text="Coupon id.")
    customer = serializers.PrimaryKeyRelatedField(
        queryset=Customer.objects.all(),
        required=False,
        allow_null=True,
        default=None,
        help_text="Customer id: the discount applies to all their subscriptions. Give this or `subscription`.",
    )
    subscription = serializers.PrimaryKeyRelatedField(
        queryset=Subscription.objects.select_related("plan__product"),
        required=False,
        allow_null=True,
        default=None,
        help_text="Subscription id: the discount applies to this subscription only.",
    )
