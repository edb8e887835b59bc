"""Wallets for staff: each wallet with its balance and ledger (read-only: the ledger is append-only),
and actions that call the services one wallet or entry at a time — grant free credits, buy credits
(an invoice), void what is left of a lot — each with its reason on an intermediate page; CSV exports."""

import csv
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import DecimalField, Sum, Value
from django.db.models.functions import Coalesce
from django.http import HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.core.admin import ReadOnlyInline
from apps.core.errors import ApplicationError

from .constants import GrantCategory, PurchaseTrigger
from .models import CreditPurchase, PrepaidStatusChange, Wallet, WalletEntry
from .services.ledger import wallet_create, wallet_grant, wallet_lot_void
from .services.purchases import wallet_purchase

_ZERO = Value(Decimal(0), output_field=DecimalField(max_digits=19, decimal_places=4))


class GrantForm(forms.Form):
    credits = forms.DecimalField(max_digits=19, decimal_places=4, min_value=Decimal("0.0001"))
    category = forms.ChoiceField(choices=GrantCategory.choices)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), max_length=2000)
    expires_on = forms.DateField(required=False, help_text=_("YYYY-MM-DD; empty: the credits never expire."))


class PurchaseForm(forms.Form):
    credits = forms.DecimalField(max_digits=19, decimal_places=4, min_value=Decimal("0.0001"))
    expires_on = forms.DateField(required=False, help_text=_("YYYY-MM-DD; empty: the credits never expire."))


class VoidForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), max_length=2000)


def _csv_response(filename: str, header: list[str], rows) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow(header)
    writer.writerows(rows)
    return response


class _ActionPages:
    def _action_page(self, request, *, objects, form, action_name, title, explanation, submit_label):
        context = {
            **self.admin_site.each_context(request),  # type: ignore[attr-defined]
            "opts": self.opts,  # type: ignore[attr-defined]
            "title": title,
            "explanation": explanation,
            "objects": objects,
            "form": form,
            "action_name": action_name,
            "submit_label": submit_label,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/wallets/action_form.html", context)

    def _run_each(self, request, objects, run, describe) -> None:
        for obj in objects:
            try:
                result = run(obj)
            except ApplicationError as exc:
                fields = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in exc.fields.items())
                if fields:
                    text = gettext("%(object)s: %(message)s (%(fields)s)") % {
                        "object": obj, "message": exc.message, "fields": fields,
                    }  # fmt: skip
                else:
                    text = gettext("%(object)s: %(message)s") % {"object": obj, "message": exc.message}
                messages.error(request, text)
                continue
            messages.success(request, describe(obj, result))


class WalletEntryInline(ReadOnlyInline):
    model = WalletEntry
    fk_name = "wallet"
    fields = [
        "occurred_at", "kind", "credits", "amount", "lot", "expires_on", "category", "reason", "invoice", "credit_note",
        "actor",
    ]  # fmt: skip
    ordering = ["-occurred_at", "-id"]
    view_permission_from_parent = True


class CreditPurchaseInline(ReadOnlyInline):
    model = CreditPurchase
    fields = ["created_at", "credits", "expires_on", "trigger", "status", "invoice", "actor"]
    view_permission_from_parent = True


@admin.register(Wallet)
class WalletAdmin(_ActionPages, admin.ModelAdmin):
    list_display = ["name", "customer", "currency", "rate", "priority", "balance", "top_up_threshold"]
    list_select_related = ["customer"]
    list_filter = ["currency", "priority"]
    search_fields = ["name", "customer__name", "customer__external_id"]
    autocomplete_fields = ["customer"]
    inlines = [WalletEntryInline, CreditPurchaseInline]
    actions = ["grant_credits_selected", "buy_credits_selected", "export_csv"]
    fields = ["customer", "name", "currency", "rate", "priority", "balance", "top_up_threshold", "top_up_credits",
              "top_up_valid_days"]  # fmt: skip

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(balance=Coalesce(Sum("entries__credits"), _ZERO))

    def get_readonly_fields(self, request, obj=None):
        # The rate and currency are fixed once the wallet exists (its lots were valued at them).
        return ["currency", "balance"] + (["customer", "rate"] if obj is not None else [])

    @admin.display(description=_("balance (credits)"), ordering="balance")
    def balance(self, obj):
        return getattr(obj, "balance", None)

    def has_delete_permission(self, request, obj=None):
        return False  # its ledger is kept

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)  # name, priority, top-up settings
            return
        created = wallet_create(
            customer=obj.customer, name=obj.name, rate=obj.rate, priority=obj.priority,
            top_up_threshold=obj.top_up_threshold, top_up_credits=obj.top_up_credits,
            top_up_valid_days=obj.top_up_valid_days,
        )  # fmt: skip
        obj.pk, obj.currency = created.pk, created.currency

    def has_grant_credits_permission(self, request):
        return request.user.has_perm("wallets.grant_credits")

    def has_purchase_credits_permission(self, request):
        return request.user.has_perm("wallets.purchase_credits")

    @admin.action(description=_("Grant free credits to selected wallets…"), permissions=["grant_credits"])
    def grant_credits_selected(self, request, queryset):
        wallets = list(queryset.select_related("customer").order_by("pk"))
        form = GrantForm(request.POST if request.POST.get("post") == "yes" else None)
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            self._run_each(
                request, wallets,
                lambda wallet: wallet_grant(
                    wallet_id=wallet.pk, credits=data["credits"], category=data["category"], reason=data["reason"],
                    expires_on=data["expires_on"], actor=request.user,
                ),
                lambda wallet, entry: gettext("Granted %(credits)s credits to %(wallet)s.")
                % {"credits": entry.credits, "wallet": wallet},
            )  # fmt: skip
            return HttpResponseRedirect(request.get_full_path())
        return self._action_page(
            request, objects=wallets, form=form, action_name="grant_credits_selected",
            title=gettext("Grant free credits"),
            explanation=gettext("Free credits (a promotion, goodwill) are a discount, not revenue; the reason is kept "
            "in the wallet's ledger."), submit_label=gettext("Grant"),
        )  # fmt: skip

    @admin.action(description=_("Buy credits for selected wallets (an invoice)…"), permissions=["purchase_credits"])
    def buy_credits_selected(self, request, queryset):
        wallets = list(queryset.select_related("customer").order_by("pk"))
        form = PurchaseForm(request.POST if request.POST.get("post") == "yes" else None)
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            self._run_each(
                request, wallets,
                lambda wallet: wallet_purchase(
                    wallet_id=wallet.pk, credits=data["credits"], expires_on=data["expires_on"],
                    trigger=PurchaseTrigger.STAFF, actor=request.user,
                ),
                lambda wallet, purchase: gettext(
                    "Invoice %(invoice)s issued for %(credits)s credits of %(wallet)s; they are granted once it is "
                    "paid."
                ) % {"invoice": purchase.invoice.number, "credits": purchase.credits, "wallet": wallet},
            )  # fmt: skip
            return HttpResponseRedirect(request.get_full_path())
        return self._action_page(
            request, objects=wallets, form=form, action_name="buy_credits_selected", title=gettext("Buy credits"),
            explanation=gettext("Issues an invoice for the credits at the wallet's rate; the credits are granted when "
            "it is paid (by card or by bank transfer)."), submit_label=gettext("Issue the invoice"),
        )  # fmt: skip

    @admin.action(description=_("Export selected wallets as CSV"), permissions=["view"])
    def export_csv(self, request, queryset):
        rows = (
            [w.pk, w.customer.external_id, w.customer.name, w.name, w.currency, w.rate, w.priority, w.balance]
            for w in queryset.select_related("customer").order_by("pk")
        )
        header = ["id", "customer_external_id", "customer", "name", "currency", "rate", "priority", "balance"]
        return _csv_response("wallets.csv", header, rows)


@admin.register(WalletEntry)
class WalletEntryAdmin(_ActionPages, admin.ModelAdmin):
    """The ledger of every wallet, read-only; what is left of a lot can be voided, with a reason."""

    list_display = ["occurred_at", "kind", "wallet", "credits", "amount", "expires_on", "category", "invoice", "actor"]
    list_select_related = ["wallet__customer", "invoice", "actor"]
    list_filter = ["kind", "category", "wallet__currency", ("expires_on", admin.EmptyFieldListFilter)]
    search_fields = ["wallet__name", "wallet__customer__name", "wallet__customer__external_id", "reason"]
    date_hierarchy = "occurred_at"
    actions = ["void_selected", "export_csv"]
    readonly_fields = [
        "wallet", "kind", "credits", "amount", "lot", "expires_on", "category", "reason", "actor", "invoice",
        "returned_from", "credit_note", "occurred_at",
    ]  # fmt: skip
    fields = readonly_fields

    def has_add_permission(self, request):
        return False  # grants and purchases go through the wallet's actions

    def has_change_permission(self, request, obj=None):
        return False  # append-only

    def has_delete_permission(self, request, obj=None):
        return False  # append-only

    def has_void_credits_permission(self, request):
        return request.user.has_perm("wallets.void_credits")

    @admin.action(description=_("Void what is left of selected grants and purchases…"), permissions=["void_credits"])
    def void_selected(self, request, queryset):
        entries = list(queryset.select_related("wallet__customer").order_by("pk"))
        form = VoidForm(request.POST if request.POST.get("post") == "yes" else None)
        if form.is_bound and form.is_valid():
            reason = form.cleaned_data["reason"]
            self._run_each(
                request, entries,
                lambda entry: wallet_lot_void(entry_id=entry.pk, reason=reason, actor=request.user),
                lambda entry, void: gettext("Voided %(credits)s credits of %(wallet)s.")
                % {"credits": -void.credits, "wallet": entry.wallet},
            )  # fmt: skip
            return HttpResponseRedirect(request.get_full_path())
        return self._action_page(
            request, objects=entries, form=form, action_name="void_selected", title=gettext("Void credits"),
            explanation=gettext("Takes what is left of each lot out of its wallet, as a void entry with this reason."),
            submit_label=gettext("Void"),
        )  # fmt: skip

    @admin.action(description=_("Export selected entries as CSV"), permissions=["view"])
    def export_csv(self, request, queryset):
        rows = (
            [e.pk, e.occurred_at.isoformat(), e.wallet.customer.external_id, e.wallet.name, e.kind, e.credits,
             e.amount.amount, str(e.amount.currency), e.lot_id or "", e.expires_on or "", e.category, e.reason,
             e.invoice.number if e.invoice and e.invoice.number else "", e.actor.username if e.actor else ""]
            for e in queryset.select_related("wallet__customer", "invoice", "actor").order_by("occurred_at", "pk")
        )  # fmt: skip
        header = ["id", "occurred_at", "customer_external_id", "wallet", "kind", "credits", "amount", "currency", "lot",
                  "expires_on", "category", "reason", "invoice", "actor"]  # fmt: skip
        return _csv_response("wallet-ledger.csv", header, rows)


@admin.register(CreditPurchase)
class CreditPurchaseAdmin(admin.ModelAdmin):
    list_display = ["created_at", "wallet", "credits", "expires_on", "trigger", "status", "invoice"]
    list_select_related = ["wallet__customer", "invoice"]
    list_filter = ["status", "trigger"]
    search_fields = ["wallet__name", "wallet__customer__name", "invoice__number"]
    date_hierarchy = "created_at"
    readonly_fields = ["wallet", "invoice", "credits", "expires_on", "trigger", "status", "actor"]

    def has_add_permission(self, request):
        return False  # bought through the wallet's action, the API or the portal

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PrepaidStatusChange)
class PrepaidStatusChangeAdmin(admin.ModelAdmin):
    """When prepaid customers ran out of credits and had credits again (each one a webhook event)."""

    list_display = ["occurred_at", "customer", "credits_exhausted", "credits", "entry"]
    list_select_related = ["customer", "entry"]
    list_filter = ["credits_exhausted"]
    search_fields = ["customer__name", "customer__external_id"]
    date_hierarchy = "occurred_at"
    readonly_fields = ["customer", "credits_exhausted", "credits", "entry", "occurred_at"]
    fields = readonly_fields

    def has_add_permission(self, request):
        return False  # written by the ledger's services

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
