"""The dashboard's filters (a GET form: filtering changes nothing, a bad filter is a form error)."""

import re
from datetime import date

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from apps.catalog.models import Plan, Product
from apps.core import clock

from . import metrics
from .selectors import ReportFilters, earliest_month, report_currencies

MONTH_PATTERN = re.compile(r"^(\d{4})-(\d{2})$")
MAX_MONTHS = 60
DEFAULT_MONTHS = 12


class MonthField(forms.CharField):
    """A month as YYYY-MM (the browser's month picker), cleaned to its first day."""

    widget = forms.TextInput(attrs={"type": "month", "placeholder": "YYYY-MM"})

    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return None
        match = MONTH_PATTERN.match(value.strip())
        if match is None or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1970:
            raise forms.ValidationError(_("Give a month as YYYY-MM, e.g. 2026-01."), code="invalid")
        return date(int(match.group(1)), int(match.group(2)), 1)


class ReportFilterForm(forms.Form):
    currency = forms.ChoiceField(required=False, label=_("Currency"))
    first_month = MonthField(required=False, label=_("From"))
    last_month = MonthField(required=False, label=_("To"))
    product = forms.ModelChoiceField(
        queryset=Product.objects.order_by("name"), required=False, empty_label=_("All products"), label=_("Product")
    )
    plan = forms.ModelChoiceField(
        queryset=Plan.objects.select_related("product").order_by("product__name", "name", "interval"),
        required=False,
        empty_label=_("All plans"),
        label=_("Plan"),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.currencies = report_currencies()
        known = self.currencies + [c for c in settings.CURRENCIES if c not in self.currencies]
        self.fields["currency"].choices = [(currency, currency) for currency in known]
        self.fields["plan"].label_from_instance = lambda plan: (
            f"{plan.product.name} — {plan.name} ({plan.interval_label})"
        )

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        current = metrics.month_of(clock.now())
        last = cleaned.get("last_month") or current
        first = cleaned.get("first_month")
        currency = cleaned.get("currency") or (self.currencies[0] if self.currencies else settings.CURRENCIES[0])
        if first is None:
            first = last
            for _month in range(DEFAULT_MONTHS - 1):
                first = metrics.previous_month(first)
            # No empty months before the first figures of the currency (a young business's charts).
            earliest = earliest_month(currency)
            if earliest is not None and first < earliest <= last:
                first = earliest
        if first > last:
            self.add_error("first_month", _("The first month comes after the last one."))
        elif len(list(metrics.months_between(first, last))) > MAX_MONTHS:
            self.add_error("first_month", _("Choose at most %(count)s months.") % {"count": MAX_MONTHS})
        product, plan = cleaned.get("product"), cleaned.get("plan")
        if product is not None and plan is not None and plan.product_id != product.pk:
            self.add_error("plan", _("%(plan)s is not a plan of %(product)s.") % {"plan": plan, "product": product})
        cleaned["first_month"], cleaned["last_month"] = first, last
        cleaned["currency"] = currency
        return cleaned

    def filters(self) -> ReportFilters:
        data = self.cleaned_data
        return ReportFilters(
            currency=data["currency"],
            first_month=data["first_month"],
            last_month=data["last_month"],
            product=data.get("product"),
            plan=data.get("plan"),
        )
