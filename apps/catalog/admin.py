"""Catalog admin: products, plans, plan versions edited with their charges, prices and tiers inline,
and a live price calculator on each price.

A plan version with subscribers is read-only everywhere (inlines included); "New version from this
one" copies it into an editable version. Validation is the pricing engine's (`pricing.price_validate`
on each price, `services.charges_validate` and `services.minimum_commitments_validate` on the whole
version), shown on the fields it concerns. Each price shows only the fields of its charge's price
model (`static/catalog/price_model_fields.js` on the version page, the server on a price's own page).
"""

from decimal import Decimal, InvalidOperation

import nested_admin
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.db.models import Count, Max
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from djmoney.money import Money

from apps.core.admin import ServiceAdminMixin, adopt, staff_money
from apps.core.errors import ApplicationError, ValidationFailed

from . import pricing, services
from .constants import DEFAULT_LATENESS_WINDOW_DAYS, TIERED_MODELS, CouponDuration, DiscountType, PriceModelChoice
from .models import (
    BillableMetric,
    Charge,
    Coupon,
    CouponAmount,
    Feature,
    FeatureGrant,
    MinimumCommitment,
    Plan,
    PlanVersion,
    Price,
    PriceTier,
    Product,
    ProgressiveBilling,
    dimension_label,
)
from .progressive import schedule_amounts_json, schedule_clean


def _version_of(obj) -> PlanVersion | None:
    if isinstance(obj, PlanVersion):
        return obj
    if isinstance(obj, Charge):
        return obj.plan_version if obj.plan_version_id else None
    if isinstance(obj, Price):
        return obj.charge.plan_version if obj.charge_id else None
    if isinstance(obj, PriceTier):
        return obj.price.charge.plan_version if obj.price_id else None
    if isinstance(obj, MinimumCommitment | FeatureGrant | ProgressiveBilling):
        return obj.plan_version if obj.plan_version_id else None
    return None


def _is_locked(obj) -> bool:
    version = _version_of(obj)
    if version is None or version.pk is None:
        return False
    cached = getattr(version, "_locked", None)
    if cached is None:
        cached = version._locked = services.plan_version_is_locked(version)
    return cached


class LockedVersionPermissions:
    """Inlines and admins of things that belong to a plan version: read-only once it has subscribers."""

    def has_add_permission(self, request, obj=None):
        return not _is_locked(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return not _is_locked(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not _is_locked(obj) and super().has_delete_permission(request, obj)


class PlainDecimalField(forms.DecimalField):
    """Shows stored amounts without the padding zeros of their column ("27", "0.00012", not
    "27.000000000000")."""

    def prepare_value(self, value):
        if isinstance(value, Decimal):
            return format(value.normalize(), "f")
        return super().prepare_value(value)


DECIMAL_OVERRIDES = {models.DecimalField: {"form_class": PlainDecimalField}}


def _price_label(charge: Charge, price: Price) -> str:
    """Which price of a charge a row shows, in the reader's language: "USD (peak hours)"."""
    if price.time_window:
        return gettext("%(currency)s (peak hours)") % {"currency": price.currency}
    if price.dimension_values:
        return gettext("%(currency)s (%(dimensions)s)") % {
            "currency": price.currency, "dimensions": dimension_label(price.dimension_values),
        }  # fmt: skip
    if charge.has_peak_hours:
        return gettext("%(currency)s (off-peak hours)") % {"currency": price.currency}
    if charge.has_dimension_prices:
        return gettext("%(currency)s (default)") % {"currency": price.currency}
    return price.currency


def prices_table(version: PlanVersion) -> str:
    """A version's charges and prices as a finance person reads them."""
    rows = []
    for charge in version.charges.all():
        prices = sorted(charge.prices.all(), key=lambda price: (price.currency, bool(price.dimension_values)))
        described = format_html_join(
            mark_safe("<br>"),
            "<strong>{}</strong> {}",
            ((_price_label(charge, p), pricing.price_describe(p.to_spec())) for p in prices),
        )
        notes = [gettext("metric %(code)s") % {"code": charge.metric_code}] if charge.metric_code else []
        if charge.is_pooled:
            allowance = pricing.format_quantity(charge.pooled_allowance or Decimal(0))
            notes.append(gettext("pooled allowance %(allowance)s per subscription") % {"allowance": allowance})
            if charge.pool_code:
                notes.append(gettext("pool %(pool_code)s") % {"pool_code": charge.pool_code})
        if charge.has_peak_hours:
            notes.append(
                gettext("peak hours %(start)s–%(end)s")
                % {"start": f"{charge.peak_start_hour:02d}:00", "end": f"{charge.peak_end_hour:02d}:00"}
            )
        metric = "".join(f" · {note}" for note in notes)
        rows.append(
            format_html(
                "<tr><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td></tr>",
                charge.name,
                _("Recurring, billed in arrears")
                if charge.kind == "recurring" and charge.is_billed_in_arrears
                else charge.get_kind_display(),
                metric,
                charge.get_price_model_display(),
                described or "—",
            )  # fmt: skip
        )
    commitments = sorted(version.minimum_commitments.all(), key=lambda row: row.currency)
    if commitments:
        rows.append(
            format_html(
                "<tr><td>{}</td><td>{}</td><td>—</td><td>{}</td></tr>",
                _("Minimum commitment"),
                _("Per period"),
                format_html_join(
                    mark_safe("<br>"),
                    "<strong>{}</strong> {} {}",
                    (
                        (
                            row.currency,
                            staff_money(row.amount, row.currency),
                            _("(a true-up line makes up a period's shortfall)"),
                        )
                        for row in commitments
                    ),
                ),
            )
        )
    if not rows:
        return _("No charges yet.")
    head = format_html(
        "<tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>", _("Charge"), _("Kind"), _("Price model"), _("Prices")
    )
    return format_html(
        '<table class="prices-table"><thead>{}</thead><tbody>{}</tbody></table>',
        head,
        format_html_join("", "{}", ((row,) for row in rows)),
    )


def _decimal_or_none(value) -> Decimal | None:
    return value if isinstance(value, Decimal) else None


def _price_spec(model: str, data: dict, tiers: list[dict]) -> pricing.PriceSpec:
    """The price a form's cleaned data describes (fields the form leaves out at their defaults)."""
    return pricing.PriceSpec(
        model=pricing.PriceModel(model),
        currency=data["currency"],
        amount=data.get("amount") or Decimal(0),
        tiers=tuple(
            pricing.Tier(
                up_to=_decimal_or_none(tier.get("up_to")),
                unit_amount=tier.get("unit_amount") or Decimal(0),
                flat_amount=tier.get("flat_amount") or Decimal(0),
                percentage=tier.get("percentage") or Decimal(0),
            )
            for tier in tiers
        ),
        package_size=Decimal(data.get("package_size") or 1),
        package_rounding=data.get("package_rounding") or pricing.PackageRounding.UP,
        included_units=data.get("included_units") or Decimal(0),
        percentage=data.get("percentage") or Decimal(0),
        fixed_fee=data.get("fixed_fee") or Decimal(0),
        min_per_transaction=_decimal_or_none(data.get("min_per_transaction")),
        max_per_transaction=_decimal_or_none(data.get("max_per_transaction")),
        minimum_amount=_decimal_or_none(data.get("minimum_amount")),
    )


class PriceTierFormSet(nested_admin.formsets.NestedInlineFormSet):
    """Validates the whole price (its fields and its tiers) with the pricing engine, and places each
    problem on the field it concerns."""

    def clean(self):
        super().clean()
        price_form = getattr(self, "parent_form", None)
        if price_form is None or not hasattr(price_form, "cleaned_data"):
            return
        if price_form.cleaned_data.get("DELETE"):
            return
        charge_form = getattr(getattr(price_form, "parent_formset", None), "parent_form", None)
        model = None
        if charge_form is not None and hasattr(charge_form, "cleaned_data"):
            model = charge_form.cleaned_data.get("price_model")
        elif price_form.instance.charge_id:
            model = price_form.instance.charge.price_model
        if model not in PriceModelChoice.values:
            return
        tier_forms = [
            form
            for form in self.forms
            if hasattr(form, "cleaned_data") and form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        data = price_form.cleaned_data
        if not data.get("currency"):
            return
        problems = pricing.price_validate(_price_spec(model, data, [form.cleaned_data for form in tier_forms]))
        summary = []
        for key, field_messages in problems.items():
            parts = key.split(".")
            for message in field_messages:
                if parts[0] == "tiers" and len(parts) == 3 and parts[1].isdigit() and int(parts[1]) < len(tier_forms):
                    tier_form = tier_forms[int(parts[1])]
                    if parts[2] in tier_form.fields:
                        tier_form.add_error(parts[2], message)
                    else:
                        tier_form.add_error(None, message)
                elif parts[0] != "tiers" and key in price_form.fields:
                    price_form.add_error(key, message)
                    summary.append(f"{price_form.fields[key].label}: {message}")
                else:
                    summary.append(message)
        if summary or problems:
            raise forms.ValidationError(summary or _("Correct the tiers below."))


class PriceTierInline(LockedVersionPermissions, nested_admin.NestedTabularInline):
    formfield_overrides = DECIMAL_OVERRIDES
    model = PriceTier
    formset = PriceTierFormSet
    fields = ["position", "up_to", "unit_amount", "percentage", "flat_amount"]
    extra = 0
    sortable_field_name = "position"
    verbose_name = _("tier")
    verbose_name_plural = _(
        "tiers (graduated, volume and graduated percentage prices; leave the last tier's 'up to' empty)"
    )

    def get_fields(self, request, obj=None):
        if isinstance(obj, Price) and obj.charge_id:  # a price's own page: its model's tier fields only
            used = pricing.tier_fields(obj.charge.price_model)
            return ["position", *(name for name in self.fields if name in used)]
        return super().get_fields(request, obj)


class PriceInlineForm(forms.ModelForm):
    class Meta:
        model = Price
        fields = [
            "currency", "dimension_values", "amount", "package_size", "package_rounding", "included_units",
            "percentage", "fixed_fee", "min_per_transaction", "max_per_transaction", "minimum_amount",
        ]  # fmt: skip

    def clean_dimension_values(self):
        # An empty box is the default price ({}), never a JSON null; the values themselves are checked
        # against the charge's metric with the whole version (`services.charges_validate`).
        value = self.cleaned_data.get("dimension_values")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError(_('Give the dimension values as {"property": "value"}, or leave it empty.'))
        return value


class PriceInline(LockedVersionPermissions, nested_admin.NestedStackedInline):
    formfield_overrides = DECIMAL_OVERRIDES
    model = Price
    form = PriceInlineForm
    fields = [
        ("currency", "amount"),
        ("dimension_values", "time_window"),
        ("package_size", "package_rounding", "included_units"),
        ("percentage", "fixed_fee", "min_per_transaction", "max_per_transaction"),
        "minimum_amount",
        "calculator_link",
    ]
    readonly_fields = ["calculator_link"]
    inlines = [PriceTierInline]
    extra = 0
    verbose_name_plural = _("prices (one per currency)")

    @admin.display(description=_("calculator"))
    def calculator_link(self, price: Price) -> str:
        if price.pk is None:
            return _("Save to try this price in the calculator.")
        url = reverse("admin:catalog_price_change", args=[price.pk])
        return format_html('<a href="{}">{}</a>', url, _("Open the price calculator"))


class ChargeInline(LockedVersionPermissions, nested_admin.NestedStackedInline):
    model = Charge
    fields = [
        ("position", "kind", "name"),
        ("price_model", "metric_code", "billing_timing"),
        ("pooled_allowance", "pool_code"),
        ("peak_start_hour", "peak_end_hour"),
    ]
    inlines = [PriceInline]
    extra = 0
    sortable_field_name = "position"


class MinimumCommitmentInline(LockedVersionPermissions, nested_admin.NestedTabularInline):
    formfield_overrides = DECIMAL_OVERRIDES
    model = MinimumCommitment
    fields = ["currency", "amount"]
    extra = 0
    verbose_name = _("minimum commitment")
    verbose_name_plural = _(
        "minimum commitment per period (one per currency the charges are priced in; fees and usage before tax "
        "and discounts; a true-up line makes up a period's shortfall)"
    )


class ProgressiveBillingForm(forms.ModelForm):
    """Thresholds typed as "500, 1200"; checked by the service's rules (`schedule_clean`)."""

    thresholds = forms.CharField(
        required=False,
        label=_("thresholds"),
        help_text=_("Usage amounts to date that trigger an interim invoice, separated by commas, e.g. 500, 1200."),
    )

    class Meta:
        model = ProgressiveBilling
        fields = ["currency", "thresholds", "every", "scope"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scope"].required = False  # left out: the period's usage
        if self.instance.pk is not None:
            self.initial["thresholds"] = ", ".join(self.instance.amounts)

    def clean(self):
        cleaned = super().clean()
        currency = cleaned.get("currency")
        if not currency:
            return cleaned
        raw = [part.strip() for part in (cleaned.get("thresholds") or "").split(",") if part.strip()]
        try:
            schedule = schedule_clean(
                amounts=raw, every=cleaned.get("every"), currency=currency, scope=cleaned.get("scope")
            )
        except ValidationFailed as exc:
            for name, messages in exc.fields.items():
                self.add_error(name, messages)
            return cleaned
        if not schedule:
            self.add_error("thresholds", _("Give at least one threshold or a recurring one (or delete the row)."))
        cleaned["amounts"] = schedule_amounts_json(schedule)
        cleaned["scope"] = schedule.scope
        return cleaned

    def save(self, commit=True):
        self.instance.amounts = self.cleaned_data.get("amounts", [])
        return super().save(commit)


class ProgressiveBillingInline(LockedVersionPermissions, nested_admin.NestedTabularInline):
    formfield_overrides = DECIMAL_OVERRIDES
    model = ProgressiveBilling
    form = ProgressiveBillingForm
    extra = 0
    verbose_name = _("progressive billing")
    verbose_name_plural = _(
        "progressive billing (per currency: invoice the period's usage as soon as its amount to date reaches a "
        "threshold; the invoice closing the period deducts those interim invoices)"
    )


class FeatureGrantInline(LockedVersionPermissions, nested_admin.NestedTabularInline):
    """What the version grants (docs/entitlements.md); the value is checked against the feature's kind."""

    model = FeatureGrant
    fields = ["feature", "value"]
    autocomplete_fields = ["feature"]
    extra = 0
    verbose_name = _("feature granted")
    verbose_name_plural = _(
        'features granted (on/off: true or false; limit: a whole number or "unlimited"; value: the text)'
    )


def features_table(version: PlanVersion) -> str:
    grants = list(version.feature_grants.select_related("feature"))
    if not grants:
        return "—"
    return format_html(
        '<table id="features-granted"><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead>'
        "<tbody>{}</tbody></table>",
        _("feature"),
        _("kind"),
        _("value"),
        format_html_join(
            "",
            "<tr><td>{} ({})</td><td>{}</td><td>{}</td></tr>",
            (
                (grant.feature.name, grant.feature.code, grant.feature.get_kind_display(), grant.value)
                for grant in grants
            ),
        ),
    )


def price_model_fields() -> dict[str, dict[str, list[str]]]:
    """{model: {"price": [fields], "tiers": [fields]}} for the version page's script."""
    return {
        model: {"price": sorted(pricing.model_fields(model)), "tiers": sorted(pricing.tier_fields(model))}
        for model in PriceModelChoice.values
    }


class PlanVersionAdminForm(forms.ModelForm):
    class Meta:
        model = PlanVersion
        fields = ["plan", "notes"]

    def clean_plan(self):
        plan = self.cleaned_data["plan"]
        if plan is not None and plan.is_archived and self.instance.pk is None:
            raise forms.ValidationError(_("This plan is archived and takes no new versions."))
        return plan


@admin.register(PlanVersion)
class PlanVersionAdmin(ServiceAdminMixin, nested_admin.NestedModelAdmin):
    form = PlanVersionAdminForm
    change_form_template = "admin/catalog/planversion/change_form.html"
    list_display = ["__str__", "plan", "number", "charge_summary", "subscriber_count", "created_at"]
    list_filter = [("plan", admin.RelatedOnlyFieldListFilter), "plan__product"]
    search_fields = ["plan__name", "plan__code", "plan__product__name", "notes"]
    list_select_related = ["plan", "plan__product"]
    autocomplete_fields = ["plan"]
    readonly_fields = ["number", "subscriber_count", "prices", "features", "created_at", "updated_at"]
    inlines = [ChargeInline, MinimumCommitmentInline, ProgressiveBillingInline, FeatureGrantInline]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["plan", "notes"]
        return ["plan", "number", "notes", "subscriber_count", "prices", "features", "created_at", "updated_at"]

    @admin.display(description=_("features granted"))
    def features(self, version: PlanVersion) -> str:
        return features_table(version)

    def get_inlines(self, request, obj):
        # A locked version is shown as the prices table above; its rows are not editable anyway.
        return [] if obj is not None and _is_locked(obj) else self.inlines

    @admin.display(description=_("prices"))
    def prices(self, version: PlanVersion) -> str:
        return prices_table(version)

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "plan"] if obj is not None else self.readonly_fields

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(subscriber_total=Count("subscriptions", distinct=True))
            .prefetch_related("charges__prices", "minimum_commitments")
        )

    def has_change_permission(self, request, obj=None):
        return not _is_locked(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return obj is not None and not _is_locked(obj) and super().has_delete_permission(request, obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # locked versions must not be bulk-deleted
        return actions

    @admin.display(description=_("subscribers"), ordering="subscriber_total")
    def subscriber_count(self, version: PlanVersion) -> str:
        count = getattr(version, "subscriber_total", None)
        if count is None:
            count = version.subscriptions.count()
        url = reverse("admin:subscriptions_subscription_changelist") + f"?plan_version__id__exact={version.pk}"
        return format_html('<a href="{}">{}</a>', url, count)

    @admin.display(description=_("charges"))
    def charge_summary(self, version: PlanVersion) -> str:
        return (
            format_html_join(
                ", ",
                "{} ({})",
                (
                    (charge.name, ", ".join(sorted(price.currency for price in charge.prices.all())))
                    for charge in version.charges.all()
                ),
            )
            or "—"
        )

    def save_model(self, request, obj, form, change):
        if not change:
            with transaction.atomic():
                Plan.objects.select_for_update().filter(pk=obj.plan_id).first()
                obj.number = (PlanVersion.objects.filter(plan_id=obj.plan_id).aggregate(n=Max("number"))["n"] or 0) + 1
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        services.entitlements_generation_bump()  # the inline may have changed what the version grants
        # The inlines saved field by field; check the version as a whole (at least one charge, the
        # same currencies on every charge) with the service's rules, and roll everything back if not.
        version = form.instance
        charges = services.plan_version_charge_inputs(version)
        problems = {
            **services.charges_validate(charges, plan=version.plan, version=version),
            **services.minimum_commitments_validate(services.plan_version_minimum_commitments(version), charges),
        }
        currencies = version.currencies
        for row in version.progressive_billing.all():
            if row.currency not in currencies:
                problems.setdefault("progressive_billing", []).append(
                    _("Progressive billing in %(currency)s: the charges have no prices in it.")
                    % {"currency": row.currency}
                )
        if problems:
            names = [charge.name for charge in version.charges.all()]
            messages_ = []
            for key, field_messages in problems.items():
                parts = key.split(".")
                for message in field_messages:
                    if parts[0] == "charges" and len(parts) > 1 and parts[1].isdigit() and int(parts[1]) < len(names):
                        message = gettext("Charge “%(name)s”: %(message)s") % {
                            "name": names[int(parts[1])], "message": message,
                        }  # fmt: skip
                    elif parts[0] == "minimum_commitments":
                        message = gettext("Minimum commitment: %(message)s") % {"message": message}
                    messages_.append(message)
            self.call_service(_raise_validation, message=" ".join(messages_))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        version = self.get_object(request, unquote(object_id))
        extra_context = dict(extra_context or {})
        if version is not None:
            extra_context["version_locked"] = _is_locked(version)
            extra_context["copy_url"] = reverse("admin:catalog_planversion_copy", args=[version.pk])
            extra_context["can_copy"] = self.has_add_permission(request)
        extra_context["price_model_fields"] = price_model_fields()
        return super().change_view(request, object_id, form_url, extra_context)

    def add_view(self, request, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "price_model_fields": price_model_fields()}
        return super().add_view(request, form_url, extra_context)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/copy/", view(self.copy_view), name="catalog_planversion_copy"),
        ] + super().get_urls()

    def copy_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_add_permission(request):
            raise PermissionDenied
        version = self.get_object(request, unquote(object_id))
        if version is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        try:
            new_version = services.plan_version_copy(version=version)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:catalog_planversion_change", args=[version.pk]))
        self.message_user(
            request,
            _(
                "Created %(version)s from v%(number)s. Edit its prices and save; new subscribers get it, "
                "existing subscribers stay on theirs until you migrate them."
            )
            % {"version": new_version, "number": version.number},
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:catalog_planversion_change", args=[new_version.pk]))


def _raise_validation(*, message: str) -> None:
    raise ValidationFailed(message)


class PlanVersionSummaryInline(admin.TabularInline):
    model = PlanVersion
    fields = ["version_link", "notes", "charges", "subscribers", "created_at"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False
    verbose_name_plural = _("versions (new subscribers get the latest)")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return (
            super().get_queryset(request).annotate(subscriber_total=Count("subscriptions")).prefetch_related("charges")
        )

    @admin.display(description=_("version"))
    def version_link(self, version: PlanVersion) -> str:
        return format_html(
            '<a href="{}">v{}</a>', reverse("admin:catalog_planversion_change", args=[version.pk]), version.number
        )

    @admin.display(description=_("charges"))
    def charges(self, version: PlanVersion) -> str:
        return ", ".join(charge.name for charge in version.charges.all()) or "—"

    @admin.display(description=_("subscribers"))
    def subscribers(self, version: PlanVersion) -> int:
        return version.subscriber_total


class BillableMetricAddForm(forms.ModelForm):
    class Meta:
        model = BillableMetric
        fields = [
            "code", "name", "description", "aggregation", "field_name", "time_unit", "percentile", "interval_minutes",
            "filters", "group_by", "lateness_window_days",
        ]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["lateness_window_days"].required = False  # left empty: the default window

    def clean_lateness_window_days(self):
        days = self.cleaned_data.get("lateness_window_days")
        return DEFAULT_LATENESS_WINDOW_DAYS if days is None else days

    def _post_clean(self):
        # No model validation here: `billable_metric_create` validates and places its messages on the fields.
        pass


@admin.register(BillableMetric)
class BillableMetricAdmin(ServiceAdminMixin, admin.ModelAdmin):
    """Metrics are created through `billable_metric_create`; afterwards only the name, description and
    archiving change, and the lateness window (events and usage charges refer to the code and the
    aggregation)."""

    list_display = [
        "code", "name", "aggregation", "field_name", "group_by", "lateness_window_days", "is_archived", "created_at",
    ]  # fmt: skip
    list_filter = ["aggregation", "is_archived"]
    search_fields = ["code", "name", "field_name"]
    date_hierarchy = "created_at"
    fields = [
        "code", "name", "description", "aggregation", "field_name", "time_unit", "percentile", "interval_minutes",
        "filters", "group_by", "lateness_window_days", "is_archived", "created_at", "updated_at",
    ]  # fmt: skip
    frozen_fields = [
        "code", "aggregation", "field_name", "time_unit", "percentile", "interval_minutes", "filters", "group_by",
        "created_at", "updated_at",
    ]  # fmt: skip

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = BillableMetricAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return BillableMetricAddForm.Meta.fields if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.frozen_fields

    def has_delete_permission(self, request, obj=None):
        return False  # archive instead: usage events refer to metrics

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        created = self.call_service(
            services.billable_metric_create,
            **{name: form.cleaned_data[name] for name in BillableMetricAddForm.Meta.fields},
        )
        adopt(obj, created)


class FeatureAdminForm(forms.ModelForm):
    class Meta:
        model = Feature
        fields = ["code", "name", "description", "kind"]


@admin.register(Feature)
class FeatureAdmin(ServiceAdminMixin, admin.ModelAdmin):
    """Features plan versions grant (docs/entitlements.md): created and changed through the services; the
    code is fixed once made (the seller's application asks for it), the kind while a version grants it."""

    form = FeatureAdminForm
    list_display = ["code", "name", "kind", "version_count", "created_at"]
    list_filter = ["kind"]
    search_fields = ["code", "name"]
    fields = ["code", "name", "description", "kind", "created_at", "updated_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(version_count=Count("grants"))

    def get_readonly_fields(self, request, obj=None):
        return ["created_at", "updated_at"] if obj is None else ["code", "created_at", "updated_at"]

    def has_delete_permission(self, request, obj=None):
        return False  # what customers were entitled to refers to features

    @admin.display(description=_("granted by versions"), ordering="version_count")
    def version_count(self, feature: Feature) -> int:
        return feature.version_count

    def save_model(self, request, obj, form, change):
        if change:
            changes = {name: form.cleaned_data[name] for name in form.changed_data if name in services.FEATURE_FIELDS}
            adopt(obj, self.call_service(services.feature_update, feature_id=obj.pk, **changes))
            return
        created = self.call_service(
            services.feature_create, **{name: form.cleaned_data[name] for name in FeatureAdminForm.Meta.fields}
        )
        adopt(obj, created)


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "plan_count", "is_archived", "created_at"]
    list_filter = ["is_archived"]
    search_fields = ["name", "code"]
    readonly_fields = ["created_at", "updated_at"]
    fields = ["name", "code", "description", "is_archived", "created_at", "updated_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(plan_count=Count("plans"))

    def has_delete_permission(self, request, obj=None):
        return False  # archive instead: invoices and subscriptions refer to products

    @admin.display(description=_("plans"), ordering="plan_count")
    def plan_count(self, product: Product) -> str:
        url = reverse("admin:catalog_plan_changelist") + f"?product__id__exact={product.pk}"
        return format_html('<a href="{}">{}</a>', url, product.plan_count)


class PlanAdminForm(forms.ModelForm):
    class Meta:
        model = Plan
        fields = [
            "product", "code", "name", "description", "interval", "interval_count", "trial_days", "trial_usage",
            "is_archived",
        ]  # fmt: skip

    def clean_product(self):
        product = self.cleaned_data["product"]
        if product is not None and product.is_archived and product.pk != self.instance.product_id:
            raise forms.ValidationError(_("This product is archived and takes no new plans."))
        return product

    def clean(self):
        cleaned_data = super().clean()
        if self.instance.pk is not None and self.instance.subscriptions.exists():
            for name in ("interval", "interval_count"):
                if name in cleaned_data and cleaned_data[name] != getattr(self.instance, name):
                    self.add_error(name, _("This plan has subscribers: its billing interval cannot change."))
        interval, interval_count = cleaned_data.get("interval"), cleaned_data.get("interval_count")
        if self.instance.pk is not None and interval and interval_count:
            problem = services.plan_interval_pool_problem(
                plan=self.instance, interval=interval, interval_count=interval_count
            )
            if problem:
                self.add_error("interval", problem)
        return cleaned_data


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    form = PlanAdminForm
    list_display = [
        "name", "code", "product", "billing_interval", "latest_version", "price_list", "trial_days", "is_archived",
    ]  # fmt: skip
    list_filter = ["interval", "is_archived", ("product", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "code", "product__name", "product__code"]
    list_select_related = ["product"]
    autocomplete_fields = ["product"]
    readonly_fields = ["created_at", "updated_at", "add_version_link"]
    fieldsets = [
        (None, {"fields": ["product", "name", "code", "description"]}),
        (_("Billing"), {"fields": ["interval", "interval_count", "trial_days", "trial_usage", "is_archived"]}),
        (_("Prices"), {"fields": ["add_version_link"]}),
        (_("Record"), {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]
    inlines = [PlanVersionSummaryInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("versions__charges__prices")

    def has_delete_permission(self, request, obj=None):
        return False  # archive instead

    @admin.display(description=_("billed"), ordering="interval")
    def billing_interval(self, plan: Plan) -> str:
        return plan.interval_label

    @admin.display(description=_("version"))
    def latest_version(self, plan: Plan) -> str:
        version = plan.current_version
        return f"v{version.number}" if version else "—"

    @admin.display(description=_("prices (latest version)"))
    def price_list(self, plan: Plan) -> str:
        version = plan.current_version
        if version is None:
            return _("no version yet")
        parts = []
        for charge in version.charges.all():
            if charge.price_model in TIERED_MODELS:
                parts.append(f"{charge.name}: {charge.get_price_model_display().lower()}")
                continue
            prices = ", ".join(
                staff_money(price.amount, price.currency)
                for price in charge.prices.all()
                if not price.dimension_values  # the default prices; per-dimension ones are on the version
            )
            parts.append(f"{charge.name}: {prices}")
        return "; ".join(parts) or "—"

    @admin.display(description=_("versions"))
    def add_version_link(self, plan: Plan) -> str:
        if plan.pk is None:
            return _("Save the plan, then add its first version with its charges and prices.")
        url = reverse("admin:catalog_planversion_add") + f"?plan={plan.pk}"
        return format_html('<a class="addlink" href="{}">{}</a>', url, _("Add a version with new prices"))


class PriceAdminForm(forms.ModelForm):
    class Meta:
        model = Price
        fields = [
            "charge", "currency", "dimension_values", "amount", "package_size", "package_rounding", "included_units",
            "percentage", "fixed_fee", "min_per_transaction", "max_per_transaction", "minimum_amount",
        ]  # fmt: skip

    def clean(self):
        """A price without tiers is checked here with the pricing engine (a tiered one with its tiers,
        by `PriceTierFormSet`)."""
        cleaned_data = super().clean()
        charge = self.instance.charge if self.instance.charge_id else None
        if charge is None or charge.price_model in TIERED_MODELS or not cleaned_data.get("currency"):
            return cleaned_data
        for key, field_messages in pricing.price_validate(_price_spec(charge.price_model, cleaned_data, [])).items():
            for message in field_messages:
                self.add_error(key if key in self.fields else None, message)
        return cleaned_data


@admin.register(Price)
class PriceAdmin(LockedVersionPermissions, nested_admin.NestedModelAdmin):
    """A price on its own page, with its tiers and the live calculator."""

    form = PriceAdminForm
    change_form_template = "admin/catalog/price/change_form.html"
    list_display = ["__str__", "version", "currency", "model", "amount", "updated_hint"]
    list_filter = ["currency", "charge__price_model", "charge__kind", "charge__plan_version__plan"]
    search_fields = ["charge__name", "charge__plan_version__plan__name", "charge__plan_version__plan__code"]
    list_select_related = ["charge__plan_version__plan"]
    inlines = [PriceTierInline]

    formfield_overrides = DECIMAL_OVERRIDES

    def get_fields(self, request, obj=None):
        if obj is not None and _is_locked(obj):
            return ["charge", "version", "currency", "described"]
        fields = super().get_fields(request, obj)
        if obj is not None and obj.charge_id:  # only the fields of its charge's price model
            used = pricing.model_fields(obj.charge.price_model)
            optional = set(PriceAdminForm.Meta.fields) - {"charge", "currency", "dimension_values", "minimum_amount"}
            fields = [name for name in fields if name not in optional or name in used]
        return fields

    def get_inline_instances(self, request, obj=None):
        inlines = super().get_inline_instances(request, obj)
        if obj is not None and obj.charge_id and obj.charge.price_model not in TIERED_MODELS:
            return []  # no tiers on this model
        return inlines

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and _is_locked(obj):
            return ["charge", "version", "currency", "described"]
        # Which group a price is for is edited with the version's charges (checked against the metric there).
        return ["charge", "dimension_values"] if obj is not None else []

    def get_inlines(self, request, obj):
        return [] if obj is not None and _is_locked(obj) else self.inlines

    @admin.display(description=_("price"))
    def described(self, price: Price) -> str:
        return pricing.price_describe(price.to_spec())

    def has_add_permission(self, request, obj=None):
        return False  # prices are added on their plan version's page

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description=_("version"))
    def version(self, price: Price) -> PlanVersion:
        return price.charge.plan_version

    @admin.display(description=_("price model"), ordering="charge__price_model")
    def model(self, price: Price) -> str:
        return price.charge.get_price_model_display()

    @admin.display(description=_("kind"), ordering="charge__kind")
    def updated_hint(self, price: Price) -> str:
        return price.charge.get_kind_display()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        price = self.get_object(request, unquote(object_id))
        extra_context = dict(extra_context or {})
        if price is not None:
            extra_context.update(self._calculator_context(request, price))
        return super().change_view(request, object_id, form_url, extra_context)

    def _calculator_context(self, request: HttpRequest, price: Price) -> dict:
        raw_quantity = request.GET.get("quantity", "")
        raw_transactions = request.GET.get("transactions", "")
        context = {
            "calculator_url": reverse("admin:catalog_price_quote", args=[price.pk]),
            "calculator_quantity": raw_quantity,
            "calculator_transactions": raw_transactions,
            "calculator_is_percentage": price.charge.price_model == PriceModelChoice.PERCENTAGE,
            "calculator_is_amount": price.charge.price_model == PriceModelChoice.GRADUATED_PERCENTAGE,
            "version_locked": _is_locked(price),
        }
        if raw_quantity or raw_transactions:
            context["calculator"] = _quote_payload(price, raw_quantity, raw_transactions)
        return context

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/quote/", view(self.quote_view), name="catalog_price_quote"),
        ] + super().get_urls()

    def quote_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        price = self.get_object(request, unquote(object_id))
        if price is None:
            return JsonResponse({"error": _("This price does not exist.")}, status=404)
        payload = _quote_payload(price, request.GET.get("quantity", ""), request.GET.get("transactions", ""))
        return JsonResponse(payload, status=400 if "error" in payload else 200)


def _quote_payload(price: Price, raw_quantity: str, raw_transactions: str) -> dict:
    """The calculator's answer for typed input: amounts as strings, or a clear error."""
    try:
        transactions = [Decimal(part.strip().replace(",", "")) for part in raw_transactions.split() if part.strip()]
        if price.charge.price_model == PriceModelChoice.PERCENTAGE:
            quantity = Decimal(len(transactions))
        else:
            quantity = Decimal(raw_quantity.strip().replace(",", "").replace("_", "") or "0")
        if not quantity.is_finite() or any(not amount.is_finite() for amount in transactions):
            raise InvalidOperation
    except InvalidOperation:
        return {"error": _("Type a number, e.g. 1500 or 12.5 (transactions: amounts separated by spaces).")}
    try:
        quote = services.price_quote(price=price, quantity=quantity, transactions=transactions)
    except ApplicationError as exc:
        return {"error": exc.message}
    except ValueError as exc:
        return {"error": str(exc)}
    return quote_as_dict(quote)


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def quote_as_dict(quote: pricing.Quote) -> dict:
    return {
        "currency": quote.currency,
        "quantity": _plain(quote.quantity),
        "billable_quantity": _plain(quote.billable_quantity),
        "exact_amount": _plain(quote.exact_amount),
        "amount": str(quote.amount),
        "minimum_true_up": str(quote.minimum_true_up),
        "total": str(quote.total),
        "lines": [
            {
                "description": line.description,
                "quantity": _plain(line.quantity),
                "unit_amount": _plain(line.unit_amount),
                "flat_amount": _plain(line.flat_amount),
                "amount": _plain(line.amount),
            }
            for line in quote.lines
        ],
    }


# --- coupons and discounts ------------------------------------------------------------------------


class CouponAmountInline(admin.TabularInline):
    model = CouponAmount
    fields = ["currency", "amount_off"]
    extra = 1
    verbose_name = _("amount off")
    verbose_name_plural = _("amounts off (fixed-amount coupons: one per currency; leave empty for a percentage)")

    def has_add_permission(self, request, obj=None):
        return obj is None and super().has_add_permission(request, obj)  # set when the coupon is created

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False


class CouponAddForm(forms.ModelForm):
    class Meta:
        model = Coupon
        fields = [
            "code", "name", "discount_type", "percent_off", "duration", "duration_in_periods", "max_redemptions",
            "redeem_by", "products",
        ]  # fmt: skip

    def _post_clean(self):
        # No model validation here: `coupon_create` validates and places its messages on the fields.
        pass


# A coupon's duration in the changelist's column: the choice's label without its explanation.
COUPON_DURATION_SHORT = {CouponDuration.ONCE: _("Once"), CouponDuration.FOREVER: _("Forever")}


@admin.register(Coupon)
class CouponAdmin(ServiceAdminMixin, admin.ModelAdmin):
    """Coupons are created through `coupon_create` (all its rules, as form errors) and archived, never
    deleted: discounts refer to them. After creation only the name changes."""

    list_display = [
        "code", "name", "discount_type", "value", "duration_label", "redemptions", "redeem_by", "is_archived",
    ]  # fmt: skip
    list_filter = ["discount_type", "duration", "is_archived", ("products", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["code", "name"]
    date_hierarchy = "created_at"
    filter_horizontal = ["products"]
    inlines = [CouponAmountInline]
    actions = ["archive_coupons"]
    fieldsets = [
        (None, {"fields": ["code", "name"]}),
        (_("Discount"), {"fields": ["discount_type", "percent_off", "duration", "duration_in_periods"]}),
        (_("Limits"), {"fields": ["max_redemptions", "redeem_by", "products"]}),
        (_("Record"), {"fields": ["is_archived", "redemptions", "created_at", "updated_at"]}),
    ]
    add_fieldsets = fieldsets[:3]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(redemption_count=Count("discounts", distinct=True))
            .prefetch_related("amounts")
        )

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = CouponAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [
            "code", "discount_type", "percent_off", "duration", "duration_in_periods", "max_redemptions",
            "redeem_by", "products", "is_archived", "redemptions", "created_at", "updated_at",
        ]  # fmt: skip

    def has_delete_permission(self, request, obj=None):
        return False  # archive instead: discounts refer to coupons

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description=_("off"))
    def value(self, coupon: Coupon) -> str:
        if coupon.discount_type == DiscountType.PERCENTAGE and coupon.percent_off is not None:
            return f"{pricing.format_quantity(coupon.percent_off)} %"
        return ", ".join(staff_money(a.amount_off, a.currency) for a in coupon.amounts.all()) or "—"

    @admin.display(description=_("duration"), ordering="duration")
    def duration_label(self, coupon: Coupon) -> str:
        if coupon.duration == CouponDuration.REPEATING:
            count = coupon.duration_in_periods or 0
            return ngettext("%(count)s period", "%(count)s periods", count) % {"count": count}
        return str(COUPON_DURATION_SHORT.get(coupon.duration, coupon.get_duration_display()))

    @admin.display(description=_("redeemed / max"), ordering="redemption_count")
    def redemptions(self, coupon: Coupon) -> str:
        count = getattr(coupon, "redemption_count", None)
        if count is None:
            count = coupon.discounts.count()
        limit = coupon.max_redemptions if coupon.max_redemptions is not None else _("no limit")
        url = reverse("admin:subscriptions_discount_changelist") + f"?coupon__id__exact={coupon.pk}"
        return format_html('<a href="{}">{}</a> / {}', url, count, limit)

    @admin.action(description=_("Archive (no new redemptions)"), permissions=["change"])
    def archive_coupons(self, request, queryset):
        for coupon in queryset:
            services.coupon_archive(coupon=coupon)
            self.message_user(
                request, _("Archived %(coupon)s; its discounts keep applying.") % {"coupon": coupon}, messages.SUCCESS
            )

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
        # A new coupon is created with its amounts in `save_related`, where the inline rows are known.

    def save_related(self, request, form, formsets, change):
        if change:
            super().save_related(request, form, formsets, change)
            return
        data = form.cleaned_data
        amounts = [
            Money(row.cleaned_data["amount_off"], row.cleaned_data["currency"])
            for formset in formsets
            if formset.model is CouponAmount
            for row in formset.forms
            if row.has_changed() and row.cleaned_data and not row.cleaned_data.get("DELETE")
        ]
        coupon = self.call_service(
            services.coupon_create,
            code=data["code"],
            name=data["name"],
            discount_type=data["discount_type"],
            percent_off=data.get("percent_off"),
            amounts=amounts,
            duration=data["duration"],
            duration_in_periods=data.get("duration_in_periods"),
            max_redemptions=data.get("max_redemptions"),
            redeem_by=data.get("redeem_by"),
            product_ids=[product.pk for product in data.get("products", [])],
        )
        adopt(form.instance, coupon)
        for formset in formsets:  # what the admin's history message reads
            formset.new_objects = list(coupon.amounts.all()) if formset.model is CouponAmount else []
            formset.changed_objects, formset.deleted_objects = [], []
