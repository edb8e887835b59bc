"""The audit trail in the admin: one page for every change and domain event (filtered by object, model,
actor and date; CSV export), reached from the index and from each audited object's "History" button.
Nothing here can be added, changed or deleted."""

import csv
import json

from auditlog.models import LogEntry
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from .forms import AuditTrailFilterForm
from .selectors import AuditFilter, AuditRecord, audit_trail

PAGE_SIZE = 100
PAGE_LIMIT = 5000  # rows read for the page view from each source; the CSV export has everything

CSV_COLUMNS = ["occurred_at", "kind", "model", "object_id", "object", "action", "actor", "via", "reason", "changes"]

if admin.site.is_registered(LogEntry):
    admin.site.unregister(LogEntry)


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_row(record: AuditRecord) -> list[str]:
    return [
        record.occurred_at.isoformat(), record.kind, record.model, record.object_id, record.object_repr,
        record.action, record.actor, record.via, record.reason,
        json.dumps(record.changes, sort_keys=True, default=str),
    ]  # fmt: skip


@admin.register(LogEntry)
class AuditTrailAdmin(admin.ModelAdmin):
    """Viewing needs `auditlog.view_logentry` (finance admins and auditors have it)."""

    list_display = ["timestamp", "content_type", "object_repr", "action", "actor"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_actions(self, request):
        return {}

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = AuditTrailFilterForm(request.GET or None)
        valid = form.is_valid() if request.GET else True
        if request.GET and not valid:
            records: list[AuditRecord] = []
        else:
            filters = form.to_filter() if request.GET else AuditFilter()
            if request.GET.get("format") == "csv":
                return self._csv(audit_trail(filters))
            records = audit_trail(filters, limit=PAGE_LIMIT)
        page = Paginator(records, PAGE_SIZE).get_page(request.GET.get("page"))
        query = {key: value for key, value in request.GET.items() if key not in ("page", "format")}
        context = {
            **self.admin_site.each_context(request),
            "title": _("Audit trail"),
            "opts": self.model._meta,
            "form": form,
            "page": page,
            "truncated": len(records) >= PAGE_LIMIT,
            "query": urlencode(query),
            "csv_query": urlencode({**query, "format": "csv"}),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/audit/audit_trail.html", context)

    def _csv(self, records: list[AuditRecord]) -> HttpResponse:
        writer = csv.writer(_Echo())
        rows = (writer.writerow(row) for row in [CSV_COLUMNS, *(_csv_row(record) for record in records)])
        response = StreamingHttpResponse(rows, content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="audit-trail.csv"'
        return response
