"""Stripe in the finance admin: each customer's Stripe customer and default card, read-only (cards
change through the portal or the API, never by editing these rows). Reads dj-stripe's synced rows:
no call to Stripe while a page renders."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from djstripe.models import PaymentMethod as StripePaymentMethod

from .models import StripeCustomer, StripeDispute


def card_label(payment_method_id: str | None) -> str:
    if not payment_method_id:
        return "—"
    row = StripePaymentMethod.objects.filter(id=payment_method_id).only("stripe_data").first()
    card = (row.stripe_data or {}).get("card") if row else None
    if not card:
        return payment_method_id
    brand = str(card.get("brand", "card")).title()
    return f"{brand} •••• {card.get('last4')} ({card.get('exp_month')}/{card.get('exp_year')})"


@admin.register(StripeCustomer)
class StripeCustomerAdmin(admin.ModelAdmin):
    list_display = ["customer", "stripe_customer", "default_card", "created_at"]
    list_select_related = ["customer", "djstripe_customer"]
    search_fields = ["customer__name", "customer__email", "djstripe_customer__id"]
    readonly_fields = ["customer", "stripe_customer", "default_card", "created_at"]
    fields = readonly_fields
    date_hierarchy = "created_at"

    @admin.display(description=_("Stripe customer"))
    def stripe_customer(self, obj: StripeCustomer) -> str:
        return obj.stripe_customer_id

    @admin.display(description=_("default card"))
    def default_card(self, obj: StripeCustomer) -> str:
        return card_label(obj.default_payment_method_id)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(StripeDispute)
class StripeDisputeAdmin(admin.ModelAdmin):
    """Disputes (chargebacks) Stripe reported on our card payments; answered in Stripe's dashboard."""

    list_display = ["stripe_dispute_id", "payment", "amount", "reason", "created_at"]
    list_select_related = ["payment"]
    search_fields = ["stripe_dispute_id", "payment__customer__name", "payment__provider_payment_id"]
    list_filter = ["reason"]
    readonly_fields = fields = ["stripe_dispute_id", "payment", "amount", "reason", "created_at"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class StripeCustomerInline(admin.StackedInline):
    """On the customer page (apps.backoffice): its Stripe customer id and default card."""

    model = StripeCustomer
    fields = readonly_fields = ["stripe_customer", "default_card"]
    can_delete = False
    extra = 0
    max_num = 0
    verbose_name = verbose_name_plural = _("Stripe")
    stripe_customer = StripeCustomerAdmin.stripe_customer
    default_card = StripeCustomerAdmin.default_card

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
