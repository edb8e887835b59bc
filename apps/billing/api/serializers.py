from rest_framework import serializers

from apps.invoices.models import BillingRun


class BillingRunOutputSerializer(serializers.ModelSerializer):
    triggered_by = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True, help_text="Staff user id.")
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    errors = serializers.ListField(child=serializers.DictField(), read_only=True)
    progress_percent = serializers.IntegerField(read_only=True, help_text="Due subscriptions processed, in percent.")

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
            "ended_count",
            "processed_count",
            "chunk_count",
            "chunks_done",
            "progress_percent",
            "statement_count",
            "errors",
        ]
        read_only_fields = fields


# --- Credit notes ------------------------------------------------------------------------------------
