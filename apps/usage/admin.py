"""Usage for staff: the events as received, read-only (events are append-only; rollups are derived)."""

from django.contrib import admin

from .models import UsageEvent


@admin.register(UsageEvent)
class UsageEventAdmin(admin.ModelAdmin):
    list_display = ["transaction_id", "customer", "metric", "occurred_at", "value", "group_key", "received_at"]
    list_select_related = ["customer", "metric"]
    list_filter = [("metric", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["transaction_id", "customer__external_id", "customer__name"]
    date_hierarchy = "occurred_at"
    ordering = ["-occurred_at", "-id"]
    show_full_result_count = False  # counting a large events table on every page is slow
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
