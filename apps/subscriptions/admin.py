"""The subscriptions app's own admin pages (the subscription pages themselves combine several apps and
live in apps.backoffice): discounts, the coupons redeemed for a customer or a subscription."""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from apps.core.admin import ServiceAdminMixin, adopt, status_badge

from . import services
from .models import Discount


class DiscountAddForm(forms.ModelForm):
    class Meta:
        model = Discount
        fields = ["coupon", "customer", "subscription"]
        help_texts = {
            "customer": _("The discount applies to every subscription of this customer. Give this or a subscription."),
            "subscription": _("The discount applies to this subscription only."),
        }

    def _post_clean(self):
        # No model validation here: `coupon_redeem` validates and places its messages on the fields.
        pass


class DiscountActiveFilter(admin.SimpleListFilter):
    title = _("active")
    parameter_name = "active"

    def lookups(self, request, model_admin):
        return [("yes", _("Active")), ("no", _("Ended"))]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(ended_at__isnull=self.value() == "yes")
        return queryset


@admin.register(Discount)
class DiscountAdmin(ServiceAdminMixin, admin.ModelAdmin):
    """Redeemed coupons. Added through `coupon_redeem` (refusals are form errors); shown, never edited."""

    list_display = ["reference", "coupon", "target", "periods", "starts_at", "ended_at", "state"]
    list_filter = [DiscountActiveFilter, ("coupon", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["coupon__code", "coupon__name", "customer__name", "subscription__customer__name"]
    list_select_related = ["coupon", "customer", "subscription__customer"]
    date_hierarchy = "starts_at"
    autocomplete_fields = ["coupon", "customer", "subscription"]
    fields = ["coupon", "customer", "subscription", "starts_at", "periods_applied", "ended_at", "created_by"]
    add_fields = ["coupon", "customer", "subscription"]

    def get_fields(self, request, obj=None):
        return self.add_fields if obj is None else self.fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = DiscountAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description=_("discount"), ordering="id")
    def reference(self, discount: Discount) -> str:
        return f"#{discount.pk}"

    @admin.display(description=_("applies to"))
    def target(self, discount: Discount) -> str:
        if discount.subscription_id is not None:
            return f"Subscription #{discount.subscription_id} ({discount.subscription.customer})"
        return str(discount.customer)

    @admin.display(description=_("invoices discounted"), ordering="periods_applied")
    def periods(self, discount: Discount) -> str:
        limit = discount.coupon.period_limit
        return f"{discount.periods_applied} / {limit if limit is not None else 'forever'}"

    @admin.display(description=_("state"))
    def state(self, discount: Discount) -> str:
        return status_badge("active", "success") if discount.is_active else status_badge("ended", "neutral")

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        created = self.call_service(
            services.coupon_redeem,
            coupon=data["coupon"],
            customer=data.get("customer"),
            subscription=data.get("subscription"),
            actor=request.user,
        )
        adopt(obj, created)
