"""Budgets: the customer's own alerts on its spend or usage in the current period (apps.alerts), with
an email to its billing contacts once per threshold and period. A budget's hard limit is a flag that
the seller's application reads; it is not enforced here."""

from django.contrib import messages
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.alerts.constants import AlertOrigin
from apps.alerts.selectors import (
    alert_crossing_list_for_customer,
    alert_metrics_for_customer,
    budget_list_for_customer,
    customer_spend_status,
)
from apps.alerts.services import alert_create, alert_delete
from apps.core.errors import ApplicationError

from .forms import BudgetForm, add_application_error
from .views import _render, portal_view


@portal_view(action="manage_billing")
def budgets(request, membership, configuration):
    customer = membership.customer
    form = BudgetForm(
        request.POST or None,
        metrics=alert_metrics_for_customer(customer_id=customer.pk),
        currency=customer.currency,
    )
    if request.method == "POST" and form.is_valid():
        try:
            alert_create(customer=customer, origin=AlertOrigin.CUSTOMER, actor=request.user, **form.service_arguments())
        except ApplicationError as exc:
            if "metric" in exc.fields:
                exc.fields["watch"] = exc.fields.pop("metric")
            add_application_error(form, exc)
        else:
            messages.success(request, _("Your budget is saved: we email your billing contacts when it is reached."))
            return redirect("portal:budgets")
    context = {
        "form": form,
        "budgets": list(budget_list_for_customer(customer_id=customer.pk)),
        "crossings": list(
            alert_crossing_list_for_customer(customer_id=customer.pk).filter(alert__origin=AlertOrigin.CUSTOMER)[:10]
        ),
        "spend_status": customer_spend_status(customer=customer),
    }
    return _render(request, "portal/budgets.html", membership, configuration, context)


@require_POST
@portal_view(action="manage_billing")
def budget_delete(request, membership, configuration, budget_id):
    alert_delete(alert_id=budget_id, customer_id=membership.customer_id, origin=AlertOrigin.CUSTOMER)
    messages.success(request, _("The budget is deleted."))
    return redirect("portal:budgets")
