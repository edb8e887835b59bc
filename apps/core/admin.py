"""Admin building blocks shared by the apps' ModelAdmins (no models of its own, imports no app).

- `ServiceAdminMixin`: a ModelAdmin whose `save_model` calls a service. When the service refuses
  (`ApplicationError`), the whole save is rolled back and the form is shown again with the service's
  messages as form errors, exactly as if the form itself had refused the input.
- `ReadOnlyInline`: an inline that shows rows made by services and never edits them.
- `status_badge`: a coloured status label for lists and detail pages.
- `LargeListAdminMixin`: a changelist over a table of millions of rows (invoices, events) that answers
  from indexes: its count stops at `CappedCountPaginator.cap`, no second count of the whole table.
"""

from decimal import Decimal
from functools import cached_property

from django import forms
from django.contrib import admin
from django.core.paginator import Paginator
from django.db import models
from django.db.models import Q
from django.utils.html import format_html
from django.utils.text import smart_split, unescape_string_literal
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from apps.core.datetime_format import staff_datetime  # noqa: F401 - the admin's building blocks, in one place
from apps.core.errors import ApplicationError
from apps.core.money_format import money_text

# Background colours of status badges, by tone; the text is always white.
BADGE_COLOURS = {
    "neutral": "#6b7280",
    "info": "#2563eb",
    "success": "#15803d",
    "warning": "#b45309",
    "danger": "#b91c1c",
}


def staff_money(amount: Decimal, currency: str) -> str:
    """An amount as the admin writes it: the product's one format (apps.core.money_format), "1,234.50
    CNY" in English, "¥1,234.50" in Chinese; at least the currency's decimals, more only when the amount
    has them. Display only: never rounds."""
    return money_text(amount, currency)


def staff_date(value) -> str:
    """A day as the admin writes it: "2026-12-07" in English, "2026年12月7日" in Chinese."""
    if (get_language() or "").lower().startswith("zh"):
        return f"{value.year}年{value.month}月{value.day}日"
    return f"{value:%Y-%m-%d}"


def status_badge(label: str, tone: str = "neutral") -> str:
    return format_html(
        '<span style="display:inline-block;padding:1px 8px;border-radius:9px;background:{};color:#fff;'
        'font-size:0.75rem;font-weight:600;white-space:nowrap">{}</span>',
        BADGE_COLOURS.get(tone, BADGE_COLOURS["neutral"]),
        label,
    )


def application_error_to_form(form: forms.BaseForm, error: ApplicationError) -> None:
    """Show a service's refusal on a form: field messages on the fields the form has, the rest (and
    the summary message when no field message could be placed) as non-field errors."""
    placed_on_field = False
    for field, messages in error.fields.items():
        target = field if field in form.fields else None
        for message in messages:
            form.add_error(target, message if target else f"{field}: {message}")
        placed_on_field = placed_on_field or target is not None
    if not placed_on_field:
        form.add_error(None, error.message)


class ServiceRejected(Exception):
    """Raised inside the admin's save transaction to roll it back and re-show the form."""

    def __init__(self, error: ApplicationError) -> None:
        super().__init__(error.message)
        self.error = error


def adopt(target: models.Model, source: models.Model) -> None:
    """Make the admin's in-memory object the row a service saved (same pk and field values), so that
    the admin's logging, inlines and redirect refer to it."""
    for field in source._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    target._state.adding = False
    target._state.db = source._state.db


class ServiceAdminMixin:
    """For ModelAdmins whose `save_model` calls a service.

    Call services through `self.call_service(fn, **kwargs)` inside `save_model`. If the service raises
    an `ApplicationError`, the admin's save transaction (Django wraps the add/change view in one) is
    rolled back, nothing is saved, and the view is shown again with the errors placed on the form.
    """

    _rejection_attribute = "_admin_service_rejection"

    def call_service(self, service, /, **kwargs):
        try:
            return service(**kwargs)
        except ApplicationError as exc:
            raise ServiceRejected(exc) from exc

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceRejected as rejected:
            # The transaction of the first pass is rolled back. Validate the same POST again with the
            # service's errors added: the form is now invalid, so nothing is saved and Django renders
            # the page with every other value the user typed.
            setattr(request, self._rejection_attribute, rejected.error)
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change=change, **kwargs)
        error = getattr(request, self._rejection_attribute, None)
        if error is None:
            return form_class

        class RejectedForm(form_class):
            def clean(self):
                cleaned_data = super().clean()
                application_error_to_form(self, error)
                return cleaned_data

        RejectedForm.__name__ = form_class.__name__
        return RejectedForm


class CurrencyListFilter(admin.ChoicesFieldListFilter):
    """A list filter on a money field's currency column, titled "currency" (django-money adds that
    column without a label of its own): `list_filter = [("total_currency", CurrencyListFilter)]`."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        self.title = _("currency")


class ReadOnlyInline(admin.TabularInline):
    """Rows that services create (invoice lines, events, a customer's invoices): shown, never edited
    from here. `view_permission_from_parent` lets whoever may view the parent see these rows."""

    extra = 0
    max_num = 0
    can_delete = False
    classes = ["readonly-inline"]  # styled in templates/admin/base_site.html
    view_permission_from_parent = False

    def get_readonly_fields(self, request, obj=None):
        # Subclasses declare `fields`; every one of them is shown read-only.
        return list(dict.fromkeys([*self.fields, *self.readonly_fields]))

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        if self.view_permission_from_parent:
            return self.admin_site.get_model_admin(self.parent_model).has_view_permission(request, obj)
        return super().has_view_permission(request, obj)


class CappedCountPaginator(Paginator):
    """Counts at most `cap` rows (`SELECT count(*) FROM (… LIMIT cap)`), so a list of a million rows
    costs what a list of `cap` rows does; pages stop at the cap and `capped` says more rows match
    (the list says "10,000+"): finance staff filter or search to go further back."""

    cap = 10_000

    @cached_property
    def count(self) -> int:
        counted = self.object_list[: self.cap + 1].count()
        self.capped = counted > self.cap
        return min(counted, self.cap)

    capped = False


class LargeListAdminMixin:
    """A changelist over a large table: the capped count above, no full-table count beside it, and no
    facet counts. Pair it with an index that matches the list's ordering (the model's `ordering`)."""

    paginator = CappedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    # Searched with `icontains` on the model's own columns (trigram-indexed on PostgreSQL) and on its
    # customer's name and external ID; empty: Django's own search over `search_fields`.
    own_search_fields: tuple[str, ...] = ()
    customer_search_fields: tuple[str, ...] = ("name", "external_id")
    customer_search_limit = 1_000

    def get_search_results(self, request, queryset, search_term):
        """Each word must match one of the own columns or the customer. The customers are found
        first (their own indexed search) and the rows then by `customer_id IN (…)`, so PostgreSQL
        combines two indexes instead of joining every row to its customer."""
        if not self.own_search_fields or not search_term:
            return super().get_search_results(request, queryset, search_term)  # type: ignore[misc]
        customers = self.model._meta.get_field("customer").related_model._default_manager
        for word in smart_split(search_term):
            if word[0] in {'"', "'"} and word[0] == word[-1]:
                word = unescape_string_literal(word)
            match = Q()
            for field in self.own_search_fields:
                match |= Q(**{f"{field}__icontains": word})
            customer_match = Q()
            for field in self.customer_search_fields:
                customer_match |= Q(**{f"{field}__icontains": word})
            found = customers.filter(customer_match)
            ids = list(found.values_list("pk", flat=True)[: self.customer_search_limit + 1])
            match |= Q(customer__in=found) if len(ids) > self.customer_search_limit else Q(customer_id__in=ids)
            queryset = queryset.filter(match)
        return queryset, False
