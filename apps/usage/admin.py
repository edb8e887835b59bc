"""Usage for staff: the events as received, read-only (changed only by the void and replace services, which
rebuild the rollups; rollups are derived), and the audit trail of those changes and of late events."""

from django.contrib import admin

from apps.core.admin import LargeListAdminMixin

from .models import UsageEvent, UsageEventChange


@admin.register(UsageEvent)
class UsageEventAdmin(LargeListAdminMixin, admin.ModelAdmin):
    list_display = ["transaction_id", "customer", "metric", "occurred_at", "value", "group_key", "received_at"]
    list_select_related = ["customer", "metric"]
    # No date hierarchy (a DISTINCT over every event); the date filter and the count stop early.
    list_filter = [("metric", admin.RelatedOnlyFieldListFilter), ("occurred_at", admin.DateFieldListFilter)]
    search_fields = ["transaction_id", "customer__external_id", "customer__name"]
    # Newest received first, through the primary key: an index on occurred_at would cost every ingested
    # event a write; the filters narrow by time of use.
    ordering = ["-id"]
    readonly_fields = [
        "transaction_id", "customer", "metric", "occurred_at", "properties", "value", "distinct_value", "group_key",
        "received_at",
    ]  # fmt: skip

    def has_add_permission(self, request):
        return False  # events come from ingestion only

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # append-only: rollups were built from them


@admin.register(UsageEventChange)
class UsageEventChangeAdmin(admin.ModelAdmin):
    """The audit trail of usage changed after the fact: late events for invoiced periods, voids and
    replacements, and whether an invoice has billed the difference yet (read-only)."""

    list_display = [
        "recorded_at", "kind", "transaction_id", "customer", "metric", "occurred_at", "billed_period_end_at",
        "settled_at", "actor",
    ]  # fmt: skip
    list_select_related = ["customer", "metric"]
    list_filter = ["kind", ("settled_at", admin.EmptyFieldListFilter), ("metric", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["transaction_id", "customer__external_id", "customer__name"]
    date_hierarchy = "recorded_at"
    readonly_fields = [
        "kind", "transaction_id", "customer", "metric", "occurred_at", "previous_occurred_at", "before", "after",
        "billed_period_end_at", "recorded_at", "actor", "reason", "settled_at",
    ]  # fmt: skip

    def has_add_permission(self, request):
        return False  # written by ingestion and the correction services

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
