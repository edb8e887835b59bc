from rest_framework import serializers


class EventInputSerializer(serializers.Serializer):
    """One usage event (documentation only: events are checked by the ingestion service, one by one)."""

    transaction_id = serializers.CharField(help_text="Your idempotency key: a replay is acknowledged, not counted.")
    external_customer_id = serializers.CharField(help_text="The customer's external ID.")
    metric_code = serializers.CharField(help_text="A billable metric's code.")
    timestamp = serializers.CharField(help_text="ISO 8601 with a UTC offset, or Unix seconds.")
    properties = serializers.DictField(required=False, help_text='The event\'s properties, e.g. {"region": "eu"}.')


class EventOutputSerializer(serializers.Serializer):
    transaction_id = serializers.CharField()
    duplicate = serializers.BooleanField(help_text="True when this transaction_id was already counted.")


class EventBatchInputSerializer(serializers.Serializer):
    events = EventInputSerializer(many=True, help_text="1 to 1,000 events.")


class RejectedEventSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position in the batch, from 0.")
    transaction_id = serializers.CharField()
    code = serializers.CharField(help_text="Why, as a code (unknown_customer, unknown_metric, …).")
    reason = serializers.CharField(help_text="Why, as a sentence.")


class EventBatchOutputSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="Events stored and counted.")
    duplicates = serializers.IntegerField(help_text="Events already counted before (replays), acknowledged.")
    rejected = RejectedEventSerializer(many=True)


class CustomerUsageMetricSerializer(serializers.Serializer):
    metric_code = serializers.CharField()
    metric_name = serializers.CharField()
    aggregation = serializers.CharField()
    total = serializers.CharField(help_text="Decimal string; the aggregate over all groups for count/sum.")
    groups = serializers.DictField(child=serializers.CharField(), help_text="Group value → aggregate.")


class CustomerUsageOutputSerializer(serializers.Serializer):
    customer = serializers.IntegerField()
    period_start_at = serializers.DateTimeField()
    period_end_at = serializers.DateTimeField()
    as_of = serializers.DateTimeField()
    metrics = CustomerUsageMetricSerializer(many=True)


class EventVoidInputSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, default="", allow_blank=True, max_length=1000)


class EventReplaceInputSerializer(serializers.Serializer):
    """The event's new timestamp and properties (documentation only: checked by the correction service with
    the rules of ingestion). Its customer and metric stay."""

    timestamp = serializers.CharField(help_text="ISO 8601 with a UTC offset, or Unix seconds.")
    properties = serializers.DictField(required=False, help_text="The event's new properties.")
    reason = serializers.CharField(required=False, default="", allow_blank=True, max_length=1000)


class EventChangeOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField(help_text="void or replace.")
    transaction_id = serializers.CharField()
    before = serializers.DictField(allow_null=True, help_text="The event as it was.")
    after = serializers.DictField(allow_null=True, help_text="The event as it is now (replace).")
    billed_period_end_at = serializers.DateTimeField(
        allow_null=True,
        help_text="Set when the change concerns a period already invoiced: the difference goes on the next invoice.",
    )
    recorded_at = serializers.DateTimeField()
