"""Inlines other apps' admin pages use to list a customer's or a subscription's invoices."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from apps.core.admin import ReadOnlyInline

from .models import Invoice, InvoicedPeriod


class InvoiceSummaryInline(ReadOnlyInline):
    model = Invoice
    fields = ["invoice", "status", "period_start_at", "period_end_at", "total", "issued_at", "due_on"]
    readonly_fields = ["invoice"]
    verbose_name_plural = _("invoices")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("customer")

    @admin.display(description=_("invoice"))
    def invoice(self, invoice: Invoice) -> str:
        url = reverse("admin:invoices_invoice_change", args=[invoice.pk])
        return format_html('<a href="{}">{}</a>', url, invoice)


class InvoicedPeriodInline(ReadOnlyInline):
    """A subscription's billed periods and the invoice of each (its own, or one grouping the customer's
    subscriptions renewing that day)."""

    model = InvoicedPeriod
    fields = ["invoice_link", "period_start_at", "period_end_at"]
    readonly_fields = ["invoice_link"]
    verbose_name_plural = _("billed periods")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("invoice")

    @admin.display(description=_("invoice"))
    def invoice_link(self, period: InvoicedPeriod) -> str:
        if period.invoice_id is None:
            return _("none (nothing to bill)")
        url = reverse("admin:invoices_invoice_change", args=[period.invoice_id])
        return format_html('<a href="{}">{}</a>', url, period.invoice)
