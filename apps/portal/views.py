"""The customer self-service portal: server-rendered pages for a customer's users.

Every view reads and writes through the domain apps' customer-scoped selectors and services, with the
customer taken from the signed-in user's membership (`request.portal_membership`, see middleware):
an id of another customer's object is a 404, whatever the id.
"""

import math
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME, logout, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordChangeForm, SetPasswordForm
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from apps.accounts.constants import PORTAL_ROLE_ACTIONS, PortalLanguage
from apps.accounts.credentials import portal_token_create, portal_token_revoke
from apps.accounts.invitations import (
    AccountExists,
    customer_invitation_accept,
    customer_invitation_accept_with_new_account,
    customer_invitation_create,
    customer_invitation_for_token,
    customer_invitation_list_for_customer,
    customer_invitation_revoke,
    customer_invitations_for_user,
)
from apps.accounts.selectors import (
    customer_memberships_for_user,
    customer_now,
    customer_team_list,
    portal_token_list_for_membership,
)
from apps.accounts.services import (
    customer_billing_details_update,
    customer_membership_language_set,
    customer_membership_remove,
)
from apps.billing.constants import ChangeTiming
from apps.billing.services import (
    subscription_cancel,
    subscription_change,
    subscription_change_preview,
    subscription_pause,
    subscription_resume,
    subscription_upcoming_invoice,
)
from apps.core.errors import ApplicationError, NotFound, PermissionRefused
from apps.core.network import client_address
from apps.core.rate_limits import rate_limit_hit
from apps.invoices.selectors import (
    credit_note_get_for_customer,
    credit_note_list_for_customer,
    customer_amount_due,
    customer_balance,
    invoice_amount_due,
    invoice_days_overdue,
    invoice_get_for_customer,
    invoice_list_for_customer,
)
from apps.invoices.services import credit_note_render_pdf, invoice_pdf_ensure
from apps.payments.constants import PaymentStatus
from apps.payments.receipts import payment_receipt_pdf, receipt_number
from apps.payments.selectors import (
    invoice_payments_for_customer,
    payment_get_for_customer,
    payment_list_for_customer,
)
from apps.payments.stripe.client import stripe_enabled
from apps.payments.stripe.customers import (
    stripe_payment_method_attach,
    stripe_payment_method_detach,
    stripe_payment_method_set_default,
    stripe_payment_methods_list,
    stripe_setup_intent_create,
)
from apps.payments.stripe.pay_now import invoice_pay_now, payment_client_secret, payment_refresh
from apps.portal.services import portal_login_link_send
from apps.subscriptions.constants import SubscriptionStatus
from apps.subscriptions.selectors import subscription_get_for_customer, subscription_list_for_customer
from apps.subscriptions.services import subscription_cancel_undo
from apps.usage.selectors import usage_so_far_for_customer
from apps.wallets.constants import PurchaseTrigger
from apps.wallets.selectors import wallet_entries, wallet_list_for_customer
from apps.wallets.services.ledger import credits_worth
from apps.wallets.services.purchases import wallet_purchase

from .constants import CancellationMode
from .forms import (
    ApiTokenForm,
    BillingDetailsForm,
    CancelSubscriptionForm,
    ChangeSubscriptionForm,
    CreditPurchaseForm,
    InviteForm,
    InvoiceFilterForm,
    MagicLinkForm,
    PortalPasswordResetForm,
    add_application_error,
)
from .middleware import SESSION_KEY
from .selectors import (
    portal_business_name,
    portal_change_arguments,
    portal_configuration,
    portal_plan_feature_rows,
    portal_plan_options,
    preview_token_make,
    preview_token_read,
)

LOGIN_URL = reverse_lazy("portal:login")


def portal_view(action: str = "read", feature: str | None = None) -> Callable:
    """A portal page: signed in, belonging to a customer, with a role allowing `action`
    ("read", "manage_billing", "manage_team"), and the portal `feature` (a configuration flag) on.
    Passes the membership and the configuration to the view."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect(f"{LOGIN_URL}?{REDIRECT_FIELD_NAME}={request.get_full_path()}")
            membership = request.portal_membership
            if membership is None:
                if _has_a_choice(request.user):
                    # Several customers and none picked yet, or invitations to answer: the user chooses.
                    return redirect(f"{reverse('portal:choose')}?next={quote(request.get_full_path())}")
                return render(request, "portal/no_access.html", _base_context(request, None), status=403)
            configuration = portal_configuration()
            if feature is not None and not getattr(configuration, feature):
                raise Http404("This page is turned off.")
            if action not in PORTAL_ROLE_ACTIONS.get(membership.role, frozenset()):
                return render(
                    request, "portal/forbidden.html", _base_context(request, membership, configuration), status=403
                )
            try:
                return view(request, membership, configuration, *args, **kwargs)
            except NotFound as exc:
                raise Http404(exc.message) from exc

        return wrapper

    return decorate


def _base_context(request, membership, configuration=None) -> dict[str, Any]:
    configuration = configuration or portal_configuration()
    memberships = list(customer_memberships_for_user(user=request.user)) if request.user.is_authenticated else []
    allowed = PORTAL_ROLE_ACTIONS.get(membership.role, frozenset()) if membership else frozenset()
    return {
        "membership": membership,
        "customer": membership.customer if membership else None,
        "memberships": memberships,
        "portal": configuration,
        "business_name": portal_business_name(configuration),
        "can_manage_billing": "manage_billing" in allowed,
        "can_manage_team": "manage_team" in allowed,
        "cards_enabled": configuration.payment_methods_enabled and stripe_enabled(),
        "languages": PortalLanguage.choices,
        "invitation_count": (
            customer_invitations_for_user(user=request.user).count() if request.user.is_authenticated else 0
        ),
    }


def portal_base_context(request, membership, configuration=None) -> dict[str, Any]:
    """What every portal page shows around its content (brand, language, the signed-in member), for
    pages rendered outside this module (the login lockout page)."""
    return _base_context(request, membership, configuration)


def _render(request, template: str, membership, configuration, context: dict[str, Any], status: int = 200):
    return render(request, template, {**_base_context(request, membership, configuration), **context}, status=status)


# --- Sign-in --------------------------------------------------------------------------------------


class PortalLoginView(auth_views.LoginView):
    template_name = "portal/login.html"
    redirect_authenticated_user = True

    def get_default_redirect_url(self):
        return reverse("portal:dashboard")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        return {**_base_context(self.request, None), **context}


def _email_form_over_client_limit(request, form) -> int | None:
    """Count a post of a form that emails anyone (sign-in link, password reset) against the client
    address's limit (`PORTAL_EMAIL_RATES["client"]`). Past it: the seconds to wait, and the form has
    an error saying when to try again (the page answers 429 with Retry-After)."""
    wait = rate_limit_hit(
        scope="portal_email_client", ident=client_address(request), rate=settings.PORTAL_EMAIL_RATES.get("client")
    )
    if wait is None:
        return None
    minutes = max(1, math.ceil(wait / 60))
    form.full_clean()
    form.add_error(
        None,
        ngettext(
            "Too many emails were asked for from your network. Try again in %(minutes)d minute.",
            "Too many emails were asked for from your network. Try again in %(minutes)d minutes.",
            minutes,
        )
        % {"minutes": minutes},
    )
    return math.ceil(wait)


def _too_many_requests(response, wait: int):
    response.status_code = 429
    response["Retry-After"] = str(wait)
    return response


def login_link_request(request):
    """Ask for a passwordless sign-in link. Always answers the same, whether the address is known
    (past the per-address limit too); past the client address's limit, 429 and a form error."""
    form = MagicLinkForm(request.POST or None)
    if request.method == "POST" and (wait := _email_form_over_client_limit(request, form)) is not None:
        context = {**_base_context(request, None), "form": form}
        return _too_many_requests(render(request, "portal/login_link.html", context), wait)
    if request.method == "POST" and form.is_valid():
        portal_login_link_send(email=form.cleaned_data["email"], client=client_address(request))
        return render(
            request,
            "portal/login_link_sent.html",
            {**_base_context(request, None), "email": form.cleaned_data["email"]},
        )
    return render(request, "portal/login_link.html", {**_base_context(request, None), "form": form})


def magic_login(request):
    """Where a sign-in link lands (?sesame=…): one-time, short-lived (django-sesame)."""
    from django.contrib.auth import authenticate, login

    user = authenticate(request, sesame=request.GET.get("sesame", ""))
    if user is None or user.is_staff:
        return render(request, "portal/login_link_invalid.html", _base_context(request, None), status=403)
    login(request, user, backend="sesame.backends.ModelBackend")
    if not user.has_usable_password():
        messages.info(request, _("Welcome! Set a password to sign in without a link next time."))
        return redirect("portal:password")
    return redirect("portal:dashboard")


def portal_logout(request):
    if request.method == "POST":
        logout(request)
        return redirect("portal:login")
    return redirect("portal:dashboard")


class PortalPasswordResetView(auth_views.PasswordResetView):
    """Password reset by email, for customer users only (a staff account is never reset from here)."""

    template_name = "portal/password_reset.html"
    form_class = PortalPasswordResetForm  # emails portal/email/password_reset.txt from a task
    success_url = reverse_lazy("portal:password-reset-done")

    def post(self, request, *args, **kwargs):
        form = self.get_form()
        wait = _email_form_over_client_limit(request, form)
        if wait is None:
            return super().post(request, *args, **kwargs)
        return _too_many_requests(self.render_to_response(self.get_context_data(form=form)), wait)

    def get_context_data(self, **kwargs):
        return {**_base_context(self.request, None), **super().get_context_data(**kwargs)}


class PortalPasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "portal/password_reset_done.html"

    def get_context_data(self, **kwargs):
        return {**_base_context(self.request, None), **super().get_context_data(**kwargs)}


class PortalPasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "portal/password_reset_confirm.html"
    success_url = reverse_lazy("portal:password-reset-complete")

    def get_context_data(self, **kwargs):
        return {**_base_context(self.request, None), **super().get_context_data(**kwargs)}


class PortalPasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "portal/password_reset_complete.html"

    def get_context_data(self, **kwargs):
        return {**_base_context(self.request, None), **super().get_context_data(**kwargs)}


@portal_view()
def password(request, membership, configuration):
    """Set a password (after signing in with a link) or change it."""
    form_class = PasswordChangeForm if request.user.has_usable_password() else SetPasswordForm
    form = form_class(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        form.save()
        update_session_auth_hash(request, form.user)
        messages.success(request, _("Your password is saved."))
        return redirect("portal:dashboard")
    return _render(request, "portal/password.html", membership, configuration, {"form": form})


def _has_a_choice(user) -> bool:
    """Whether a signed-in user without a customer picked has one to pick: memberships (then several)
    or open invitations."""
    return customer_memberships_for_user(user=user).exists() or customer_invitations_for_user(user=user).exists()


def _portal_next(request, default: str = "") -> str:
    """Where to go after a choice: a portal page of this site, else the overview."""
    next_url = request.POST.get("next") or request.GET.get("next") or default
    if next_url.startswith("/portal/") and url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return next_url
    return reverse("portal:dashboard")


def choose_customer(request):
    """After sign-in, a user of several customers picks the one to work in (none is picked for them),
    and anyone answers the invitations addressed to them: accepting one joins that customer."""
    if not request.user.is_authenticated:
        return redirect(f"{LOGIN_URL}?{REDIRECT_FIELD_NAME}={quote(request.get_full_path())}")
    error = ""
    status = 200
    if request.method == "POST":
        if "customer" in request.POST:
            try:
                customer_id = int(request.POST["customer"])
            except ValueError:
                raise Http404("No such customer.") from None
            if not customer_memberships_for_user(user=request.user).filter(customer_id=customer_id).exists():
                raise Http404("No such customer.")
            request.session[SESSION_KEY] = customer_id
            return redirect(_portal_next(request))
        try:
            invitation_id = int(request.POST.get("invitation", ""))
        except ValueError:
            raise Http404("No such invitation.") from None
        if not customer_invitations_for_user(user=request.user).filter(pk=invitation_id).exists():
            raise Http404("No such invitation.")
        try:
            joined = customer_invitation_accept(invitation_id=invitation_id, user=request.user)
        except ApplicationError as exc:
            error, status = exc.message, 403 if isinstance(exc, PermissionRefused) else 400
        else:
            return _joined(request, joined)
    choices = list(customer_memberships_for_user(user=request.user))
    invitations = list(customer_invitations_for_user(user=request.user))
    if not choices and not invitations:
        return render(request, "portal/no_access.html", _base_context(request, None), status=403)
    context = {
        **_base_context(request, None),
        "choices": choices,
        "invitations": invitations,
        "next": _portal_next(request),
        "error": error,
    }
    return render(request, "portal/choose.html", context, status=status)


def _joined(request, membership):
    """After accepting an invitation: work in the customer just joined."""
    request.session[SESSION_KEY] = membership.customer_id
    messages.success(request, _("You joined the billing account of %(name)s.") % {"name": membership.customer.name})
    if not request.user.has_usable_password():
        messages.info(request, _("Set a password to sign in without a link next time."))
        return redirect("portal:password")
    return redirect("portal:dashboard")


def invitation(request, token):
    """Where an invitation's link lands. Accepting (a POST) needs the invitee: signed in with the
    invited address, or, for an address without an account, the link itself (which makes the account).
    Nothing is joined by opening the link."""
    from django.contrib.auth import get_user_model, login

    try:
        invitation = customer_invitation_for_token(token=token)
    except ApplicationError:
        return render(request, "portal/invitation_invalid.html", _base_context(request, None), status=404)
    user = request.user
    error, status = "", 200
    if request.method == "POST":
        try:
            if user.is_authenticated:
                joined = customer_invitation_accept(invitation_id=invitation.pk, user=user)
            else:
                user, joined = customer_invitation_accept_with_new_account(token=token)
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        except AccountExists:
            return redirect(f"{LOGIN_URL}?{REDIRECT_FIELD_NAME}={quote(request.path)}")
        except ApplicationError as exc:
            error, status = exc.message, 403 if isinstance(exc, PermissionRefused) else 400
        else:
            return _joined(request, joined)
    signed_in = user.is_authenticated
    context = {
        **_base_context(request, None),
        "invitation": invitation,
        "error": error,
        "wrong_account": signed_in and (user.is_staff or (user.email or "").strip().lower() != invitation.email),
        "sign_in_first": not signed_in and get_user_model().objects.filter(email__iexact=invitation.email).exists(),
    }
    response = render(request, "portal/invitation.html", context, status=status)
    response.headers["Cache-Control"] = "no-store"  # the link's token is in the URL
    return response


@require_POST
def switch_customer(request):
    """Act for another of the user's customers (a user may belong to several)."""
    if not request.user.is_authenticated:
        return redirect(LOGIN_URL)
    try:
        customer_id = int(request.POST.get("customer", ""))
    except ValueError:
        raise Http404("No such customer.") from None
    if not customer_memberships_for_user(user=request.user).filter(customer_id=customer_id).exists():
        raise Http404("No such customer.")
    request.session[SESSION_KEY] = customer_id
    return redirect("portal:dashboard")


@require_POST
def set_language(request):
    """Pick the portal's language: remembered for the signed-in user (at this customer), and in a
    cookie for the sign-in pages."""
    language = request.POST.get("language", "")
    if language not in PortalLanguage.values:
        language = PortalLanguage.ENGLISH
    if request.portal_membership is not None:
        customer_membership_language_set(membership_id=request.portal_membership.pk, language=language)
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = reverse("portal:dashboard")
    response = HttpResponseRedirect(next_url)
    response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language, samesite="Lax")
    translation.activate(language)
    return response


# --- Dashboard -----------------------------------------------------------------------------------------


def _subscription_summary(subscription, now):
    """The next invoice (preview) and the usage so far of one live subscription."""
    upcoming = None
    upcoming_error = ""
    try:
        upcoming = subscription_upcoming_invoice(subscription_id=subscription.pk, now=now)
    except ApplicationError as exc:
        upcoming_error = exc.message
    metric_codes = [charge.metric_code for charge in subscription.plan_version.charges.all() if charge.metric_code]
    usage = []
    if metric_codes and subscription.status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE):
        usage = usage_so_far_for_customer(
            customer=subscription.customer,
            metric_codes=metric_codes,
            start=subscription.current_period_start_at,
            end=min(now, subscription.current_period_end_at),
        )
    pending = [c for c in subscription.scheduled_changes.all() if c.applied_at is None and c.canceled_at is None]
    return {
        "subscription": subscription,
        "upcoming": upcoming,
        "upcoming_error": upcoming_error,
        "usage": usage,
        "scheduled_change": pending[0] if pending else None,
    }


@portal_view()
def dashboard(request, membership, configuration):
    customer = membership.customer
    now = customer_now(customer)
    subscriptions = [
        s
        for s in subscription_list_for_customer(customer_id=customer.pk).prefetch_related(
            "plan_version__charges", "scheduled_changes__plan__product"
        )
        if s.status != SubscriptionStatus.CANCELED
    ]
    open_invoices = _with_days_overdue(
        list(invoice_list_for_customer(customer_id=customer.pk).filter(status__in=["open", "uncollectible"])),
        customer,
    )
    payable = [invoice for invoice in open_invoices if invoice.status == "open" and invoice.amount_due.amount > 0]
    context = {
        "now": now,
        "summaries": [_subscription_summary(subscription, now) for subscription in subscriptions],
        "balance": customer_balance(customer=customer),
        "amount_due": customer_amount_due(customer=customer),
        "open_invoices": open_invoices,
        # The Pay button beside the amount due: the invoice's own page when one is payable, else the list.
        "pay_url": (
            reverse("portal:invoice-pay", args=[payable[0].pk])
            if len(payable) == 1
            else f"{reverse('portal:invoices')}?status=open"
            if payable
            else ""
        ),
        "days_overdue": max((invoice.days_overdue for invoice in open_invoices), default=0),
        "recent_invoices": _with_days_overdue(list(invoice_list_for_customer(customer_id=customer.pk)[:5]), customer),
    }
    return _render(request, "portal/dashboard.html", membership, configuration, context)


# --- Invoices ------------------------------------------------------------------------------------------


def _with_days_overdue(invoices: list, customer) -> list:
    """The invoices, each with `days_overdue` (0 unless open and past its due date with money due), as
    of the customer's today (its test clock's, if it has one)."""
    today = customer_now(customer).date()
    for invoice in invoices:
        invoice.days_overdue = invoice_days_overdue(invoice, today=today)
    return invoices


@portal_view(feature="invoice_history_enabled")
def invoice_list(request, membership, configuration):
    form = InvoiceFilterForm(request.GET or None)
    status = form.cleaned_data["status"] if form.is_valid() else ""
    invoices = _with_days_overdue(
        list(invoice_list_for_customer(customer_id=membership.customer_id, status=status)[:200]), membership.customer
    )
    credit_notes = list(credit_note_list_for_customer(customer_id=membership.customer_id)[:50])
    return _render(
        request,
        "portal/invoice_list.html",
        membership,
        configuration,
        {"invoices": invoices, "credit_notes": credit_notes, "filter_form": form, "status": status},
    )


@portal_view(feature="invoice_history_enabled")
def invoice_detail(request, membership, configuration, invoice_id):
    invoice = invoice_get_for_customer(customer_id=membership.customer_id, invoice_id=invoice_id)
    _with_days_overdue([invoice], membership.customer)
    return _render(
        request,
        "portal/invoice_detail.html",
        membership,
        configuration,
        {
            "invoice": invoice,
            "lines": list(invoice.lines.all()),
            "taxes": list(invoice.taxes.all()),
            "credit_notes": list(invoice.credit_notes.all()),
            "amount_due": invoice_amount_due(invoice),
            "payments": invoice_payments_for_customer(customer_id=membership.customer_id, invoice_id=invoice.pk),
        },
    )


@portal_view(feature="invoice_history_enabled")
def payment_list(request, membership, configuration):
    """The customer's payments: when, how much, how (the card charged, or the manual method), the
    invoices each paid, its status, and a receipt for each payment received."""
    payments = list(payment_list_for_customer(customer_id=membership.customer_id)[:200])
    return _render(request, "portal/payment_list.html", membership, configuration, {"payments": payments})


@portal_view(feature="invoice_history_enabled")
def payment_receipt(request, membership, configuration, payment_id):
    """The receipt of a payment received (PDF, in the customer's language); 404 for any other."""
    payment = payment_get_for_customer(customer_id=membership.customer_id, payment_id=payment_id)
    if payment.status != PaymentStatus.SUCCEEDED:
        raise Http404("Only a payment received has a receipt.")
    response = HttpResponse(payment_receipt_pdf(payment), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="receipt-{receipt_number(payment)}.pdf"'
    return response


def _pdf_response(field_file, filename: str) -> FileResponse:
    try:
        handle = field_file.open("rb")
    except FileNotFoundError as exc:
        raise Http404("The PDF is missing.") from exc
    return FileResponse(handle, content_type="application/pdf", as_attachment=True, filename=filename)


@portal_view(feature="invoice_history_enabled")
def invoice_pdf(request, membership, configuration, invoice_id):
    """The PDF bill as issued (rendered now if the worker has not yet: it is rendered once, ever)."""
    invoice = invoice_get_for_customer(customer_id=membership.customer_id, invoice_id=invoice_id)
    if not invoice.pdf:
        invoice = invoice_pdf_ensure(invoice_id=invoice.pk)
    return _pdf_response(invoice.pdf, f"{invoice.number}.pdf")


@portal_view(feature="invoice_history_enabled")
def credit_note_pdf(request, membership, configuration, credit_note_id):
    credit_note = credit_note_get_for_customer(customer_id=membership.customer_id, credit_note_id=credit_note_id)
    if not credit_note.pdf:
        credit_note = credit_note_render_pdf(credit_note_id=credit_note.pk)
    return _pdf_response(credit_note.pdf, f"{credit_note.number}.pdf")


# --- Subscriptions -------------------------------------------------------------------------------------


@portal_view()
def subscription_detail(request, membership, configuration, subscription_id):
    subscription = subscription_get_for_customer(customer_id=membership.customer_id, subscription_id=subscription_id)
    pending = [c for c in subscription.scheduled_changes.all() if c.applied_at is None and c.canceled_at is None]
    upcoming = None
    if subscription.status != SubscriptionStatus.CANCELED:
        try:
            upcoming = subscription_upcoming_invoice(
                subscription_id=subscription.pk, now=customer_now(membership.customer)
            )
        except ApplicationError:
            upcoming = None  # nothing is coming (ended, or canceled at period end with nothing owed)
    return _render(
        request,
        "portal/subscription_detail.html",
        membership,
        configuration,
        {
            "subscription": subscription,
            "upcoming": upcoming,
            "pending_change": pending[0] if pending else None,
            "can_change": subscription.status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING)
            and not subscription.cancel_at_period_end
            and configuration.subscription_update_enabled,
            "can_cancel": subscription.status != SubscriptionStatus.CANCELED
            and not subscription.cancel_at_period_end
            and configuration.subscription_cancel_enabled,
            "can_pause": subscription.status == SubscriptionStatus.ACTIVE
            and not subscription.cancel_at_period_end
            and configuration.subscription_pause_enabled,
        },
    )


@portal_view(action="manage_billing", feature="subscription_update_enabled")
def subscription_change_view(request, membership, configuration, subscription_id):
    """Change plan or quantity: the form, then the exact proration preview, then the change itself
    (only with `confirm`, and only as previewed)."""
    subscription = subscription_get_for_customer(customer_id=membership.customer_id, subscription_id=subscription_id)
    plans = portal_plan_options(configuration=configuration, subscription=subscription)
    initial = {"plan": subscription.plan_id, "quantity": subscription.quantity}
    form = ChangeSubscriptionForm(
        request.POST or None, initial=initial, plans=plans, quantity_enabled=configuration.quantity_update_enabled
    )
    preview, preview_token = None, ""
    if request.method == "POST" and form.is_valid():
        try:
            arguments = portal_change_arguments(
                configuration=configuration,
                subscription=subscription,
                plan_id=form.cleaned_data["plan"],
                quantity=form.cleaned_data["quantity"] if configuration.quantity_update_enabled else None,
            )
            if request.POST.get("preview_token"):
                effective_at = preview_token_read(token=request.POST["preview_token"], arguments=arguments)
                subscription_change(**arguments, effective_at=effective_at, actor=request.user)
                messages.success(request, _("Your subscription is changed."))
                return redirect("portal:subscription", subscription_id=subscription.pk)
            preview = subscription_change_preview(**arguments)
            preview_token = preview_token_make(arguments=arguments, effective_at=preview.effective_at)
        except ApplicationError as exc:
            add_application_error(form, exc)
    return _render(
        request,
        "portal/subscription_change.html",
        membership,
        configuration,
        {
            "subscription": subscription,
            "form": form,
            "preview": preview,
            "preview_token": preview_token,
            "plan_options": plans,
            "plan_feature_rows": portal_plan_feature_rows(plans),
        },
    )


@portal_view(action="manage_billing", feature="subscription_cancel_enabled")
def subscription_cancel_view(request, membership, configuration, subscription_id):
    subscription = subscription_get_for_customer(customer_id=membership.customer_id, subscription_id=subscription_id)
    immediately = configuration.cancellation_mode == CancellationMode.IMMEDIATELY
    form = CancelSubscriptionForm(
        request.POST or None,
        reasons=configuration.cancellation_reasons,
        reason_required=configuration.cancellation_reason_required,
    )
    if request.method == "POST" and form.is_valid():
        reason = " — ".join(
            part for part in [form.cleaned_data["reason"], form.cleaned_data["comment"].strip()] if part
        )
        try:
            if immediately:
                subscription_cancel(
                    subscription_id=subscription.pk,
                    when=ChangeTiming.NOW,
                    prorate=configuration.cancellation_prorate,
                    reason=reason,
                    actor=request.user,
                )
                messages.success(request, _("Your subscription is canceled."))
            else:
                subscription_cancel(
                    subscription_id=subscription.pk, when=ChangeTiming.PERIOD_END, reason=reason, actor=request.user
                )
                messages.success(request, _("Your subscription ends at the end of the billing period."))
            return redirect("portal:subscription", subscription_id=subscription.pk)
        except ApplicationError as exc:
            add_application_error(form, exc)
    return _render(
        request,
        "portal/subscription_cancel.html",
        membership,
        configuration,
        {"subscription": subscription, "form": form, "immediately": immediately},
    )


@require_POST
@portal_view(action="manage_billing")
def subscription_resume_view(request, membership, configuration, subscription_id):
    """Keep a subscription whose cancellation is scheduled, or resume a paused one."""
    subscription = subscription_get_for_customer(customer_id=membership.customer_id, subscription_id=subscription_id)
    try:
        if subscription.status == SubscriptionStatus.PAUSED:
            subscription_resume(subscription_id=subscription.pk, actor=request.user)
        else:
            subscription_cancel_undo(subscription_id=subscription.pk, actor=request.user)
        messages.success(request, _("Your subscription continues."))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("portal:subscription", subscription_id=subscription.pk)


@require_POST
@portal_view(action="manage_billing", feature="subscription_pause_enabled")
def subscription_pause_view(request, membership, configuration, subscription_id):
    subscription = subscription_get_for_customer(customer_id=membership.customer_id, subscription_id=subscription_id)
    try:
        subscription_pause(subscription_id=subscription.pk, actor=request.user)
        messages.success(request, _("Your subscription is paused."))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("portal:subscription", subscription_id=subscription.pk)


# --- Billing details and team -------------------------------------------------------------------------


@portal_view(action="manage_billing", feature="billing_details_enabled")
def billing_details(request, membership, configuration):
    customer = membership.customer
    contacts = [contact.email for contact in customer.billing_contacts.filter(receives_invoices=True).order_by("id")]
    initial = {
        **{name: getattr(customer, name) for name in BillingDetailsForm.base_fields if hasattr(customer, name)},
        "country": str(customer.country),
        "billing_emails": "\n".join(contacts),
    }
    form = BillingDetailsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        billing_emails = data.pop("billing_emails")
        try:
            customer_billing_details_update(customer_id=customer.pk, billing_emails=billing_emails, **data)
        except ApplicationError as exc:
            add_application_error(form, exc)
        else:
            messages.success(request, _("Your billing details are saved."))
            return redirect("portal:billing")
    # The saved tax ID's status, but not beside another tax ID the form comes back with (refused).
    submitted_tax_id = "".join(form.data.get("tax_id", "").split()).upper() if form.is_bound else customer.tax_id
    tax_id_status = customer.get_tax_id_status_display() if submitted_tax_id == customer.tax_id else ""
    return _render(
        request,
        "portal/billing_details.html",
        membership,
        configuration,
        {"form": form, "tax_id_status": tax_id_status if customer.tax_id else ""},
    )


@portal_view(action="manage_team", feature="team_enabled")
def team(request, membership, configuration):
    """The team and its open invitations. Inviting answers the same for any address (known or not,
    a customer user's or a staff account's): the invitee joins only by accepting."""
    form = InviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            customer_invitation_create(customer_id=membership.customer_id, actor=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            add_application_error(form, exc)
        else:
            messages.success(
                request,
                _("%(email)s is invited: they join the team once they accept the invitation we email them.")
                % {"email": form.cleaned_data["email"]},
            )
            return redirect("portal:team")
    context = {
        "form": form,
        "team": list(customer_team_list(customer_id=membership.customer_id)),
        "invitations": list(customer_invitation_list_for_customer(customer_id=membership.customer_id)),
    }
    return _render(request, "portal/team.html", membership, configuration, context)


@require_POST
@portal_view(action="manage_team", feature="team_enabled")
def team_invitation_revoke(request, membership, configuration, invitation_id):
    try:
        customer_invitation_revoke(invitation_id=invitation_id, customer_id=membership.customer_id)
        messages.success(request, _("The invitation is revoked: its link no longer works."))
    except NotFound:
        raise
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("portal:team")


@require_POST
@portal_view(action="manage_team", feature="team_enabled")
def team_remove(request, membership, configuration, membership_id):
    try:
        customer_membership_remove(customer_id=membership.customer_id, membership_id=membership_id, actor=request.user)
        messages.success(request, _("Removed from the team."))
    except NotFound:
        raise
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("portal:team")


# --- Personal tokens for the customer API -----------------------------------------------------------


@portal_view()
def api_tokens(request, membership, configuration):
    """The user's own tokens for the customer API, for this customer; a new token's secret is shown
    once, on the page that made it."""
    form = ApiTokenForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            token, raw_token = portal_token_create(membership_id=membership.pk, name=form.cleaned_data["name"])
        except ApplicationError as exc:
            add_application_error(form, exc)
        else:
            created = {"token": token, "secret": raw_token}
            form = ApiTokenForm()
    response = _render(
        request,
        "portal/api_tokens.html",
        membership,
        configuration,
        {
            "form": form,
            "created": created,
            "tokens": list(portal_token_list_for_membership(membership_id=membership.pk)),
            "api_base": request.build_absolute_uri("/api/v1/portal/"),
        },
    )
    if created:
        response.headers["Cache-Control"] = "no-store"  # the secret must not stay in a cache
    return response


@require_POST
@portal_view()
def api_token_revoke(request, membership, configuration, token_id):
    portal_token_revoke(membership_id=membership.pk, token_id=token_id)
    messages.success(request, _("The token is revoked."))
    return redirect("portal:api-tokens")


# --- Payment methods and paying an invoice (Stripe) ------------------------------------------------------


def stripe_js_url() -> str:
    """Stripe.js: Stripe's own, or the stand-in that localstripe serves when the API base points there."""
    if settings.STRIPE_API_BASE:
        return settings.STRIPE_API_BASE.rstrip("/") + "/js.stripe.com/v3/"
    return "https://js.stripe.com/v3/"


def _stripe_csp_sources() -> dict[str, list[str]]:
    """What the Content Security Policy of a card page adds: Stripe.js loads from Stripe, frames its card
    fields and calls Stripe's API (all from localstripe's own origin when the API base points there)."""
    if settings.STRIPE_API_BASE:
        origin = "/".join(settings.STRIPE_API_BASE.split("/")[:3])
        return {"script-src": [origin], "connect-src": [origin], "frame-src": [origin]}
    return {
        "script-src": ["https://js.stripe.com"],
        "connect-src": ["https://api.stripe.com"],
        "frame-src": ["https://js.stripe.com", "https://hooks.stripe.com"],
    }


def _with_stripe_js(response):
    response._csp_update = _stripe_csp_sources()  # read by django-csp's middleware
    return response


def _cards_enabled(configuration) -> bool:
    return configuration.payment_methods_enabled and stripe_enabled()


@portal_view(action="manage_billing", feature="payment_methods_enabled")
def payment_methods(request, membership, configuration):
    if not stripe_enabled():
        raise Http404("Card payments are not configured.")
    cards = stripe_payment_methods_list(customer_id=membership.customer_id)
    return _render(request, "portal/payment_methods.html", membership, configuration, {"cards": cards})


@portal_view(action="manage_billing", feature="payment_methods_enabled")
def payment_method_add(request, membership, configuration):
    """Add a card: Stripe.js confirms a SetupIntent in the browser, then the confirmed card is recorded."""
    if not stripe_enabled():
        raise Http404("Card payments are not configured.")
    error = ""
    if request.method == "POST":
        try:
            stripe_payment_method_attach(
                customer_id=membership.customer_id,
                setup_intent_id=request.POST.get("setup_intent", ""),
                make_default=bool(request.POST.get("make_default")),
            )
        except NotFound as exc:
            raise Http404(exc.message) from exc
        except ApplicationError as exc:
            error = exc.message
        else:
            messages.success(request, _("Your card is saved."))
            return redirect("portal:payment-methods")
    intent = stripe_setup_intent_create(customer_id=membership.customer_id)
    context = {
        "client_secret": intent["client_secret"],
        "stripe_js_url": stripe_js_url(),
        "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
        "error": error,
    }
    return _with_stripe_js(_render(request, "portal/payment_method_add.html", membership, configuration, context))


@require_POST
@portal_view(action="manage_billing", feature="payment_methods_enabled")
def payment_method_default(request, membership, configuration, payment_method_id):
    stripe_payment_method_set_default(customer_id=membership.customer_id, payment_method_id=payment_method_id)
    messages.success(request, _("Default card changed."))
    return redirect("portal:payment-methods")


@require_POST
@portal_view(action="manage_billing", feature="payment_methods_enabled")
def payment_method_remove(request, membership, configuration, payment_method_id):
    stripe_payment_method_detach(customer_id=membership.customer_id, payment_method_id=payment_method_id)
    messages.success(request, _("Card removed."))
    return redirect("portal:payment-methods")


@portal_view(action="manage_billing", feature="invoice_history_enabled")
def invoice_pay(request, membership, configuration, invoice_id):
    """Pay what is due on an open invoice now, with a saved card (3-D Secure in the browser if asked)."""
    invoice = invoice_get_for_customer(customer_id=membership.customer_id, invoice_id=invoice_id)
    if not stripe_enabled():
        raise Http404("Card payments are not configured.")
    cards = stripe_payment_methods_list(customer_id=membership.customer_id) if _cards_enabled(configuration) else []
    context: dict[str, Any] = {
        "invoice": invoice,
        "cards": cards,
        "request_key": uuid.uuid4().hex,
        "stripe_js_url": stripe_js_url(),
        "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
        "error": "",
    }
    payment_id = request.GET.get("payment")
    if payment_id:  # back from 3-D Secure in the browser
        payment = payment_refresh(
            payment=payment_get_for_customer(customer_id=membership.customer_id, payment_id=payment_id)
        )
        if payment.status == PaymentStatus.SUCCEEDED:
            messages.success(request, _("Thank you: your payment is received."))
            return redirect("portal:invoice", invoice_id=invoice.pk)
        context["error"] = payment.failure_text or _("The payment was not completed.")
    if request.method == "POST":
        try:
            payment = invoice_pay_now(
                customer_id=membership.customer_id,
                invoice_id=invoice.pk,
                request_key=request.POST.get("request_key", ""),
                payment_method_id=request.POST.get("payment_method") or None,
            )
        except NotFound as exc:
            raise Http404(exc.message) from exc
        except ApplicationError as exc:
            context["error"] = exc.message
        else:
            if payment.status == PaymentStatus.SUCCEEDED:
                messages.success(request, _("Thank you: your payment is received."))
                return redirect("portal:invoice", invoice_id=invoice.pk)
            if payment.status == PaymentStatus.REQUIRES_ACTION:
                context["action_payment"] = payment
                context["client_secret"] = payment_client_secret(payment=payment)
            else:
                context["error"] = payment.failure_text or _("The payment was not completed.")
    context["amount_due"] = invoice_amount_due(
        invoice_get_for_customer(customer_id=membership.customer_id, invoice_id=invoice.pk)
    )
    return _with_stripe_js(_render(request, "portal/invoice_pay.html", membership, configuration, context))


# --- Prepaid credits ---------------------------------------------------------------------------------


@portal_view()
def credits(request, membership, configuration):
    """The customer's wallets of prepaid credits: balance, the latest ledger entries, and (for members
    who manage billing) buying credits — an invoice, paid on its pay page by card or by transfer."""
    customer = membership.customer
    wallets = list(wallet_list_for_customer(customer=customer).order_by("priority", "id"))
    can_buy = "manage_billing" in PORTAL_ROLE_ACTIONS.get(membership.role, frozenset())
    form = CreditPurchaseForm(request.POST if request.method == "POST" else None, wallets=wallets)
    if request.method == "POST":
        if not can_buy:
            return render(
                request, "portal/forbidden.html", _base_context(request, membership, configuration), status=403
            )
        # The same form sent again (back button, a second click after the first answer) buys nothing
        # more: it goes to the invoice the first one issued.
        request_key = str(request.POST.get("request_key", ""))[:64]
        done = request.session.get(CREDIT_PURCHASE_KEYS, {})
        if request_key and request_key in done:
            return _after_credit_purchase(configuration, done[request_key])
        if form.is_valid():
            try:
                purchase = wallet_purchase(
                    wallet_id=form.cleaned_data["wallet"], credits=form.cleaned_data["credits"],
                    trigger=PurchaseTrigger.PORTAL, actor=request.user, now=customer_now(customer),
                )  # fmt: skip
            except ApplicationError as exc:
                add_application_error(form, exc)
            else:
                if request_key:
                    request.session[CREDIT_PURCHASE_KEYS] = {**done, request_key: purchase.invoice_id}
                issued = _("Invoice %(number)s is issued for your credits: they are added once it is paid.")
                messages.success(request, issued % {"number": purchase.invoice.number})
                return _after_credit_purchase(configuration, purchase.invoice_id)
    shown = [
        {
            "wallet": wallet,
            "worth": credits_worth(credits=wallet.balance, wallet=wallet),
            "entries": list(wallet_entries(wallet=wallet)[:50]),
        }
        for wallet in wallets
    ]
    return _render(
        request, "portal/credits.html", membership, configuration,
        {"wallets": shown, "form": form, "can_buy": can_buy and bool(wallets), "request_key": uuid.uuid4().hex},
    )  # fmt: skip


CREDIT_PURCHASE_KEYS = "portal_credit_purchases"  # session: the form's request key → the invoice it issued


def _after_credit_purchase(configuration, invoice_id: int):
    """Pay the credits' invoice now when cards are on, else back to the credits page."""
    if stripe_enabled() and configuration.invoice_history_enabled:
        return redirect("portal:invoice-pay", invoice_id=invoice_id)
    return redirect("portal:credits")
