"""Credit notes in the admin: the list and read-only pages of issued credit notes, and the "Issue credit
note" page of an invoice (a form, a preview of what it would credit, then the issue through the
service). Imported by `apps.invoices.admin`."""

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from apps.core.admin import CurrencyListFilter, ReadOnlyInline, staff_money, status_badge
from apps.core.errors import ApplicationError
from apps.invoices.constants import (
    AFTER_TAX_LINE_KINDS,
    CREDITABLE_STATUSES,
    UNPAID_STATUSES,
    CreditNoteReason,
    CreditNoteStatus,
)
from apps.invoices.models import CreditNote, CreditNoteLine, CreditNoteTax, Invoice, InvoiceLine
from apps.invoices.selectors import (
    invoice_creditable_amount,
    invoice_creditable_before_credits,
    invoice_paid_with_prepaid_credits,
)
from apps.invoices.services import CreditNoteLineRequest, credit_note_preview, credit_note_void
from apps.payments.services import credit_note_issue_and_refund

ISSUE_PERMISSION = "invoices.add_creditnote"
VOID_PERMISSION = "invoices.change_creditnote"
CREDIT_NOTE_STATUS_TONES = {CreditNoteStatus.ISSUED: "info", CreditNoteStatus.VOID: "danger"}


def credit_note_link(credit_note: CreditNote) -> str:
    return format_html(
        '<a href="{}">{}</a>', reverse("admin:invoices_creditnote_change", args=[credit_note.pk]), credit_note
    )


def credit_note_is_offered_for(invoice: Invoice) -> bool:
    """Something is left to credit: of the invoice's total, or, on an invoice prepaid credits paid (in
    full: 0.00), of what it billed before them (the credits' share goes back to the wallets)."""
    if invoice.status not in CREDITABLE_STATUSES:
        return False
    if invoice_creditable_amount(invoice) > 0:
        return True
    return invoice_paid_with_prepaid_credits(invoice) and invoice_creditable_before_credits(invoice) > 0


# --- The issue form -----------------------------------------------------------------------------------


class CreditNoteIssueForm(forms.Form):
    """Full / by lines (a quantity or an amount per line) / a plain amount, then how it is settled.
    One pair of fields per charge of the invoice is added at construction."""

    mode = forms.ChoiceField(
        choices=[
            ("full", _("All that is left of the invoice")),
            ("lines", _("Some lines")),
            ("amount", _("An amount")),
        ],
        initial="full",
        widget=forms.RadioSelect,
        label=_("Credit"),
    )
    amount = forms.DecimalField(
        required=False, min_value=Decimal("0.01"), decimal_places=6, help_text=_("Before tax; the tax is added.")
    )
    reason = forms.ChoiceField(choices=CreditNoteReason.choices, initial=CreditNoteReason.OTHER)
    memo = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
    refund_amount = forms.DecimalField(
        required=False,
        min_value=Decimal(0),
        decimal_places=6,
        help_text=_(
            "Paid invoices: the part refunded (out of the invoice's payments; "
            "a manual payment's refund is recorded as paid, a card payment's is sent to Stripe)."
        ),
    )
    credit_to_balance = forms.DecimalField(
        required=False, min_value=Decimal(0), decimal_places=6,
        help_text=_("Paid invoices: the part credited to the customer's balance (default: what is not refunded)."),
    )  # fmt: skip
    refund_reference = forms.CharField(required=False, max_length=255)

    def __init__(self, *args, invoice: Invoice, **kwargs):
        super().__init__(*args, **kwargs)
        self.invoice = invoice
        self.charges = [
            line for line in invoice.lines.all() if line.amount.amount > 0 and line.kind not in AFTER_TAX_LINE_KINDS
        ]
        for line in self.charges:
            label = line.description
            self.fields[f"line_{line.pk}_quantity"] = forms.DecimalField(
                required=False, min_value=Decimal("0.000001"), decimal_places=6, label=f"{label}: quantity"
            )
            self.fields[f"line_{line.pk}_amount"] = forms.DecimalField(
                required=False, min_value=Decimal("0.01"), decimal_places=6, label=_("or amount")
            )
        if invoice.status in UNPAID_STATUSES and invoice.amount_paid.amount == 0:
            # Nothing paid yet: the credit only reduces what is due. (On a partly paid invoice, what it
            # credits beyond what is due is refunded or credited to the balance.)
            for name in ("refund_amount", "credit_to_balance", "refund_reference"):
                del self.fields[name]

    def line_fields(self) -> list[tuple[InvoiceLine, forms.BoundField, forms.BoundField]]:
        return [(line, self[f"line_{line.pk}_quantity"], self[f"line_{line.pk}_amount"]) for line in self.charges]

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        mode = data["mode"]
        lines = [
            CreditNoteLineRequest(
                line.pk, quantity=data.get(f"line_{line.pk}_quantity"), amount=data.get(f"line_{line.pk}_amount")
            )
            for line in self.charges
            if data.get(f"line_{line.pk}_quantity") is not None or data.get(f"line_{line.pk}_amount") is not None
        ]
        return {
            "reason": data["reason"],
            "memo": data.get("memo", ""),
            "full": mode == "full",
            "lines": lines if mode == "lines" else None,
            "amount": data.get("amount") if mode == "amount" else None,
            "refund_amount": data.get("refund_amount"),
            "credit_to_balance": data.get("credit_to_balance"),
        }

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("mode") == "lines" and not any(
            cleaned.get(f"line_{line.pk}_{part}") is not None
            for line in self.charges
            for part in ("quantity", "amount")
        ):
            self.add_error(None, _("Give a quantity or an amount for at least one line."))
        if cleaned.get("mode") == "amount" and cleaned.get("amount") is None:
            self.add_error("amount", _("Give the amount to credit."))
        return cleaned

    def add_service_error(self, error: ApplicationError) -> None:
        """Place the service's field errors ("lines.0.quantity") on this form's fields."""
        fields = {}
        arguments_lines = self.service_arguments()["lines"] or []
        for name, messages_ in error.fields.items():
            parts = name.split(".")
            if parts[0] == "lines" and len(parts) >= 2 and parts[1].isdigit() and int(parts[1]) < len(arguments_lines):
                line_id = arguments_lines[int(parts[1])].invoice_line_id
                part = parts[2] if len(parts) > 2 and parts[2] in ("quantity", "amount") else "quantity"
                fields.setdefault(f"line_{line_id}_{part}", []).extend(messages_)
            else:
                fields.setdefault(name if name in self.fields else "__all__", []).extend(messages_)
        for name, messages_ in fields.items():
            for message in messages_:
                self.add_error(None if name == "__all__" else name, message)
        if not fields:
            self.add_error(None, error.message)


def invoice_credit_note_view(model_admin, request: HttpRequest, object_id: str) -> HttpResponse:
    """GET: the form. POST: the preview of what it would credit; POST with `confirm`: issue it."""
    if not request.user.has_perm(ISSUE_PERMISSION):
        raise PermissionDenied
    invoice = model_admin.get_object(request, unquote(object_id))
    if invoice is None:
        return model_admin._get_obj_does_not_exist_redirect(request, model_admin.opts, object_id)
    if request.method not in ("GET", "POST"):
        return HttpResponseNotAllowed(["GET", "POST"])
    change_url = reverse("admin:invoices_invoice_change", args=[invoice.pk])
    form = CreditNoteIssueForm(request.POST if request.method == "POST" else None, invoice=invoice)
    preview = None
    if request.method == "POST" and form.is_valid():
        try:
            if "confirm" in request.POST:
                credit_note = credit_note_issue_and_refund(
                    invoice_id=invoice.pk, actor=request.user,
                    refund_reference=form.cleaned_data.get("refund_reference", ""), **form.service_arguments(),
                )  # fmt: skip
                total = staff_money(credit_note.total.amount, credit_note.currency)
                message = _("Issued credit note %(credit_note)s for %(total)s on %(invoice)s.") % {
                    "credit_note": credit_note,
                    "total": total,
                    "invoice": invoice,
                }
                model_admin.message_user(request, message, messages.SUCCESS)
                return HttpResponseRedirect(change_url)
            preview = credit_note_preview(invoice_id=invoice.pk, **form.service_arguments())
        except ApplicationError as exc:
            form.add_service_error(exc)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": _("Issue a credit note for %(invoice)s") % {"invoice": invoice},
        "invoice": invoice,
        "form": form,
        "preview": preview,
        "creditable": invoice_creditable_amount(invoice),
        "creditable_before_credits": (
            invoice_creditable_before_credits(invoice) if invoice_paid_with_prepaid_credits(invoice) else None
        ),
        "change_url": change_url,
        "media": model_admin.media + form.media,
    }
    return TemplateResponse(request, "admin/invoices/invoice/credit_note_issue.html", context)


# --- Inlines on the invoice page ------------------------------------------------------------------------


class InvoiceCreditNoteInline(ReadOnlyInline):
    model = CreditNote
    fields = ["credit_note", "status", "reason", "total", "issued_at", "settlement"]
    readonly_fields = ["credit_note", "settlement"]
    view_permission_from_parent = True
    verbose_name_plural = _("credit notes")

    @admin.display(description=_("credit note"))
    def credit_note(self, credit_note: CreditNote) -> str:
        return credit_note_link(credit_note)

    @admin.display(description=_("settled by"))
    def settlement(self, credit_note: CreditNote) -> str:
        return settlement_text(credit_note)


def settlement_text(credit_note: CreditNote) -> str:
    currency = credit_note.currency
    parts = [
        f"{label} {staff_money(amount.amount, currency)}"
        for label, amount in [
            (_("amount due reduced by"), credit_note.amount_due_reduction),
            ("refunded", credit_note.refund_amount),
            (_("credited to the balance"), credit_note.credit_to_balance),
        ]
        if amount.amount
    ]
    return "; ".join(parts) or "—"


# --- The credit note pages -------------------------------------------------------------------------------


class CreditNoteLineInline(ReadOnlyInline):
    model = CreditNoteLine
    fields = ["position", "kind", "description", "invoice_line", "quantity", "amount", "how_computed"]
    readonly_fields = ["how_computed"]
    view_permission_from_parent = True
    verbose_name_plural = _("lines")

    @admin.display(description=_("how it is computed"))
    def how_computed(self, line: CreditNoteLine) -> str:
        return format_html_join(mark_safe("<br>"), "{}", ((step,) for step in line.explanation)) or "—"


class CreditNoteTaxInline(ReadOnlyInline):
    model = CreditNoteTax
    fields = ["name", "percentage", "inclusive", "taxable_amount", "tax_amount"]
    view_permission_from_parent = True
    verbose_name_plural = _("taxes per rate")


class CreditNoteAdmin(admin.ModelAdmin):
    """Issued from their invoice's page; shown read-only here; voided with the button (when allowed)."""

    list_display = [
        "number", "invoice_link", "customer", "status_badge", "reason", "total", "issued_at", "pdf_link",
    ]  # fmt: skip
    list_filter = ["status", "reason", ("total_currency", CurrencyListFilter)]
    search_fields = ["number", "invoice__number", "customer__name", "customer__external_id"]
    list_select_related = ["invoice", "customer"]
    date_hierarchy = "issued_at"
    show_facets = admin.ShowFacets.NEVER
    actions = None
    fieldsets = [
        (None, {"fields": ["number", "status_badge", "invoice_link", "customer", "reason", "memo"]}),
        (_("Amounts"), {"fields": ["subtotal", "tax_total", "total", "reverse_charge"]}),
        (
            _("Settlement"),
            {"fields": ["amount_due_reduction", "refund_amount", "refund_reference", "credit_to_balance"]},
        ),
        (_("Dates"), {"fields": ["issued_at", "issued_by", "voided_at"]}),
        (_("PDF"), {"fields": ["pdf_link", "pdf_rendered_at", "pdf_sha256"]}),
    ]
    readonly_fields = [
        "number", "status_badge", "invoice_link", "customer", "reason", "memo", "subtotal", "tax_total", "total",
        "reverse_charge", "amount_due_reduction", "refund_amount", "refund_reference", "credit_to_balance",
        "issued_at", "issued_by", "voided_at", "pdf_link", "pdf_rendered_at", "pdf_sha256",
    ]  # fmt: skip
    inlines = [CreditNoteLineInline, CreditNoteTaxInline]
    change_form_template = "admin/invoices/creditnote/change_form.html"

    def has_add_permission(self, request):
        return False  # issued from the invoice's page

    def has_change_permission(self, request, obj=None):
        return False  # an issued credit note never changes

    def has_delete_permission(self, request, obj=None):
        return False  # voided, never deleted

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, credit_note: CreditNote) -> str:
        return status_badge(
            credit_note.get_status_display(), CREDIT_NOTE_STATUS_TONES.get(credit_note.status, "neutral")
        )

    @admin.display(description=_("invoice"), ordering="invoice__number")
    def invoice_link(self, credit_note: CreditNote) -> str:
        url = reverse("admin:invoices_invoice_change", args=[credit_note.invoice_id])
        return format_html('<a href="{}">{}</a>', url, credit_note.invoice)

    @admin.display(description=_("PDF"))
    def pdf_link(self, credit_note: CreditNote) -> str:
        if not credit_note.pdf:
            return "—"
        return format_html('<a href="{}">PDF</a>', reverse("admin:invoices_creditnote_pdf", args=[credit_note.pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        credit_note = self.get_object(request, unquote(object_id))
        can_void = (
            credit_note is not None
            and credit_note.status == CreditNoteStatus.ISSUED
            and request.user.has_perm(VOID_PERMISSION)
        )
        extra_context = {
            **(extra_context or {}),
            "void_url": reverse("admin:invoices_creditnote_void", args=[credit_note.pk]) if can_void else None,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/pdf/", view(self.pdf_view), name="invoices_creditnote_pdf"),
            path("<path:object_id>/void/", view(self.void_view), name="invoices_creditnote_void"),
        ] + super().get_urls()

    def pdf_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        credit_note = self.get_object(request, unquote(object_id))
        if credit_note is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if credit_note.pdf:
            try:
                return FileResponse(
                    credit_note.pdf.open("rb"), content_type="application/pdf", filename=f"{credit_note.number}.pdf"
                )
            except FileNotFoundError:
                pass
        messages.warning(
            request,
            _("The PDF of %(credit_note)s is not available yet; it is rendered shortly after issue.")
            % {"credit_note": credit_note},
        )
        return redirect("admin:invoices_creditnote_change", credit_note.pk)

    def void_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not request.user.has_perm(VOID_PERMISSION):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        credit_note = self.get_object(request, unquote(object_id))
        if credit_note is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        try:
            credit_note_void(credit_note_id=credit_note.pk, actor=request.user, reason=request.POST.get("reason", ""))
        except ApplicationError as exc:
            messages.error(request, f"{credit_note}: {exc.message}")
        else:
            messages.success(request, _("Voided credit note %(credit_note)s.") % {"credit_note": credit_note})
        return redirect("admin:invoices_creditnote_change", credit_note.pk)
