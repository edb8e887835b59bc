"""Finance staff's view of invoices and billing runs.

Invoices are made by billing and change only through the lifecycle services: the admin never adds or
deletes one, edits only a draft's memo and due date (through `invoice_update_draft`), and offers each
state change as a list action and as a button on the invoice page, both calling the service one
invoice at a time and reporting every success and failure.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from apps.billing.services import bill_due_subscriptions
from apps.core.admin import (
    CurrencyListFilter,
    LargeListAdminMixin,
    ReadOnlyInline,
    ServiceAdminMixin,
    adopt,
    staff_date,
    staff_money,
    status_badge,
)
from apps.core.errors import ApplicationError
from apps.core.event_details import event_details_text
from apps.core.pdf import PdfIntegrity
from apps.invoices.constants import BillingReason, BillingRunStatus, InvoiceStatus
from apps.invoices.models import (
    BillingRun,
    CreditNote,
    Invoice,
    InvoiceEvent,
    InvoiceLine,
    InvoiceNumberSequence,
    InvoiceTax,
    TaxRate,
)
from apps.invoices.selectors import invoices_with_amount_due
from apps.invoices.services import (
    invoice_email_send,
    invoice_finalize,
    invoice_mark_uncollectible,
    invoice_pdf_verify,
    invoice_render_pdf,
    invoice_update_draft,
    invoice_void,
    tax_rate_create,
    tax_rate_update,
)
from apps.invoices.services.taxes import TAX_RATE_EDITABLE_FIELDS, TAX_RATE_FIXED_FIELDS
from apps.payments.admin_inlines import InvoicePaymentInline
from apps.payments.services import invoice_mark_paid
from apps.payments.stripe.client import stripe_enabled
from apps.payments.stripe.collection import invoice_charge_now, payment_outcome_check
from apps.payments.stripe.models import StripeCustomer

from .credit_notes import (
    ISSUE_PERMISSION,
    CreditNoteAdmin,
    InvoiceCreditNoteInline,
    credit_note_is_offered_for,
    invoice_credit_note_view,
)

INVOICE_STATUS_TONES = {
    InvoiceStatus.DRAFT: "neutral",
    InvoiceStatus.OPEN: "info",
    InvoiceStatus.PAID: "success",
    InvoiceStatus.VOID: "danger",
    InvoiceStatus.UNCOLLECTIBLE: "warning",
}
BILLING_RUN_STATUS_TONES = {
    BillingRunStatus.RUNNING: "info",
    BillingRunStatus.SUCCEEDED: "success",
    BillingRunStatus.COMPLETED_WITH_ERRORS: "warning",
    BillingRunStatus.FAILED: "danger",
}
# The permission each invoice operation needs. One permission for now; a dedicated permission per
# operation (e.g. who may void) needs only a change here once the model declares them.
OPERATIONS_PERMISSION = "invoices.change_invoice"


def _period(start, end) -> str:
    if start is None or end is None:
        return "—"
    return f"{staff_date(start)} → {staff_date(end)}"


def _pretty_json(value) -> str:
    if not value:
        return "—"
    return format_html(
        '<pre style="margin:0;white-space:pre-wrap">{}</pre>', json.dumps(value, indent=2, ensure_ascii=False)
    )


# --- Operations -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceOperation:
    name: str  # URL segment and permission suffix: has_<name>_permission
    label: str  # button and action label
    done: str  # past tense, for messages
    explanation: str  # shown on the confirmation page
    is_offered_for: Callable[[Invoice], bool]  # whether the invoice page offers it (the service decides)
    run: Callable[..., Invoice]  # (invoice_id, actor, note) -> Invoice
    note_label: str = ""  # optional free-text input on the confirmation page
    needs_confirmation: bool = True  # the button opens a confirmation page rather than POSTing at once
    errors: tuple[type[Exception], ...] = (ApplicationError,)


def _has_default_card(customer_id: int) -> bool:
    """Whether the customer has a card to charge (a default payment method synced from Stripe)."""
    link = StripeCustomer.objects.filter(customer_id=customer_id).select_related("djstripe_customer").first()
    return link is not None and link.default_payment_method_id is not None


def _charge_card(invoice_id: int) -> Invoice:
    payment_outcome_check(invoice_charge_now(invoice_id=invoice_id))
    return Invoice.objects.get(pk=invoice_id)


def _status_in(*statuses: str) -> Callable[[Invoice], bool]:
    return lambda invoice: invoice.status in statuses


OPERATIONS: dict[str, InvoiceOperation] = {
    operation.name: operation
    for operation in [
        InvoiceOperation(
            name="finalize",
            label=_("Finalize"),
            done=_("Finalized"),
            explanation=(
                _(
                    "Finalizing issues the invoice: it takes the next invoice number, its amounts and the "
                    "seller and customer details are frozen, and its PDF bill is rendered. This cannot be undone."
                )
            ),
            is_offered_for=_status_in(InvoiceStatus.DRAFT),
            run=lambda invoice_id, actor, note: invoice_finalize(invoice_id=invoice_id, actor=actor),
        ),
        InvoiceOperation(
            name="void",
            label=pgettext_lazy("invoice action", "Void"),
            done=_("Voided"),
            explanation=(
                _(
                    "Voiding cancels the invoice for good. An issued invoice keeps its number (no gap); "
                    "the customer no longer owes it."
                )
            ),
            is_offered_for=_status_in(InvoiceStatus.DRAFT, InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE),
            run=lambda invoice_id, actor, note: invoice_void(invoice_id=invoice_id, actor=actor, reason=note),
            note_label=_("Reason"),
        ),
        InvoiceOperation(
            name="mark_paid",
            label=_("Mark paid"),
            done=_("Marked paid"),
            explanation=(
                _(
                    "Records a manual payment (bank transfer) of what is still due on this invoice, which makes it "
                    "paid. To record another amount or method, use Payments › Record a manual payment."
                )
            ),
            is_offered_for=_status_in(InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE),
            run=lambda invoice_id, actor, note: invoice_mark_paid(invoice_id=invoice_id, actor=actor, reference=note),
            note_label=_("Payment reference"),
        ),
        InvoiceOperation(
            name="mark_uncollectible",
            label=_("Mark uncollectible"),
            done=_("Marked uncollectible"),
            explanation=(
                _(
                    "Records that this invoice is not expected to be paid (bad debt). "
                    "It can still be paid or voided later."
                )
            ),
            is_offered_for=_status_in(InvoiceStatus.OPEN),
            run=lambda invoice_id, actor, note: invoice_mark_uncollectible(
                invoice_id=invoice_id, actor=actor, reason=note
            ),
            note_label=_("Reason"),
        ),
        InvoiceOperation(
            name="render_pdf",
            label=_("Render PDF"),
            done=_("Rendered the PDF of"),
            explanation=(
                _(
                    "Renders the PDF bill from the invoice's frozen details, if it has none yet (e.g. the queue "
                    "was down). A rendered bill is never rendered again nor replaced."
                )
            ),
            is_offered_for=lambda invoice: bool(invoice.number) and not invoice.pdf,
            run=lambda invoice_id, actor, note: invoice_render_pdf(invoice_id=invoice_id, actor=actor),
            needs_confirmation=False,
            errors=(ApplicationError, OSError),
        ),
        InvoiceOperation(
            name="send",
            label=_("Email to customer"),
            done=_("Emailed"),
            explanation=(
                _(
                    "Emails the PDF bill to the customer's email and to its billing contacts that receive "
                    "invoices, even if it was sent before. Each send is recorded in the invoice's history."
                )
            ),
            is_offered_for=lambda invoice: bool(invoice.pdf) and invoice.status != InvoiceStatus.VOID,
            run=lambda invoice_id, actor, note: (
                invoice_email_send(invoice_id=invoice_id, actor=actor, resend=True).event.invoice
            ),
            errors=(ApplicationError, OSError),
        ),
        InvoiceOperation(
            name="charge_card",
            label=_("Charge card now"),
            done=_("Charged the card for"),
            explanation=(
                _(
                    "Charges what is due on the invoice to the customer's default card (Stripe), as a new collection "
                    "attempt. A declined card or a bank asking for 3-D Secure is reported here and recorded on the "
                    "payment."
                )
            ),
            is_offered_for=lambda invoice: (
                stripe_enabled()
                and invoice.status == InvoiceStatus.OPEN
                and invoice.amount_due.amount > 0
                and _has_default_card(invoice.customer_id)
            ),
            run=lambda invoice_id, actor, note: _charge_card(invoice_id),
        ),
    ]
}


class OperationForm(forms.Form):
    note = forms.CharField(required=False, max_length=500, widget=forms.TextInput(attrs={"size": 60}))


def _bulk_action(operation: InvoiceOperation):
    def action(modeladmin: "InvoiceAdmin", request: HttpRequest, queryset):
        if operation.needs_confirmation and request.POST.get("post") != "yes":
            return modeladmin.confirm_operation_on_each(request, operation, queryset, action_name=action.__name__)
        form = OperationForm(request.POST)
        note = form.cleaned_data["note"] if form.is_valid() else ""
        modeladmin.run_operation_on_each(request, operation, queryset, note=note)
        return None

    action.__name__ = f"{operation.name}_selected"
    description = format_lazy(_("{operation}: selected invoices"), operation=operation.label)
    return admin.action(description=description, permissions=[operation.name])(action)


# --- Invoice ----------------------------------------------------------------------------------------


class InvoiceLineInline(ReadOnlyInline):
    model = InvoiceLine
    fields = ["position", "kind", "description", "line_period", "quantity", "unit_amount", "amount", "how_computed"]
    readonly_fields = ["line_period", "how_computed"]
    view_permission_from_parent = True
    verbose_name_plural = _("lines")

    @admin.display(description=_("how it is computed"))
    def how_computed(self, line: InvoiceLine) -> str:
        return format_html_join(mark_safe("<br>"), "{}", ((step,) for step in line.explanation)) or "—"

    @admin.display(description=_("period"))
    def line_period(self, line: InvoiceLine) -> str:
        return _period(line.period_start_at, line.period_end_at)


class InvoiceTaxInline(ReadOnlyInline):
    model = InvoiceTax
    fields = ["name", "percentage", "inclusive", "taxable_amount", "tax_amount"]
    view_permission_from_parent = True
    verbose_name_plural = _("taxes per rate")


class InvoiceEventInline(ReadOnlyInline):
    model = InvoiceEvent
    fields = ["occurred_at", "type", "actor", "details"]
    readonly_fields = ["details"]
    view_permission_from_parent = True
    verbose_name = _("event")
    verbose_name_plural = _("history (audit trail)")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")

    @admin.display(description=_("details"))
    def details(self, event: InvoiceEvent) -> str:
        return event_details_text(event.data)


class OverdueFilter(admin.SimpleListFilter):
    title = _("payment")
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", _("Overdue")), ("no", _("Not overdue"))]

    def queryset(self, request, queryset):
        overdue = {"status__in": [InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE], "due_on__lt": timezone.now().date()}
        if self.value() == "yes":
            return queryset.filter(**overdue)
        if self.value() == "no":
            return queryset.exclude(**overdue)
        return queryset


@admin.register(Invoice)
class InvoiceAdmin(LargeListAdminMixin, ServiceAdminMixin, admin.ModelAdmin):
    list_display = [
        "display_number",
        "kind_badge",
        "customer",
        "status_badge",
        "billing_period",
        "total",
        "amount_paid_column",
        "amount_due_column",
        "issued_at",
        "due_on",
        "pdf_link",
    ]
    # No date hierarchy: its year links need a DISTINCT over every invoice; the issue date filter
    # below answers from the issued_at index.
    list_filter = [
        "status", "billing_reason", ("total_currency", CurrencyListFilter), OverdueFilter,
        ("issued_at", admin.DateFieldListFilter),
    ]  # fmt: skip
    search_fields = ["number", "customer__name", "customer__external_id"]  # see own_search_fields
    own_search_fields = ("number",)
    list_select_related = ["customer"]
    actions = [_bulk_action(operation) for operation in OPERATIONS.values()]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "display_number",
                    "kind_badge",
                    "status_badge",
                    "customer_link",
                    "subscription_link",
                    "billing_period",
                    "memo",
                    "due_on",
                ]
            },
        ),
        (_("Amounts"), {"fields": ["subtotal", "tax_total", "total", "reverse_charge"]}),
        (_("Payment"), {"fields": ["collection_method", "amount_paid", "amount_due_display", "record_payment_link"]}),
        (_("Dates"), {"fields": ["issued_at", "auto_finalize_at", "paid_at", "voided_at", "marked_uncollectible_at"]}),
        (_("PDF bill"), {"fields": ["pdf_link", "pdf_rendered_at", "pdf_sha256", "pdf_integrity"]}),
        (_("Details frozen at issue"), {"fields": ["seller_snapshot", "customer_snapshot"], "classes": ["collapse"]}),
        (_("Record"), {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]
    draft_editable_fields = ("memo", "due_on")
    inlines = [InvoiceLineInline, InvoiceTaxInline, InvoiceCreditNoteInline, InvoicePaymentInline, InvoiceEventInline]

    # --- permissions ---

    def has_add_permission(self, request):
        return False  # invoices come from billing

    def has_delete_permission(self, request, obj=None):
        return False  # an invoice is voided, never deleted

    def has_change_permission(self, request, obj=None):
        if obj is not None and not obj.is_draft:
            return False  # a finalized invoice never changes: the page is read-only
        return super().has_change_permission(request, obj)

    def has_operation_permission(self, request, operation: InvoiceOperation) -> bool:
        return request.user.has_perm(OPERATIONS_PERMISSION)

    def has_finalize_permission(self, request):
        return self.has_operation_permission(request, OPERATIONS["finalize"])

    def has_void_permission(self, request):
        return self.has_operation_permission(request, OPERATIONS["void"])

    def has_mark_paid_permission(self, request):
        return self.has_operation_permission(request, OPERATIONS["mark_paid"])

    def has_mark_uncollectible_permission(self, request):
        return self.has_operation_permission(request, OPERATIONS["mark_uncollectible"])

    def has_render_pdf_permission(self, request):
        return self.has_operation_permission(request, OPERATIONS["render_pdf"])

    def has_send_permission(self, request):
        return self.has_operation_permission(request, OPERATIONS["send"])

    def has_charge_card_permission(self, request):
        return self.has_operation_permission(request, OPERATIONS["charge_card"])

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    # --- change page ---

    def get_readonly_fields(self, request, obj=None):
        return [name for name in flatten_fieldsets(self.fieldsets) if name not in self.draft_editable_fields]

    def save_model(self, request, obj, form, change):
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name in self.draft_editable_fields}
        if changes:
            adopt(obj, self.call_service(invoice_update_draft, invoice_id=obj.pk, actor=request.user, **changes))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        invoice = self.get_object(request, unquote(object_id))
        extra_context = {**(extra_context or {}), **self._tools_context(request, invoice)}
        return super().change_view(request, object_id, form_url, extra_context)

    def _tools_context(self, request, invoice: Invoice | None) -> dict:
        if invoice is None:
            return {}
        operations = [
            {
                "name": operation.name,
                "label": operation.label,
                "url": reverse(f"admin:invoices_invoice_{operation.name}", args=[invoice.pk]),
                "needs_confirmation": operation.needs_confirmation,
            }
            for operation in OPERATIONS.values()
            if operation.is_offered_for(invoice) and self.has_operation_permission(request, operation)
        ]
        pdf_url = reverse("admin:invoices_invoice_pdf", args=[invoice.pk]) if invoice.pdf else None
        credit_note_url = (
            reverse("admin:invoices_invoice_credit_note", args=[invoice.pk])
            if request.user.has_perm(ISSUE_PERMISSION) and credit_note_is_offered_for(invoice)
            else None
        )
        return {"invoice_operations": operations, "invoice_pdf_url": pdf_url, "credit_note_url": credit_note_url}

    # --- display ---

    def get_queryset(self, request):
        return invoices_with_amount_due(super().get_queryset(request))

    @admin.display(description=_("invoice"), ordering="number")
    def display_number(self, invoice: Invoice) -> str:
        return str(invoice)

    @admin.display(description=_("kind"), ordering="billing_reason")
    def kind_badge(self, invoice: Invoice) -> str:
        """Why the invoice was made; an interim invoice (progressive billing) stands out."""
        tone = "info" if invoice.billing_reason == BillingReason.SUBSCRIPTION_THRESHOLD else "neutral"
        return status_badge(invoice.get_billing_reason_display(), tone)

    @admin.display(description=_("paid"), ordering="amount_paid")
    def amount_paid_column(self, invoice: Invoice) -> str:
        return staff_money(invoice.amount_paid.amount, invoice.currency)

    @admin.display(description=_("due"))
    def amount_due_column(self, invoice: Invoice) -> str:
        return staff_money(invoice.amount_due.amount, invoice.currency)

    @admin.display(description=_("amount due"))
    def amount_due_display(self, invoice: Invoice) -> str:
        return staff_money(invoice.amount_due.amount, invoice.currency)

    @admin.display(description=_("record a payment"))
    def record_payment_link(self, invoice: Invoice) -> str:
        if invoice.status not in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE):
            return "—"
        url = reverse("admin:payments_payment_add") + f"?customer={invoice.customer_id}"
        return format_html(
            '<a href="{}">{}</a>', url, _("Record a payment from %(customer)s") % {"customer": invoice.customer}
        )

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, invoice: Invoice) -> str:
        return status_badge(invoice.get_status_display(), INVOICE_STATUS_TONES.get(invoice.status, "neutral"))

    @admin.display(description=_("period"), ordering="period_start_at")
    def billing_period(self, invoice: Invoice) -> str:
        return _period(invoice.period_start_at, invoice.period_end_at)

    @admin.display(description=_("PDF"))
    def pdf_link(self, invoice: Invoice) -> str:
        if not invoice.pdf:
            return "—"
        return format_html('<a href="{}">PDF</a>', reverse("admin:invoices_invoice_pdf", args=[invoice.pk]))

    @admin.display(description=_("integrity"))
    def pdf_integrity(self, invoice: Invoice) -> str:
        """Recomputes the SHA-256 of the stored file (the change page only, one file)."""
        if not invoice.pdf_sha256:
            return "—"
        integrity = invoice_pdf_verify(invoice_id=invoice.pk)
        label, tone = {
            PdfIntegrity.INTACT: (_("intact: the stored file has this SHA-256"), "success"),
            PdfIntegrity.ALTERED: (_("ALTERED: the stored file no longer has this SHA-256"), "danger"),
            PdfIntegrity.MISSING: (_("MISSING from storage"), "danger"),
        }[integrity]
        return status_badge(label, tone)

    @admin.display(description=_("customer"))
    def customer_link(self, invoice: Invoice) -> str:
        url = reverse("admin:accounts_customer_change", args=[invoice.customer_id])
        return format_html('<a href="{}">{}</a>', url, invoice.customer)

    @admin.display(description=_("subscription"))
    def subscription_link(self, invoice: Invoice) -> str:
        ids = [invoice.subscription_id] if invoice.subscription_id else []
        if not ids and invoice.pk:  # an invoice grouping several subscriptions
            ids = list(invoice.invoiced_periods.values_list("subscription_id", flat=True))
        if not ids:
            return "—"
        links = [
            format_html('<a href="{}">#{}</a>', reverse("admin:subscriptions_subscription_change", args=[pk]), pk)
            for pk in ids
        ]
        grouped = _(" (one invoice for the customer's subscriptions renewing that day)") if len(ids) > 1 else ""
        return format_html("{}{}", format_html_join(", ", "{}", ((link,) for link in links)), grouped)

    @admin.display(description=_("seller"))
    def seller_snapshot(self, invoice: Invoice) -> str:
        return _pretty_json(invoice.seller_details)

    @admin.display(description=_("customer"))
    def customer_snapshot(self, invoice: Invoice) -> str:
        return _pretty_json(invoice.customer_details)

    # --- custom views ---

    def get_urls(self):
        view = self.admin_site.admin_view
        custom = [
            path("<path:object_id>/pdf/", view(self.pdf_view), name="invoices_invoice_pdf"),
            path(
                "<path:object_id>/credit-note/",
                view(lambda request, object_id: invoice_credit_note_view(self, request, object_id)),
                name="invoices_invoice_credit_note",
            ),
        ]
        custom += [
            path(
                f"<path:object_id>/{name}/",
                view(self.operation_view),
                {"operation_name": name},
                name=f"invoices_invoice_{name}",
            )
            for name in OPERATIONS
        ]
        return custom + super().get_urls()

    def pdf_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        invoice = self.get_object(request, unquote(object_id))
        if invoice is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if invoice.pdf:
            try:
                handle = invoice.pdf.open("rb")
            except FileNotFoundError:
                reason = _(
                    "its PDF file is missing from storage. A rendered bill is never rendered again: restore "
                    "%(file)s from a backup (its SHA-256 is %(sha256)s)."
                ) % {"file": invoice.pdf.name, "sha256": invoice.pdf_sha256}
            else:
                return FileResponse(handle, content_type="application/pdf", filename=f"{invoice.number}.pdf")
        elif invoice.number:
            reason = _("its PDF has not been rendered yet. It is rendered shortly after finalization; try again later.")
        else:
            reason = _("it is a draft: the PDF bill is rendered when the invoice is finalized.")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("No PDF yet"),
            "invoice": invoice,
            "reason": reason,
        }
        return TemplateResponse(request, "admin/invoices/invoice/pdf_missing.html", context, status=404)

    def operation_view(self, request: HttpRequest, object_id: str, operation_name: str) -> HttpResponse:
        operation = OPERATIONS[operation_name]
        if not self.has_operation_permission(request, operation):
            raise PermissionDenied
        invoice = self.get_object(request, unquote(object_id))
        if invoice is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if request.method == "POST":
            form = OperationForm(request.POST)
            note = form.cleaned_data["note"] if form.is_valid() else ""
            self.run_operation(request, operation, invoice, note=note)
            return redirect("admin:invoices_invoice_change", invoice.pk)
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET", "POST"])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("%(operation)s %(invoice)s?") % {"operation": operation.label, "invoice": invoice},
            "invoice": invoice,
            "operation": operation,
            "form": OperationForm(),
            "change_url": reverse("admin:invoices_invoice_change", args=[invoice.pk]),
        }
        return TemplateResponse(request, "admin/invoices/invoice/operation_confirm.html", context)

    def run_operation(self, request: HttpRequest, operation: InvoiceOperation, invoice: Invoice, *, note: str = ""):
        """Call the operation's service for one invoice and report the outcome. Returns the changed
        invoice, or None when the service refused (the refusal is shown as an error message)."""
        before = str(invoice)
        try:
            changed = operation.run(invoice.pk, request.user, note)
        except operation.errors as exc:
            message = exc.message if isinstance(exc, ApplicationError) else f"{type(exc).__name__}: {exc}"
            messages.error(request, f"{before}: {message}")
            return None
        if str(changed) != before:
            messages.success(
                request,
                _("%(done)s %(invoice)s as %(changed)s.")
                % {"done": operation.done, "invoice": before, "changed": changed},
            )
        else:
            messages.success(request, _("%(done)s %(invoice)s.") % {"done": operation.done, "invoice": before})
        return changed

    def confirm_operation_on_each(
        self, request: HttpRequest, operation: InvoiceOperation, queryset, *, action_name: str
    ) -> TemplateResponse:
        """The intermediate page of a list action: what will happen to which invoices, and the note."""
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("%(operation)s %(count)s invoice(s)?")
            % {"operation": operation.label, "count": queryset.count()},
            "operation": operation,
            "queryset": queryset.select_related("customer").order_by("pk"),
            "action_name": action_name,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "form": OperationForm(),
        }
        return TemplateResponse(request, "admin/invoices/invoice/action_confirm.html", context)

    def run_operation_on_each(self, request: HttpRequest, operation: InvoiceOperation, queryset, *, note: str = ""):
        """A list action: the service is called once per invoice, each in its own transaction, so one
        refusal does not undo the others; every success and refusal is reported."""
        done, failed = [], 0
        for invoice in queryset.select_related("customer").order_by("pk"):
            before = str(invoice)
            try:
                changed = operation.run(invoice.pk, request.user, note)
            except operation.errors as exc:
                failed += 1
                message = exc.message if isinstance(exc, ApplicationError) else f"{type(exc).__name__}: {exc}"
                messages.error(request, f"{before}: {message}")
                continue
            done.append(
                before
                if str(changed) == before
                else _("%(invoice)s as %(changed)s") % {"invoice": before, "changed": changed}
            )
        if done:
            messages.success(
                request,
                _("%(done)s %(count)s invoice(s): %(invoices)s.")
                % {"done": operation.done, "count": len(done), "invoices": ", ".join(done)},
            )
        if failed:
            messages.warning(
                request, _("%(count)s invoice(s) were left unchanged (see the errors above).") % {"count": failed}
            )


# --- Billing runs and numbering -----------------------------------------------------------------------


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by services: listed and shown, never added, changed or deleted here."""

    actions = None

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(BillingRun)
class BillingRunAdmin(ReadOnlyAdmin):
    list_display = [
        "__str__",
        "started_at",
        "as_of",
        "trigger",
        "status_badge",
        "due_count",
        "invoiced_count",
        "skipped_count",
        "failed_count",
        "finalized_count",
        "ended_count",
        "progress",
        "duration",
        "triggered_by",
    ]
    list_filter = ["status", "trigger"]
    list_select_related = ["triggered_by"]
    date_hierarchy = "started_at"
    fieldsets = [
        (None, {"fields": ["as_of", "trigger", "triggered_by", "status_badge"]}),
        (
            _("Progress"),
            {"fields": ["progress", "chunk_progress", "throughput", "statement_count", "statements_per_invoice"]},
        ),
        (_("Timing"), {"fields": ["started_at", "finished_at", "duration"]}),
        (
            _("Counts"),
            {
                "fields": [
                    "due_count",
                    "invoiced_count",
                    "skipped_count",
                    "failed_count",
                    "finalized_count",
                    "ended_count",
                ]
            },
        ),  # fmt: skip
        (_("Errors"), {"fields": ["error_table"]}),
    ]
    readonly_fields = [
        "status_badge", "duration", "error_table", "progress", "chunk_progress", "throughput", "statements_per_invoice",
    ]  # fmt: skip
    run_billing_permission = "invoices.add_billingrun"

    def has_run_billing_permission(self, request) -> bool:
        return request.user.has_perm(self.run_billing_permission)

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, run: BillingRun) -> str:
        return status_badge(run.get_status_display(), BILLING_RUN_STATUS_TONES.get(run.status, "neutral"))

    @admin.display(description=_("duration"))
    def duration(self, run: BillingRun) -> str:
        seconds = run.duration_seconds
        if seconds is None:
            return "—"
        return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"

    @admin.display(description=_("progress"))
    def progress(self, run: BillingRun) -> str:
        return format_html(
            '<progress max="100" value="{}" style="width: 10em"></progress> {} % ({})',
            run.progress_percent, run.progress_percent,
            _("%(done)s / %(due)s subscriptions") % {"done": f"{run.processed_count:,}", "due": f"{run.due_count:,}"},
        )  # fmt: skip

    @admin.display(description=_("chunks"))
    def chunk_progress(self, run: BillingRun) -> str:
        return f"{run.chunks_done} of {run.chunk_count} billed"

    @admin.display(description=_("invoices per second"))
    def throughput(self, run: BillingRun) -> str:
        seconds = run.duration_seconds
        if not seconds or not run.invoiced_count:
            return "—"
        return f"{run.invoiced_count / seconds:,.0f}"

    @admin.display(description=_("SQL statements per invoice"))
    def statements_per_invoice(self, run: BillingRun) -> str:
        value = run.statements_per_invoice
        return "—" if value is None else f"{value:.2f}"

    @admin.display(description=_("errors"))
    def error_table(self, run: BillingRun) -> str:
        if not run.errors:
            return _("None")
        rows = []
        for error in run.errors:
            if "subscription" in error:
                url = reverse("admin:subscriptions_subscription_change", args=[error["subscription"]])
                subject = format_html('<a href="{}">Subscription #{}</a>', url, error["subscription"])
            elif "invoice" in error:
                url = reverse("admin:invoices_invoice_change", args=[error["invoice"]])
                subject = format_html('<a href="{}">Invoice #{}</a>', url, error["invoice"])
            else:
                subject = "—"
            rows.append((subject, error.get("error", "")))
        return format_html(
            "<table><thead><tr><th>Concerns</th><th>Error</th></tr></thead><tbody>{}</tbody></table>",
            format_html_join("", "<tr><td>{}</td><td><code>{}</code></td></tr>", rows),
        )

    def get_urls(self):
        custom = [path("run/", self.admin_site.admin_view(self.run_billing_view), name="invoices_billingrun_run")]
        return custom + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_run_billing": self.has_run_billing_permission(request)}
        return super().changelist_view(request, extra_context)

    def run_billing_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_run_billing_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        run = bill_due_subscriptions(trigger="admin", triggered_by=request.user, fan_out=settings.BILLING_RUN_FAN_OUT)
        if run.finished_at is None:
            messages.info(
                request,
                _(
                    "Billing run %(run)s started: %(due)s subscription(s) due, in %(chunks)s chunk(s) handed to the "
                    "billing workers. This page follows its progress."
                )
                % {"run": run.pk, "due": run.due_count, "chunks": run.chunk_count},
            )
            return redirect("admin:invoices_billingrun_change", run.pk)
        summary = _(
            "Billing run %(run)s finished: %(due)s subscription(s) due, %(invoiced)s invoiced, %(skipped)s skipped, "
            "%(failed)s failed, %(finalized)s invoice(s) finalized, %(ended)s subscription(s) ended."
        ) % {
            "run": run.pk,
            "due": run.due_count,
            "invoiced": run.invoiced_count,
            "skipped": run.skipped_count,
            "failed": run.failed_count,
            "finalized": run.finalized_count,
            "ended": run.ended_count,
        }
        if run.failed_count:
            messages.warning(request, summary)
        else:
            messages.success(request, summary)
        return redirect("admin:invoices_billingrun_change", run.pk)


admin.site.register(CreditNote, CreditNoteAdmin)


@admin.register(InvoiceNumberSequence)
class InvoiceNumberSequenceAdmin(ReadOnlyAdmin):
    list_display = ["key", "last_value"]
    search_fields = ["key"]
    ordering = ["key"]


@admin.register(TaxRate)
class TaxRateAdmin(ServiceAdminMixin, admin.ModelAdmin):
    """Rates apply to drafts from now on; issued invoices keep the rate they were issued with."""

    list_display = ["name", "percentage", "country", "region", "inclusive", "is_active", "updated_at"]
    list_filter = ["is_active", "inclusive", "country"]
    search_fields = ["name", "country", "region"]
    ordering = ["country", "region", "name"]
    fields = ["name", "percentage", "country", "region", "inclusive", "is_active"]

    def has_delete_permission(self, request, obj=None):
        return False  # a rate is deactivated, never deleted: issued invoices name it

    def get_readonly_fields(self, request, obj=None):
        # What a rate is about is fixed once it exists (`tax_rate_update` refuses it): a new rate replaces it.
        return list(TAX_RATE_FIXED_FIELDS) if obj is not None else []

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            changes = {name: data[name] for name in form.changed_data if name in TAX_RATE_EDITABLE_FIELDS}
            if changes:
                adopt(obj, self.call_service(tax_rate_update, tax_rate_id=obj.pk, **changes))
        else:
            adopt(obj, self.call_service(tax_rate_create, **{name: data[name] for name in self.fields}))
