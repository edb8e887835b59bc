"""Payments in the admin: the list of payments (filters, search, date hierarchy), a page to record a
manual payment with its allocations, the reversal of a wrong manual payment (with a reason), refunds.

Payments are made by services only: the change page is read-only, nothing is deleted."""

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import AdminSplitDateTime, AutocompleteSelect
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Customer
from apps.accounts.selectors import customer_now
from apps.core.admin import (
    CurrencyListFilter,
    ReadOnlyInline,
    application_error_to_form,
    staff_date,
    staff_money,
    status_badge,
)
from apps.core.errors import ApplicationError
from apps.core.event_details import event_details_text

from .constants import MANUAL_METHODS, PaymentEventType, PaymentMethod, PaymentStatus, RefundStatus
from .models import Payment, PaymentAllocation, PaymentEvent, Refund
from .selectors import customer_unpaid_invoices
from .services import payment_credited_to_balance, payment_record_manual, payment_reverse

STATUS_TONES = {
    PaymentStatus.PENDING: "neutral",
    PaymentStatus.REQUIRES_ACTION: "warning",
    PaymentStatus.PROCESSING: "info",
    PaymentStatus.SUCCEEDED: "success",
    PaymentStatus.FAILED: "danger",
    PaymentStatus.CANCELED: "neutral",
    PaymentStatus.REVERSED: "danger",
}
REFUND_TONES = {RefundStatus.PENDING: "neutral", RefundStatus.SUCCEEDED: "success", RefundStatus.FAILED: "danger"}
CHANGE_PERMISSION = "payments.change_payment"


# --- forms -------------------------------------------------------------------------------------------


class RecordPaymentCustomerForm(forms.Form):
    customer = forms.ModelChoiceField(
        queryset=Customer.objects.all(),
        widget=AutocompleteSelect(Payment._meta.get_field("customer"), admin.site),
        help_text=_("Who paid."),
    )


class RecordPaymentForm(forms.Form):
    """A manual payment of one customer; one optional amount per unpaid invoice of the customer."""

    amount = forms.DecimalField(max_digits=19, decimal_places=6, help_text=_("In the customer's currency."))
    method = forms.ChoiceField(choices=[(method, PaymentMethod(method).label) for method in MANUAL_METHODS])
    reference = forms.CharField(
        max_length=255,
        help_text=_(
            "Bank transfer reference, cheque or receipt number: unique among the customer's payments, so "
            "that the same money is never recorded twice."
        ),
    )
    received_at = forms.SplitDateTimeField(widget=AdminSplitDateTime, help_text=_("When the money arrived."))

    def __init__(self, *args, invoices, **kwargs):
        super().__init__(*args, **kwargs)
        self.invoices = invoices
        for invoice in invoices:
            due = invoice.amount_due
            self.fields[self.invoice_field(invoice.pk)] = forms.DecimalField(
                required=False,
                max_digits=19,
                decimal_places=6,
                label=_("%(invoice)s (due on %(day)s)") % {"invoice": invoice, "day": staff_date(invoice.due_on)},
                help_text=_("%(amount)s due") % {"amount": staff_money(due.amount, str(due.currency))},
            )

    @staticmethod
    def invoice_field(invoice_id: int) -> str:
        return f"invoice_{invoice_id}"

    def invoice_fields(self):
        return [self[self.invoice_field(invoice.pk)] for invoice in self.invoices]

    def allocations(self) -> list[tuple[int, Decimal]] | None:
        """The amounts typed per invoice, or None when none was (the service then pays the oldest due first)."""
        chosen = [
            (invoice.pk, self.cleaned_data[self.invoice_field(invoice.pk)])
            for invoice in self.invoices
            if self.cleaned_data.get(self.invoice_field(invoice.pk)) is not None
        ]
        return chosen or None


class ReverseForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), max_length=2000)


# --- inlines -----------------------------------------------------------------------------------------


class PaymentAllocationInline(ReadOnlyInline):
    model = PaymentAllocation
    fields = ["invoice_link", "amount"]
    readonly_fields = ["invoice_link"]
    verbose_name_plural = _("invoices paid")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("invoice")

    @admin.display(description=_("invoice"))
    def invoice_link(self, allocation: PaymentAllocation) -> str:
        url = reverse("admin:invoices_invoice_change", args=[allocation.invoice_id])
        return format_html('<a href="{}">{}</a>', url, allocation.invoice)


class RefundInline(ReadOnlyInline):
    model = Refund
    fields = ["amount", "status", "credit_note", "reason", "reference", "provider_refund_id", "created_at"]
    verbose_name_plural = _("refunds")


class PaymentEventInline(ReadOnlyInline):
    model = PaymentEvent
    fields = ["occurred_at", "type", "actor", "details"]
    readonly_fields = ["details"]
    verbose_name_plural = _("history")

    @admin.display(description=_("details"))
    def details(self, event: PaymentEvent) -> str:
        return event_details_text(event.data)


# --- payments ----------------------------------------------------------------------------------------


class SucceededAfterCancelFilter(admin.SimpleListFilter):
    """Payments the provider took the money of after they were canceled here: to check by hand."""

    title = _("needs checking")
    parameter_name = "anomaly"

    def lookups(self, request, model_admin):
        return [("succeeded_after_cancel", _("Succeeded after being canceled"))]

    def queryset(self, request, queryset):
        if self.value() == "succeeded_after_cancel":
            return queryset.filter(events__type=PaymentEventType.SUCCEEDED_AFTER_CANCEL).distinct()
        return queryset


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = [
        "display_name",
        "customer",
        "amount",
        "method",
        "provider",
        "status_badge",
        "reference",
        "received_at",
        "invoices",
        "amount_refunded",
    ]
    list_filter = ["status", SucceededAfterCancelFilter, "provider", "method", ("amount_currency", CurrencyListFilter)]
    search_fields = [
        "reference",
        "provider_payment_id",
        "customer__name",
        "customer__external_id",
        "allocations__invoice__number",
    ]
    list_select_related = ["customer"]
    date_hierarchy = "received_at"
    ordering = ["-created_at", "-id"]
    show_facets = admin.ShowFacets.NEVER
    actions = ["reverse_selected"]
    fieldsets = [
        (None, {"fields": ["display_name", "customer_link", "status_badge", "provider", "method", "reference"]}),
        (_("Amounts"), {"fields": ["amount", "allocated_summary", "credited_to_balance", "amount_refunded"]}),
        (_("Provider"), {"fields": ["provider_payment_id", "idempotency_key", "failure_code", "failure_reason",
                                 "provider_failure_message", "next_action_url"]}),
        (_("Dates"), {"fields": ["received_at", "reversed_at", "reversal_reason", "created_by", "created_at"]}),
    ]  # fmt: skip
    inlines = [PaymentAllocationInline, RefundInline, PaymentEventInline]
    change_form_template = "admin/payments/payment/change_form.html"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("allocations__invoice")

    def get_readonly_fields(self, request, obj=None):
        return [name for _, options in self.fieldsets for name in options["fields"]]

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_change_permission(self, request, obj=None):
        if obj is not None:
            return False  # a payment never changes by hand: the page is read-only
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_reverse_permission(self, request) -> bool:
        return request.user.has_perm(CHANGE_PERMISSION)

    # --- columns ---

    @admin.display(description=_("payment"), ordering="pk")
    def display_name(self, payment: Payment) -> str:
        return gettext("Payment #%(payment_pk)s") % {"payment_pk": payment.pk}

    @admin.display(description=_("why it failed"))
    def failure_reason(self, payment: Payment) -> str:
        return payment.failure_text or "—"

    @admin.display(description=_("provider's message (as sent, in English)"))
    def provider_failure_message(self, payment: Payment) -> str:
        return payment.failure_message or "—"

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, payment: Payment) -> str:
        return status_badge(payment.get_status_display(), STATUS_TONES.get(payment.status, "neutral"))

    @admin.display(description=_("invoices paid"))
    def invoices(self, payment: Payment) -> str:
        return ", ".join(str(allocation.invoice) for allocation in payment.allocations.all()) or "—"

    @admin.display(description=_("customer"))
    def customer_link(self, payment: Payment) -> str:
        url = reverse("admin:accounts_customer_change", args=[payment.customer_id])
        return format_html('<a href="{}">{}</a>', url, payment.customer)

    @admin.display(description=_("allocated"))
    def allocated_summary(self, payment: Payment) -> str:
        rows = [
            (reverse("admin:invoices_invoice_change", args=[a.invoice_id]), a.invoice, a.amount)
            for a in payment.allocations.all()
        ]
        return format_html_join(", ", '<a href="{}">{}</a>: {}', rows) or "—"

    @admin.display(description=_("credited to the balance"))
    def credited_to_balance(self, payment: Payment) -> str:
        return staff_money(payment_credited_to_balance(payment), payment.currency)

    # --- custom views ---

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/reverse/", view(self.reverse_view), name="payments_payment_reverse"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        payment = self.get_object(request, unquote(object_id))
        extra_context = dict(extra_context or {})
        if (
            payment is not None
            and payment.provider == "manual"
            and payment.status == PaymentStatus.SUCCEEDED
            and self.has_reverse_permission(request)
        ):
            extra_context["reverse_url"] = reverse("admin:payments_payment_reverse", args=[payment.pk])
        return super().change_view(request, object_id, form_url, extra_context)

    def add_view(self, request, form_url="", extra_context=None):
        """Record a manual payment: pick the customer, then the amount, method, reference, date and
        (optionally) how much of each unpaid invoice it pays."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        customer_id = request.POST.get("customer") or request.GET.get("customer")
        customer = Customer.objects.filter(pk=customer_id).first() if str(customer_id or "").isdigit() else None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("Record a manual payment"),
            "media": self.media,
            # What the admin's add form (admin/change_form.html, which the page extends) reads.
            "add": True,
            "change": False,
            "is_popup": False,
            "save_on_top": False,
            "has_view_permission": self.has_view_permission(request),
        }
        if customer is None:
            form = RecordPaymentCustomerForm(request.GET or None)
            context.update(
                customer_form=form,
                customer_adminform=helpers.AdminForm(form, [(None, {"fields": ["customer"]})], {}, model_admin=self),
                media=self.media + form.media,
            )
            return TemplateResponse(request, "admin/payments/payment/record.html", context)
        invoices = list(customer_unpaid_invoices(customer_id=customer.pk))
        if request.method == "POST":
            form = RecordPaymentForm(request.POST, invoices=invoices)
            if form.is_valid():
                payment = self._record(request, form, customer)
                if payment is not None:
                    messages.success(
                        request,
                        _("Recorded payment #%(payment)s of %(amount)s from %(customer)s.")
                        % {
                            "payment": payment.pk,
                            "amount": staff_money(payment.amount.amount, payment.currency),
                            "customer": customer,
                        },
                    )
                    return redirect("admin:payments_payment_change", payment.pk)
        else:
            form = RecordPaymentForm(
                invoices=invoices,
                initial={"method": PaymentMethod.BANK_TRANSFER, "received_at": customer_now(customer)},
            )
        context.update(
            customer=customer,
            form=form,
            adminform=helpers.AdminForm(form, self._record_fieldsets(form, customer), {}, model_admin=self),
            errors=helpers.AdminErrorList(form, []),
            invoices=invoices,
            media=self.media + form.media,
        )
        return TemplateResponse(request, "admin/payments/payment/record.html", context)

    @staticmethod
    def _record_fieldsets(form: RecordPaymentForm, customer: Customer) -> list[tuple[str, dict]]:
        customer_link = format_html(
            '<a href="{}">{}</a>', reverse("admin:accounts_customer_change", args=[customer.pk]), customer
        )
        if form.invoices:
            allocation = gettext(
                "Type how much of each invoice the payment pays, or leave them all empty to pay the oldest due "
                "first. Whatever is not allocated goes to the customer's credit balance and comes off the next "
                "invoices."
            )
        else:
            allocation = gettext("No unpaid invoices: the whole payment goes to the credit balance.")
        return [
            (
                gettext("Payment"),
                {
                    "fields": ["amount", "method", "reference", "received_at"],
                    "description": format_html(
                        gettext("From {customer}, in {currency}."), customer=customer_link, currency=customer.currency
                    ),
                },
            ),
            (
                gettext("Unpaid invoices"),
                {
                    "fields": [field.name for field in form.invoice_fields()],
                    "description": format_html("{}", allocation),
                },
            ),
        ]

    def _record(self, request, form: RecordPaymentForm, customer: Customer) -> Payment | None:
        allocations = form.allocations()
        try:
            return payment_record_manual(
                customer_id=customer.pk,
                amount=form.cleaned_data["amount"],
                currency=customer.currency,
                method=form.cleaned_data["method"],
                reference=form.cleaned_data["reference"],
                received_at=form.cleaned_data["received_at"],
                allocations=allocations,
                actor=request.user,
            )
        except ApplicationError as exc:
            ids = [invoice_id for invoice_id, _ in allocations or []]
            fields = {}
            for name, field_messages in exc.fields.items():
                parts = name.split(".")
                if parts[0] == "allocations" and len(parts) == 3 and int(parts[1]) < len(ids):
                    name = form.invoice_field(ids[int(parts[1])])
                fields.setdefault(name, []).extend(field_messages)
            application_error_to_form(form, ApplicationError(exc.message, fields=fields))
            return None

    def reverse_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_reverse_permission(request):
            raise PermissionDenied
        payment = self.get_object(request, unquote(object_id))
        if payment is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        form = ReverseForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            if self._reverse_one(request, payment, form.cleaned_data["reason"]):
                return redirect("admin:payments_payment_change", payment.pk)
        return self._reverse_page(request, [payment], form)

    def _reverse_page(self, request, payments, form, *, action: bool = False) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": ngettext("Reverse %(count)s payment?", "Reverse %(count)s payments?", len(payments))
            % {"count": len(payments)},
            "payments": payments,
            "form": form,
            "action": action,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/payments/payment/reverse_confirm.html", context)

    def _reverse_one(self, request, payment: Payment, reason: str) -> bool:
        try:
            payment_reverse(payment_id=payment.pk, reason=reason, actor=request.user)
        except ApplicationError as exc:
            messages.error(
                request, _("Payment #%(payment)s: %(error)s") % {"payment": payment.pk, "error": exc.message}
            )
            return False
        messages.success(
            request, _("Reversed payment #%(payment)s; its invoices are due again.") % {"payment": payment.pk}
        )
        return True

    @admin.action(description=_("Reverse selected manual payments…"), permissions=["reverse"])
    def reverse_selected(self, request, queryset):
        payments = list(queryset.select_related("customer").order_by("pk"))
        form = ReverseForm(request.POST if request.POST.get("post") == "yes" else None)
        if form.is_bound and form.is_valid():
            for payment in payments:
                self._reverse_one(request, payment, form.cleaned_data["reason"])
            return HttpResponseRedirect(request.get_full_path())
        return self._reverse_page(request, payments, form, action=True)


# --- refunds -----------------------------------------------------------------------------------------


@admin.register(Refund)
class RefundAdmin(admin.ModelAdmin):
    list_display = ["display_name", "payment_link", "customer", "amount", "status_badge", "credit_note", "created_at"]
    list_filter = ["status", "payment__provider"]
    search_fields = ["reference", "provider_refund_id", "credit_note__number", "payment__customer__name"]
    list_select_related = ["payment__customer", "credit_note"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    readonly_fields = [
        "payment", "credit_note", "amount", "status", "reason", "reference", "provider_refund_id", "failure_code",
        "failure_reason", "provider_failure_message", "succeeded_at", "failed_at", "created_by", "created_at",
    ]  # fmt: skip
    fields = readonly_fields

    def has_add_permission(self, request):
        return False  # refunds come from credit notes (or the Stripe integration)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("refund"), ordering="pk")
    def display_name(self, refund: Refund) -> str:
        return gettext("Refund #%(refund_pk)s") % {"refund_pk": refund.pk}

    @admin.display(description=_("payment"))
    def payment_link(self, refund: Refund) -> str:
        url = reverse("admin:payments_payment_change", args=[refund.payment_id])
        return format_html(
            '<a href="{}">{}</a>', url, gettext("Payment #%(payment_pk)s") % {"payment_pk": refund.payment_id}
        )

    @admin.display(description=_("why it failed"))
    def failure_reason(self, refund: Refund) -> str:
        return refund.failure_text or "—"

    @admin.display(description=_("provider's message (as sent, in English)"))
    def provider_failure_message(self, refund: Refund) -> str:
        return refund.failure_message or "—"

    @admin.display(description=_("customer"))
    def customer(self, refund: Refund) -> str:
        return str(refund.payment.customer)

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, refund: Refund) -> str:
        return status_badge(refund.get_status_display(), REFUND_TONES.get(refund.status, "neutral"))


from . import admin_dunning  # noqa: E402, F401 - dunning's admin pages (campaigns, customer settings, customers in dunning)
