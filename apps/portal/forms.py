"""Portal forms: parse and check input shape; the services decide and report field errors."""

from collections.abc import Sequence

from django import forms
from django.conf import settings
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.sites.shortcuts import get_current_site
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_countries import countries
from django_countries.fields import LazyTypedChoiceField

from apps.accounts.constants import PortalLanguage, TaxIdType
from apps.accounts.models import CustomerMembership
from apps.core.errors import ApplicationError
from apps.core.money_format import money_text
from apps.core.network import client_address
from apps.invoices.templatetags.invoice_format import money
from apps.portal.services import portal_password_reset_request

from .selectors import PlanOption


def add_application_error(form: forms.Form, exc: ApplicationError) -> None:
    """Show a service's refusal on the form: each field error on its field (when the form has it),
    the rest at the top."""
    placed = False
    for name, messages in exc.fields.items():
        field = name.split(".")[0]
        for message in messages:
            if field in form.fields:
                form.add_error(field, message)
                placed = True
            else:
                form.add_error(None, f"{message}")
    if not placed and not exc.fields:
        form.add_error(None, exc.message)
    elif not placed:
        form.add_error(None, exc.message)


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        label=_("Token name"), max_length=100, help_text=_('What will use it, e.g. "Accounting export".')
    )


class PortalPasswordResetForm(PasswordResetForm):
    """Django's reset form, but the email goes out from a task queued on commit whatever the address
    (the task finds the customer user, if any): no mail server in the request, the same answer for a
    known or unknown address, and never a staff account."""

    def save(self, domain_override=None, use_https=False, request=None, **kwargs):
        domain = domain_override or (get_current_site(request).domain if request else "")
        portal_password_reset_request(
            email=self.cleaned_data["email"],
            client=client_address(request) if request else "",
            domain=domain,
            protocol="https" if use_https else "http",
            language=translation.get_language() or settings.LANGUAGE_CODE,
        )


class MagicLinkForm(forms.Form):
    email = forms.EmailField(label=_("Email"), widget=forms.EmailInput(attrs={"autocomplete": "email"}))


class BillingDetailsForm(forms.Form):
    name = forms.CharField(label=_("Company name"), max_length=255)
    email = forms.EmailField(label=_("Billing email"), help_text=_("Where bills are sent."))
    billing_emails = forms.CharField(
        label=_("Other billing emails"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One address a line; each receives every bill."),
    )
    address_line1 = forms.CharField(label=_("Address line 1"), max_length=255, required=False)
    address_line2 = forms.CharField(label=_("Address line 2"), max_length=255, required=False)
    city = forms.CharField(label=_("City"), max_length=128, required=False)
    postal_code = forms.CharField(label=_("Postal code"), max_length=32, required=False)
    state = forms.CharField(label=_("State / region"), max_length=128, required=False)
    country = LazyTypedChoiceField(label=_("Country"), choices=countries)
    tax_id = forms.CharField(label=_("Tax ID"), max_length=64, required=False)
    tax_id_type = forms.ChoiceField(
        label=_("Kind of tax ID"),
        choices=[("", _("The usual one for my country"))] + list(TaxIdType.choices),
        required=False,
    )
    preferred_language = forms.ChoiceField(label=_("Language of bills and emails"), choices=PortalLanguage.choices)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Country names in the language of this request (the field's choices are built once, in English).
        self.fields["country"].choices = list(countries)

    def clean_billing_emails(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["billing_emails"].splitlines() if line.strip()]


def plan_option_label(option: PlanOption) -> str:
    """ "Cloud — Pro · 99.00 USD per unit · monthly": the plan, its price and how often it bills, in the
    reader's language (the price as on the customer's bills); ", plus usage" when metered charges come
    on top."""
    plan = option.plan
    name = f"{plan.product.name} — {plan.name}"
    if option.price is None:
        return gettext("%(plan)s · %(interval)s") % {"plan": name, "interval": plan.interval_label}
    price = money(option.price, option.currency)
    if option.per_unit:
        price = gettext("%(price)s per unit") % {"price": price}
    values = {"plan": name, "price": price, "interval": plan.interval_label}
    if option.plus_usage:
        return gettext("%(plan)s · %(price)s · %(interval)s, plus usage") % values
    return gettext("%(plan)s · %(price)s · %(interval)s") % values


class ChangeSubscriptionForm(forms.Form):
    plan = forms.TypedChoiceField(label=_("Plan"), coerce=int, choices=())
    quantity = forms.IntegerField(label=_("Quantity"), min_value=1, max_value=100000)

    def __init__(self, *args, plans: Sequence[PlanOption] = (), quantity_enabled=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plan"].choices = [(option.plan.pk, plan_option_label(option)) for option in plans]
        if not quantity_enabled:
            self.fields["quantity"].disabled = True


class CancelSubscriptionForm(forms.Form):
    reason = forms.ChoiceField(label=_("Why are you canceling?"), choices=(), required=False)
    comment = forms.CharField(
        label=_("Anything else?"), required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args, reasons=(), reason_required=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reason"].choices = [("", "—")] + [(reason, _(reason)) for reason in reasons]
        self.fields["reason"].required = reason_required


class InviteForm(forms.Form):
    email = forms.EmailField(label=_("Email"))
    role = forms.ChoiceField(label=_("Role"), choices=CustomerMembership.Role.choices)


class InvoiceFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[
            ("", _("All")),
            ("open", _("Open")),
            ("paid", _("Paid")),
            ("void", _("Void")),
            ("uncollectible", _("Uncollectible")),
        ],
    )


class CreditPurchaseForm(forms.Form):
    """Buy prepaid credits for one of the customer's wallets (an invoice, paid by card or transfer)."""

    wallet = forms.TypedChoiceField(label=_("Wallet"), coerce=int)
    credits = forms.DecimalField(
        label=_("Credits"), max_digits=19, decimal_places=4, min_value=1, max_value=10**9,
        help_text=_("Credits are granted once the invoice is paid."),
    )  # fmt: skip

    def __init__(self, *args, wallets: Sequence = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        per_credit = gettext("%(rate)s / credit")
        self.fields["wallet"].choices = [
            (wallet.pk, f"{wallet.name} ({per_credit % {'rate': money_text(wallet.rate, wallet.currency)}})")
            for wallet in wallets
        ]


SPEND = "spend"


class BudgetForm(forms.Form):
    """A budget: what to watch (spend, or the usage of a metric of the customer's plans), the amounts
    to be warned at, and whether the highest is a hard limit."""

    watch = forms.ChoiceField(label=_("What to watch"))
    thresholds = forms.CharField(
        label=_("Warn me at"),
        max_length=400,
        help_text=_("One or more amounts, separated by commas, e.g. 100, 250. Spend is in your billing currency."),
    )
    is_hard_limit = forms.BooleanField(
        label=_("The highest amount is a hard limit"),
        required=False,
        help_text=_("When it is reached, the service may stop accepting your usage until the next billing period."),
    )

    def __init__(self, *args, metrics: Sequence = (), currency: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["watch"].choices = [
            (SPEND, gettext("Spend this period (%(currency)s)") % {"currency": currency}),
            *[(metric.code, gettext("Usage: %(metric)s") % {"metric": metric.name}) for metric in metrics],
        ]

    def clean_thresholds(self) -> list[str]:
        return [part.strip() for part in self.cleaned_data["thresholds"].replace("，", ",").split(",") if part.strip()]

    def service_arguments(self) -> dict:
        watch = self.cleaned_data["watch"]
        return {
            "kind": "spend" if watch == SPEND else "usage",
            "metric": None if watch == SPEND else watch,
            "thresholds": self.cleaned_data["thresholds"],
            "is_hard_limit": self.cleaned_data["is_hard_limit"],
        }
