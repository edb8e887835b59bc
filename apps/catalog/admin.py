from django import forms
from django.contrib import admin
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html

from .models import Plan, PlanPrice, Product


def _currencies_in(forms_: list[forms.Form]) -> list[tuple[forms.Form, str]]:
    """(form, currency) for every price form that will be saved."""
    found = []
    for form in forms_:
        if not getattr(form, "cleaned_data", None) or form.cleaned_data.get("DELETE"):
            continue
        amount = form.cleaned_data.get("amount")
        if amount is not None:
            found.append((form, str(amount.currency)))
    return found


class PlanPriceForm(forms.ModelForm):
    class Meta:
        model = PlanPrice
        fields = ["plan", "amount"]

    def clean(self):
        cleaned_data = super().clean()
        # The currency is part of the `amount` form field, so model validation leaves the unique
        # (plan, currency) constraint out: check it here rather than hit the database constraint.
        plan, amount = cleaned_data.get("plan"), cleaned_data.get("amount")
        if plan is not None and plan.pk is not None and amount is not None:
            currency = str(amount.currency)
            taken = PlanPrice.objects.filter(plan=plan, amount_currency=currency).exclude(pk=self.instance.pk)
            if taken.exists():
                self.add_error("amount", f"The plan already has a price in {currency}.")
        return cleaned_data


class PlanPriceInlineFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        # The unique constraint (plan, currency) is checked by each form against the database only;
        # two new rows in the same currency would reach the database. Refuse them here.
        seen: set[str] = set()
        for form, currency in _currencies_in(self.forms):
            if currency in seen:
                form.add_error("amount", f"The plan already has a price in {currency}.")
            seen.add(currency)


class PlanPriceInline(admin.TabularInline):
    model = PlanPrice
    form = PlanPriceForm
    formset = PlanPriceInlineFormSet
    fields = ["amount", "updated_at"]
    readonly_fields = ["updated_at"]
    extra = 0
    min_num = 1
    verbose_name = "price"
    verbose_name_plural = "prices (one per currency)"


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "plan_count", "is_archived", "created_at"]
    list_filter = ["is_archived"]
    search_fields = ["name", "code"]
    readonly_fields = ["created_at", "updated_at"]
    fields = ["name", "code", "description", "is_archived", "created_at", "updated_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(plan_count=Count("plans"))

    @admin.display(description="plans", ordering="plan_count")
    def plan_count(self, product: Product) -> str:
        url = reverse("admin:catalog_plan_changelist") + f"?product__id__exact={product.pk}"
        return format_html('<a href="{}">{}</a>', url, product.plan_count)


class PlanAdminForm(forms.ModelForm):
    class Meta:
        model = Plan
        fields = ["product", "code", "name", "description", "interval", "interval_count", "is_archived"]

    def clean_product(self):
        product = self.cleaned_data["product"]
        if product is not None and product.is_archived and product.pk != self.instance.product_id:
            raise forms.ValidationError("This product is archived and takes no new plans.")
        return product


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    form = PlanAdminForm
    list_display = ["name", "code", "product", "billing_interval", "price_list", "is_archived", "created_at"]
    list_filter = ["interval", "is_archived", ("product", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "code", "product__name", "product__code"]
    list_select_related = ["product"]
    autocomplete_fields = ["product"]
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["product", "name", "code", "description"]}),
        ("Billing", {"fields": ["interval", "interval_count", "is_archived"]}),
        ("Record", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]
    inlines = [PlanPriceInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("prices")

    @admin.display(description="billed", ordering="interval")
    def billing_interval(self, plan: Plan) -> str:
        return plan.interval_label

    @admin.display(description="prices")
    def price_list(self, plan: Plan) -> str:
        return ", ".join(str(price.amount) for price in plan.prices.all()) or "—"


@admin.register(PlanPrice)
class PlanPriceAdmin(admin.ModelAdmin):
    form = PlanPriceForm
    list_display = ["plan", "amount", "currency", "plan_interval", "updated_at"]
    list_filter = ["amount_currency", "plan__interval", "plan__is_archived", "plan__product"]
    search_fields = ["plan__name", "plan__code", "plan__product__name"]
    list_select_related = ["plan", "plan__product"]
    autocomplete_fields = ["plan"]
    fields = ["plan", "amount", "created_at", "updated_at"]
    readonly_fields = ["created_at", "updated_at"]

    @admin.display(description="currency", ordering="amount_currency")
    def currency(self, price: PlanPrice) -> str:
        return str(price.amount.currency)

    @admin.display(description="interval", ordering="plan__interval")
    def plan_interval(self, price: PlanPrice) -> str:
        return price.plan.interval_label
