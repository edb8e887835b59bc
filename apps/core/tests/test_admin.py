"""The shared admin building blocks, and helpers the apps' admin tests use."""

import pytest
from django import forms

from apps.core.admin import application_error_to_form
from apps.core.errors import ValidationFailed


def change_form_data(response, **changes) -> dict:
    """The POST a browser would send from an admin add/change page (main form and every inline's
    management form and rows, as rendered), with `changes` applied to the main form."""
    data: dict = {}

    def put(form) -> None:
        for name in form.fields:
            value = form[name].value()
            if value is None:
                continue
            if isinstance(value, list | tuple):
                for index, part in enumerate(value):
                    data[f"{form.add_prefix(name)}_{index}"] = "" if part is None else part
            else:
                data[form.add_prefix(name)] = value

    put(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        put(inline.formset.management_form)
        for form in inline.formset.forms:
            put(form)
    data.update(changes)
    return data


class _Form(forms.Form):
    plan = forms.CharField(required=False)


def test_field_errors_land_on_the_form_fields_they_name():
    form = _Form(data={})
    form.is_valid()
    application_error_to_form(
        form, ValidationFailed("Plan has no price in GBP.", fields={"plan": ["No price in GBP."]})
    )
    assert form.errors == {"plan": ["No price in GBP."]}


def test_errors_on_unknown_fields_and_bare_messages_become_non_field_errors():
    form = _Form(data={})
    form.is_valid()
    application_error_to_form(form, ValidationFailed("Prices cannot be negative.", fields={"prices.0": ["Negative."]}))
    assert form.non_field_errors() == ["prices.0: Negative.", "Prices cannot be negative."]

    form = _Form(data={})
    form.is_valid()
    application_error_to_form(form, ValidationFailed("Invoice INV-1 is paid."))
    assert form.non_field_errors() == ["Invoice INV-1 is paid."]


@pytest.mark.django_db
def test_admin_index_lists_our_apps(client, superuser):
    client.force_login(superuser)
    response = client.get("/admin/")
    assert response.status_code == 200
    names = [app["name"] for app in response.context["app_list"]]
    for name in ["Catalog", "Customers", "Invoices and billing", "Subscriptions"]:
        assert name in names
