"""The subscriptions app's own admin pages (the subscription pages themselves combine several apps and
live in apps.backoffice): discounts, the coupons redeemed for a customer or a subscription; custom prices
of one subscription."""

import json
from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.catalog import pricing
from apps.catalog.models import Charge
from apps.catalog.services import PriceInput, TierInput
from apps.core.admin import ServiceAdminMixin, ServiceRejected, adopt, status_badge
from apps.core.errors import ApplicationError

from . import services
from .models import Discount, Subscription, SubscriptionPriceOverride, SubscriptionProgressiveBilling


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
        if limit is None:
            return gettext("%(applied)s / forever") % {"applied": discount.periods_applied}
        return f"{discount.periods_applied} / {limit}"

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


# --- custom prices ---------------------------------------------------------------------------------


class PriceOverrideForm(forms.ModelForm):
    """A custom price: the fields of a catalog price, read by the charge's price model; tiers as JSON."""

    tiers = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        label=_("tiers"),
        help_text=_(
            'Graduated, volume and graduated percentage prices: e.g. [{"up_to": "1000", "unit_amount": "0.05"}, '
            '{"up_to": null, "unit_amount": "0.03"}] (the last tier has no upper bound).'
        ),
    )

    class Meta:
        model = SubscriptionPriceOverride
        fields = [
            "subscription", "charge", "amount", "tiers", "package_size", "package_rounding", "included_units",
            "percentage", "fixed_fee", "min_per_transaction", "max_per_transaction", "minimum_amount", "note",
        ]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["charge"].queryset = Charge.objects.select_related("plan_version__plan")
        self.fields["charge"].label_from_instance = lambda charge: f"{charge.plan_version}: {charge.name}"
        subscription_id = self.initial.get("subscription")
        if not self.is_bound and subscription_id and str(subscription_id).isdigit():
            # Opened from a subscription's page: offer the charges of its plan version only.
            self.fields["charge"].queryset = self.fields["charge"].queryset.filter(
                plan_version__subscriptions__pk=int(subscription_id)
            )
        if self.instance.pk is not None:
            self.initial["tiers"] = json.dumps(self.instance.tiers) if self.instance.tiers else ""

    def clean_tiers(self) -> list[TierInput]:
        text = (self.cleaned_data.get("tiers") or "").strip()
        if not text:
            return []
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(_("This is not valid JSON: %(error)s.") % {"error": exc.msg}) from exc
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise forms.ValidationError(_("Give a list of tiers, each an object with up_to and unit_amount."))
        tiers = []
        for number, row in enumerate(rows, start=1):
            try:
                tiers.append(
                    TierInput(
                        up_to=None if row.get("up_to") in (None, "") else Decimal(str(row["up_to"])),
                        unit_amount=Decimal(str(row.get("unit_amount") or 0)),
                        flat_amount=Decimal(str(row.get("flat_amount") or 0)),
                        percentage=Decimal(str(row.get("percentage") or 0)),
                    )
                )
            except InvalidOperation as exc:
                raise forms.ValidationError(
                    _("Tier %(number)s: every value is a number.") % {"number": number}
                ) from exc
        return tiers

    def _post_clean(self):
        # No model validation here: `subscription_price_override_set` validates and places its messages.
        pass


@admin.register(SubscriptionPriceOverride)
class SubscriptionPriceOverrideAdmin(ServiceAdminMixin, admin.ModelAdmin):
    """Custom prices: set and replaced through `subscription_price_override_set` (refusals are form
    errors on their fields), removed through `subscription_price_override_remove`."""

    form = PriceOverrideForm
    list_display = ["subscription", "charge", "custom_price", "plan_price", "updated_at"]
    search_fields = ["subscription__customer__name", "subscription__customer__external_id", "charge__name"]
    list_select_related = ["subscription__customer", "subscription__plan", "charge"]
    autocomplete_fields = ["subscription"]

    def get_readonly_fields(self, request, obj=None):
        return ["subscription", "charge"] if obj is not None else []

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description=_("custom price"))
    def custom_price(self, override: SubscriptionPriceOverride) -> str:
        return pricing.price_describe(override.to_spec())

    @admin.display(description=_("plan price"))
    def plan_price(self, override: SubscriptionPriceOverride) -> str:
        price = override.charge.price_for(override.currency)
        return pricing.price_describe(price.to_spec()) if price is not None else "—"

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        subscription = obj.subscription if change else data["subscription"]
        charge = obj.charge if change else data["charge"]
        price = PriceInput(
            currency=subscription.currency,
            **{name: data[name] for name in PRICE_FIELDS},
            tiers=data["tiers"],
        )
        try:
            saved = services.subscription_price_override_set(
                subscription_id=subscription.pk, charge_id=charge.pk, price=price, note=data["note"], actor=request.user
            )
        except ApplicationError as exc:
            # Tier problems ("tiers.1.up_to") are shown on the tiers field.
            fields: dict[str, list[str]] = {}
            for key, messages in exc.fields.items():
                fields.setdefault("tiers" if key.startswith("tiers") else key, []).extend(messages)
            raise ServiceRejected(ApplicationError(exc.message, fields=fields)) from exc
        adopt(obj, saved)

    def delete_model(self, request, obj):
        self.call_service(
            services.subscription_price_override_remove,
            subscription_id=obj.subscription_id,
            charge_id=obj.charge_id,
            actor=request.user,
        )

    def response_post_save_add(self, request, obj):
        return self._back_to_subscription(request, obj) or super().response_post_save_add(request, obj)

    def response_post_save_change(self, request, obj):
        return self._back_to_subscription(request, obj) or super().response_post_save_change(request, obj)

    def _back_to_subscription(self, request, obj):
        if "_continue" in request.POST or "_addanother" in request.POST:
            return None
        return HttpResponseRedirect(reverse("admin:subscriptions_subscription_change", args=[obj.subscription_id]))


PRICE_FIELDS = (
    "amount", "package_size", "package_rounding", "included_units", "percentage", "fixed_fee",
    "min_per_transaction", "max_per_transaction", "minimum_amount",
)  # fmt: skip


def price_override_add_url(subscription_id: int) -> str:
    return f"{reverse('admin:subscriptions_subscriptionpriceoverride_add')}?subscription={subscription_id}"


class SubscriptionProgressiveBillingForm(forms.ModelForm):
    """Thresholds typed as "500, 1200"; checked by `subscription_progressive_billing_set` (its refusals
    are shown on their fields)."""

    thresholds = forms.CharField(
        required=False,
        label=_("thresholds"),
        help_text=_(
            "Usage amounts to date (in the subscription's currency) that trigger an interim invoice, separated by "
            "commas, e.g. 500, 1200. No thresholds and no recurring one: progressive billing off for it."
        ),
    )

    class Meta:
        model = SubscriptionProgressiveBilling
        fields = ["subscription", "thresholds", "every", "scope"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scope"].required = False  # left out: the period's usage
        if self.instance.pk is not None:
            self.initial["thresholds"] = ", ".join(self.instance.amounts)

    def _post_clean(self):
        pass  # the service validates and places its messages on the fields


@admin.register(SubscriptionProgressiveBilling)
class SubscriptionProgressiveBillingAdmin(ServiceAdminMixin, admin.ModelAdmin):
    """A subscription's own progressive billing thresholds (instead of its plan version's): set through
    `subscription_progressive_billing_set`, removed through `subscription_progressive_billing_remove`."""

    form = SubscriptionProgressiveBillingForm
    list_display = ["subscription", "summary", "updated_at"]
    search_fields = ["subscription__customer__name", "subscription__customer__external_id"]
    list_select_related = ["subscription__customer", "subscription__plan"]
    autocomplete_fields = ["subscription"]

    def get_readonly_fields(self, request, obj=None):
        return ["subscription"] if obj is not None else []

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description=_("thresholds"))
    def summary(self, row: SubscriptionProgressiveBilling) -> str:
        return str(row)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        subscription = obj.subscription if change else data["subscription"]
        raw = [part.strip() for part in (data.get("thresholds") or "").split(",") if part.strip()]
        saved = self.call_service(
            services.subscription_progressive_billing_set,
            subscription_id=subscription.pk,
            amounts=raw,
            every=data.get("every"),
            scope=data.get("scope"),
            actor=request.user,
        )
        adopt(obj, saved)

    def delete_model(self, request, obj):
        self.call_service(
            services.subscription_progressive_billing_remove, subscription_id=obj.subscription_id, actor=request.user
        )

    def response_post_save_add(self, request, obj):
        return self._back_to_subscription(request, obj) or super().response_post_save_add(request, obj)

    def response_post_save_change(self, request, obj):
        return self._back_to_subscription(request, obj) or super().response_post_save_change(request, obj)

    def _back_to_subscription(self, request, obj):
        if "_continue" in request.POST or "_addanother" in request.POST:
            return None
        return HttpResponseRedirect(reverse("admin:subscriptions_subscription_change", args=[obj.subscription_id]))


def progressive_billing_url(subscription: Subscription) -> str:
    """Where staff set the subscription's own thresholds: its row's page, or the add page."""
    row_id = SubscriptionProgressiveBilling.objects.filter(subscription=subscription).values_list("pk", flat=True)
    found = row_id.first()
    if found is not None:
        return reverse("admin:subscriptions_subscriptionprogressivebilling_change", args=[found])
    return f"{reverse('admin:subscriptions_subscriptionprogressivebilling_add')}?subscription={subscription.pk}"
