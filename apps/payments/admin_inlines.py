"""Inlines other apps' admin pages use: the payments of an invoice, the payments of a customer."""

from django.contrib import admin
from django.contrib.admin.utils import display_for_value
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from apps.core.admin import ReadOnlyInline

from .models import Payment, PaymentAllocation


def payment_link(payment: Payment) -> str:
    url = reverse("admin:payments_payment_change", args=[payment.pk])
    return format_html('<a href="{}">Payment #{}</a>', url, payment.pk)


class InvoicePaymentInline(ReadOnlyInline):
    """On an invoice: the payments allocated to it (only succeeded ones count as paid)."""

    model = PaymentAllocation
    fields = ["payment_link", "status", "method", "reference", "received_at", "amount"]
    readonly_fields = ["payment_link", "status", "method", "reference", "received_at"]
    verbose_name = _("payment")
    verbose_name_plural = _("payments")
    view_permission_from_parent = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("payment").order_by("payment__created_at", "pk")

    @admin.display(description=_("payment"))
    def payment_link(self, allocation: PaymentAllocation) -> str:
        return payment_link(allocation.payment)

    @admin.display(description=_("status"))
    def status(self, allocation: PaymentAllocation) -> str:
        return allocation.payment.get_status_display()

    @admin.display(description=_("method"))
    def method(self, allocation: PaymentAllocation) -> str:
        return allocation.payment.get_method_display()

    @admin.display(description=_("reference"))
    def reference(self, allocation: PaymentAllocation) -> str:
        """The bank reference, or the card charged; a card payment's PaymentIntent id below it."""
        payment = allocation.payment
        if not payment.provider_payment_id:
            return payment.reference or "—"
        return format_html(
            '{}<br><small class="quiet">{}</small>', payment.reference or "—", payment.provider_payment_id
        )

    @admin.display(description=_("received at"))
    def received_at(self, allocation: PaymentAllocation) -> str:
        # Formatted as the admin formats dates (the current time zone); "—" while nothing arrived.
        return display_for_value(allocation.payment.received_at, "—")


class CustomerPaymentInline(ReadOnlyInline):
    """On a customer: every payment, newest first."""

    model = Payment
    fields = ["payment", "status", "method", "amount", "reference", "received_at", "invoices"]
    readonly_fields = ["payment", "invoices"]
    verbose_name_plural = _("payments")
    view_permission_from_parent = True
    ordering = ["-created_at", "-id"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("allocations__invoice")

    @admin.display(description=_("payment"))
    def payment(self, payment: Payment) -> str:
        return payment_link(payment)

    @admin.display(description=_("invoices paid"))
    def invoices(self, payment: Payment) -> str:
        return ", ".join(f"{a.invoice} ({a.amount})" for a in payment.allocations.all()) or _("— (credit balance)")
