"""One-off charges in the admin: pending invoice items (Invoices › Invoice items) and the one-off
invoice page reached from a customer ("New one-off invoice"). Every change goes through the services
of `apps.billing.services.one_off`; their field errors are shown on the form fields."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.forms import formset_factory
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Customer
from apps.billing.services.one_off import (
    MAX_LINES,
    OneOffCharge,
    invoice_item_create,
    invoice_item_delete,
    invoice_item_update,
    invoice_one_off_create,
)
from apps.catalog.models import Product
from apps.core.admin import ServiceAdminMixin, ServiceRejected, adopt, status_badge
from apps.core.errors import ApplicationError
from apps.core.money_format import money_text
from apps.invoices.constants import InvoiceLineKind
from apps.invoices.models import InvoiceItem, TaxRate

# The service names the unit price `unit_amount`; the forms call it `unit_price` (a plain number in the
# customer's currency, not a money widget).
_FORM_FIELD = {"unit_amount": "unit_price"}


def _form_fields(error: ApplicationError) -> ApplicationError:
    error.fields = {_FORM_FIELD.get(name, name): messages for name, messages in error.fields.items()}
    return error


class InvoiceItemForm(forms.ModelForm):
    unit_price = forms.DecimalField(
        max_digits=28,
        decimal_places=12,
        label=_("unit price"),
        help_text=_("In the customer's currency; may carry more decimals than it."),
    )

    class Meta:
        model = InvoiceItem
        fields = ["customer", "description", "quantity", "product", "tax_rate", "period_start_at", "period_end_at"]
        help_texts = {
            "description": _("Printed on the bill. Left empty with a product: the product's name."),
            "quantity": _(
                "Greater than zero. Amount = quantity × unit price, rounded once to the currency's minor unit."
            ),
            "tax_rate": _("Empty: taxed at the customer's rate. Exempt and reverse-charged customers pay no tax."),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "description" in self.fields:
            self.fields["description"].required = False
        if "tax_rate" in self.fields:
            self.fields["tax_rate"].queryset = TaxRate.objects.filter(is_active=True)
        if self.instance.pk is not None and self.instance.unit_amount is not None:
            self.initial["unit_price"] = self.instance.unit_amount.amount.normalize()


class PendingFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("pending", _("Pending (next invoice)")), ("billed", _("Billed"))]

    def queryset(self, request, queryset):
        if self.value() in {"pending", "billed"}:
            return queryset.filter(invoice__isnull=self.value() == "pending")
        return queryset


class InvoiceItemAdmin(ServiceAdminMixin, admin.ModelAdmin):
    """Pending invoice items: one-off charges staff add to a customer's next invoice (and the
    prorations billing leaves for a subscription's next one). Only pending one-off charges can be
    changed or deleted; billed ones are read-only and link to their invoice."""

    form = InvoiceItemForm
    list_display = ["description", "customer", "amount_column", "status_column", "kind", "tax_rate", "created_at"]
    list_filter = [PendingFilter, "kind", "amount_currency", "tax_rate"]
    list_select_related = ["customer", "invoice", "tax_rate"]
    search_fields = ["description", "customer__name", "customer__external_id", "invoice__number"]
    date_hierarchy = "created_at"
    autocomplete_fields = ["customer", "product"]
    ordering = ["-created_at", "-id"]
    actions = None  # no bulk delete: each item goes through the service

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["customer", "description", "quantity", "unit_price", "product", "tax_rate",
                    "period_start_at", "period_end_at"]  # fmt: skip
        editable = ["description", "quantity", "unit_price", "product", "tax_rate", "period_start_at", "period_end_at"]
        shown = ["customer", "status_column", "kind", "amount_column", "explanation_text", "subscription", "created_at",
                 "updated_at", "created_by"]  # fmt: skip
        if self._editable(obj):
            return [shown[0], shown[1], *editable, *shown[2:]]
        return [*shown[:4], "description", "quantity", "unit_price_column", "product", "tax_rate",
                "period_start_at", "period_end_at", *shown[4:]]  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        fixed = ["customer", "status_column", "kind", "amount_column", "explanation_text", "subscription",
                 "created_at", "updated_at", "created_by", "unit_price_column"]  # fmt: skip
        if self._editable(obj) and self.has_change_permission(request, obj):
            return fixed
        return [*fixed, "description", "quantity", "product", "tax_rate", "period_start_at", "period_end_at"]

    @staticmethod
    def _editable(obj: InvoiceItem | None) -> bool:
        return obj is None or (obj.invoice_id is None and obj.kind == InvoiceLineKind.ONE_OFF)

    def has_change_permission(self, request, obj=None):
        if obj is not None and not self._editable(obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and not self._editable(obj):
            return False
        return super().has_delete_permission(request, obj)

    def call_service(self, service, /, **kwargs):
        try:
            return service(**kwargs)
        except ApplicationError as exc:
            raise ServiceRejected(_form_fields(exc)) from exc

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        charge = OneOffCharge(
            quantity=data["quantity"], unit_amount=data["unit_price"], description=data.get("description") or "",
            product_id=data["product"].pk if data.get("product") else None,
            tax_rate_id=data["tax_rate"].pk if data.get("tax_rate") else None,
            period_start_at=data.get("period_start_at"), period_end_at=data.get("period_end_at"),
        )  # fmt: skip
        if change:
            item = self.call_service(invoice_item_update, item_id=obj.pk, changes=charge.__dict__)
        else:
            item = self.call_service(
                invoice_item_create, customer_id=data["customer"].pk, charge=charge, actor=request.user
            )
        adopt(obj, item)

    def delete_model(self, request, obj):
        self.call_service(invoice_item_delete, item_id=obj.pk)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except ServiceRejected as rejected:
            self.message_user(request, rejected.error.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:invoices_invoiceitem_changelist"))

    @admin.display(description=_("amount"), ordering="amount")
    def amount_column(self, item: InvoiceItem) -> str:
        return money_text(item.amount.amount, item.currency)

    @admin.display(description=_("unit price"))
    def unit_price_column(self, item: InvoiceItem) -> str:
        return money_text(item.unit_amount.amount, item.currency) if item.unit_amount is not None else "—"

    @admin.display(description=_("status"))
    def status_column(self, item: InvoiceItem) -> str:
        if item.invoice_id is None:
            return status_badge(gettext("Pending: the next invoice"), "info")
        url = reverse("admin:invoices_invoice_change", args=[item.invoice_id])
        return format_html('{} <a href="{}">{}</a>', status_badge(gettext("Billed"), "success"), url, item.invoice)

    @admin.display(description=_("how computed"))
    def explanation_text(self, item: InvoiceItem) -> str:
        return " ".join(item.explanation)


admin.site.register(InvoiceItem, InvoiceItemAdmin)


# --- The one-off invoice page ----------------------------------------------------------------------------


class OneOffInvoiceForm(forms.Form):
    memo = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label=_("memo"),
        help_text=_("Printed on the bill."),
    )
    due_on = forms.DateField(
        required=False, label=_("due on"), help_text=_("YYYY-MM-DD. Empty: the customer's payment terms.")
    )
    finalize = forms.BooleanField(
        required=False,
        label=_("Issue at once"),
        help_text=_(
            "Number it, render and email the PDF and collect it now. Otherwise it is a draft the billing run "
            "issues when the review time is over."
        ),
    )


class OneOffLineForm(forms.Form):
    description = forms.CharField(required=False, max_length=500, label=_("description"))
    quantity = forms.DecimalField(required=False, max_digits=19, decimal_places=6, label=_("quantity"))
    unit_price = forms.DecimalField(required=False, max_digits=28, decimal_places=12, label=_("unit price"))
    product = forms.ModelChoiceField(queryset=Product.objects.order_by("name"), required=False, label=_("product"))
    tax_rate = forms.ModelChoiceField(
        queryset=TaxRate.objects.filter(is_active=True),
        required=False,
        empty_label=_("The customer's rate"),
        label=_("tax rate"),
    )
    period_start_at = forms.DateTimeField(
        required=False, label=_("service period start"), help_text=_("YYYY-MM-DD HH:MM (UTC)")
    )
    period_end_at = forms.DateTimeField(required=False, label=_("service period end"))

    def clean(self):
        data = super().clean()
        filled = any(value not in (None, "") for value in data.values())
        if filled:
            for name in ("quantity", "unit_price"):
                if data.get(name) is None and name not in self.errors:
                    self.add_error(name, gettext("Required on a line."))
        return data

    def charge(self) -> OneOffCharge | None:
        data = self.cleaned_data
        if not data or all(value in (None, "") for value in data.values()):
            return None
        return OneOffCharge(
            quantity=data["quantity"], unit_amount=data["unit_price"], description=data.get("description") or "",
            product_id=data["product"].pk if data.get("product") else None,
            tax_rate_id=data["tax_rate"].pk if data.get("tax_rate") else None,
            period_start_at=data.get("period_start_at"), period_end_at=data.get("period_end_at"),
        )  # fmt: skip


OneOffLineFormSet = formset_factory(OneOffLineForm, extra=3, max_num=MAX_LINES, validate_max=True)


def one_off_invoice_view(model_admin: admin.ModelAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    """A one-off invoice for the customer: a few lines, then issued (or a draft for review)."""
    if not request.user.has_perm("invoices.add_invoice"):
        raise PermissionDenied
    customer = Customer.objects.filter(pk=unquote(object_id)).first() if str(object_id).isdigit() else None
    if customer is None:
        raise Http404(gettext("No such customer."))
    form = OneOffInvoiceForm(request.POST or None)
    lines = OneOffLineFormSet(request.POST or None, prefix="lines")
    if request.method == "POST" and form.is_valid() and lines.is_valid():
        filled = [(index, line.charge()) for index, line in enumerate(lines.forms)]
        filled = [(index, charge) for index, charge in filled if charge is not None]
        try:
            with transaction.atomic():
                invoice = invoice_one_off_create(
                    customer_id=customer.pk, charges=[charge for _, charge in filled], memo=form.cleaned_data["memo"],
                    due_on=form.cleaned_data["due_on"], finalize=form.cleaned_data["finalize"], actor=request.user,
                )  # fmt: skip
        except ApplicationError as error:
            _place_errors(_form_fields(error), form, lines, [index for index, _ in filled])
        else:
            total = money_text(invoice.total.amount, invoice.currency)
            if invoice.number:
                message = gettext("One-off invoice issued as %(number)s: %(total)s.") % {
                    "number": invoice.number,
                    "total": total,
                }
            else:
                message = gettext("One-off invoice created as a draft for review: %(total)s.") % {"total": total}
            messages.success(request, message)
            return HttpResponseRedirect(reverse("admin:invoices_invoice_change", args=[invoice.pk]))
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": Customer._meta,
        "customer": customer,
        "form": form,
        "lines": lines,
        "title": gettext("New one-off invoice for %(customer)s") % {"customer": customer.name},
        "change_url": reverse("admin:accounts_customer_change", args=[customer.pk]),
        "currency": customer.currency,
    }
    return TemplateResponse(request, "admin/accounts/customer/one_off_invoice.html", context)


def _place_errors(error: ApplicationError, form: forms.Form, lines, line_indexes: list[int]) -> None:
    """The service's errors on the fields they name: `lines.<n>.<field>` on the n-th filled line."""
    placed = False
    for name, messages_ in error.fields.items():
        parts = name.split(".")
        if parts[0] == "lines" and len(parts) == 3 and parts[1].isdigit() and int(parts[1]) < len(line_indexes):
            line_form = lines.forms[line_indexes[int(parts[1])]]
            field = parts[2] if parts[2] in line_form.fields else None
            for message in messages_:
                line_form.add_error(field, message)
            placed = True
        elif name in form.fields:
            for message in messages_:
                form.add_error(name, message)
            placed = True
        else:
            for message in messages_:
                form.add_error(None, f"{message}" if name == "lines" else f"{name}: {message}")
            placed = True
    if not placed:
        form.add_error(None, error.message)


def customer_one_off_links(request: HttpRequest, customer: Customer) -> list[tuple[str, str, str]]:
    """The customer page's buttons for one-off charges the user may use: (id, label, url)."""
    links = []
    if request.user.has_perm("invoices.add_invoiceitem"):
        url = reverse("admin:invoices_invoiceitem_add") + f"?customer={customer.pk}"
        links.append(("customer-add-invoice-item", gettext("Add invoice item"), url))
    if request.user.has_perm("invoices.add_invoice"):
        url = reverse("admin:accounts_customer_one_off_invoice", args=[customer.pk])
        links.append(("customer-one-off-invoice", gettext("New one-off invoice"), url))
    if request.user.has_perm("invoices.view_invoiceitem"):
        url = reverse("admin:invoices_invoiceitem_changelist") + f"?customer__id__exact={customer.pk}&status=pending"
        links.append(("customer-pending-items", gettext("Pending items"), url))
    return links
