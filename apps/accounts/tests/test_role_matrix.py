"""docs/roles.md, walked: every staff role over every staff API endpoint, every admin page, admin
action and custom admin view, and field by field where a role may write some fields of a thing but
not others (a customer: Support corrects its details, never its billing terms).

The tables below are the matrix, written from docs/roles.md. They are checked against the URL conf and
the admin site: an endpoint, admin model, custom admin view, admin action or customer field that has
no entry fails `test_the_tables_cover_*`, so nothing new ships without someone deciding who may use it.

Allowed means "gets through to validation or lookup": the requests carry empty bodies and ids that do
not exist (999999), so an allowed role gets 200/400/404 (a redirect in the admin) and changes nothing,
and a refused role gets 403 before anything is looked up.
"""

import re

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse

import billing_portal.urls  # noqa: F401  (unregisters dj-stripe's admin pages, as in production)
from apps.accounts.credentials import user_token_create
from apps.accounts.models import BillingContact, Customer, CustomerMembership
from apps.accounts.roles import AUDITOR, BILLING_OPERATOR, FINANCE_ADMIN, SUPPORT
from apps.accounts.tests.factories import CustomerFactory, UserFactory
from apps.core.tests.test_admin import change_form_data

pytestmark = pytest.mark.django_db

ROLE_CODES = {"FA": FINANCE_ADMIN, "BO": BILLING_OPERATOR, "AU": AUDITOR, "SU": SUPPORT}
ROLES = list(ROLE_CODES.values())
MISSING = 999_999
NOT_STAFF = "not staff"  # the customer API and usage ingestion: no staff role gets in (401/403)


def who(spec: str) -> frozenset[str]:
    """ "FA BO" → the roles' names; "ALL"; "" for nobody (superusers only)."""
    if spec == "ALL":
        return frozenset(ROLES)
    return frozenset(ROLE_CODES[code] for code in spec.split())


def staff_in(role: str):
    user = UserFactory(username=role.lower().replace(" ", "-"), is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


# --- The staff API ---------------------------------------------------------------------------------

# (method, route under /api/v1/) → the roles allowed, or NOT_STAFF.
API = {
    ("GET", "customers"): "ALL",
    ("POST", "customers"): "FA BO",
    ("GET", "customers/{id}"): "ALL",
    ("PATCH", "customers/{id}"): "FA BO SU",  # Support: details only (CUSTOMER_FIELDS)
    ("GET", "customers/{id}/balance"): "ALL",
    ("GET", "customers/{id}/entitlements"): "ALL",  # what the seller's application reads per customer
    ("GET", "customers/{id}/usage"): "FA BO AU",
    ("GET", "customers/{id}/wallets"): "ALL",
    ("POST", "customers/{id}/wallets"): "FA BO",
    ("GET", "customers/{id}/wallets/{id}"): "ALL",
    ("GET", "customers/{id}/wallets/{id}/ledger"): "ALL",
    ("POST", "customers/{id}/wallets/{id}/grant"): "FA BO",
    ("POST", "customers/{id}/wallets/{id}/purchase"): "FA BO",
    ("GET", "customers/{id}/spend-status"): "ALL",  # what the seller's application reads
    ("GET", "customers/{id}/payment-methods"): "ALL",
    ("POST", "customers/{id}/payment-methods"): "FA BO",
    ("POST", "customers/{id}/payment-methods/setup-intent"): "FA BO",
    ("DELETE", "customers/{id}/payment-methods/{id}"): "FA BO",
    ("POST", "customers/{id}/payment-methods/{id}/default"): "FA BO",
    ("GET", "test-clocks"): "FA BO AU",
    ("POST", "test-clocks"): "FA BO",
    ("GET", "test-clocks/{id}"): "FA BO AU",
    ("POST", "test-clocks/{id}/advance"): "FA BO",
    ("GET", "products"): "ALL",
    ("POST", "products"): "FA",
    ("GET", "products/{id}"): "ALL",
    ("GET", "plans"): "ALL",
    ("POST", "plans"): "FA",
    ("GET", "plans/{id}"): "ALL",
    ("GET", "plan-versions"): "ALL",
    ("POST", "plan-versions"): "FA",
    ("GET", "plan-versions/{id}"): "ALL",
    ("PUT", "plan-versions/{id}"): "FA",
    ("POST", "plan-versions/{id}/copy"): "FA",
    ("GET", "prices"): "ALL",
    ("GET", "prices/{id}"): "ALL",
    ("POST", "prices/{id}/quote"): "ALL",  # a calculation, changes nothing
    ("GET", "billable-metrics"): "FA BO AU",
    ("POST", "billable-metrics"): "FA",
    ("GET", "billable-metrics/{id}"): "FA BO AU",
    ("GET", "features"): "ALL",
    ("POST", "features"): "FA",
    ("GET", "features/{id}"): "ALL",
    ("PATCH", "features/{id}"): "FA",
    ("PUT", "plan-versions/{id}/features"): "FA",
    ("PUT", "plan-versions/{id}/progressive-billing"): "FA",  # part of the version's terms
    ("GET", "coupons"): "ALL",
    ("POST", "coupons"): "FA",
    ("GET", "coupons/{id}"): "ALL",
    ("POST", "coupons/{id}/archive"): "FA",
    ("GET", "discounts"): "FA BO AU",
    ("POST", "discounts"): "FA",
    ("GET", "discounts/{id}"): "FA BO AU",
    ("GET", "subscriptions"): "ALL",
    ("POST", "subscriptions"): "FA BO",
    ("GET", "subscriptions/{id}"): "ALL",
    ("POST", "subscriptions/{id}/cancel"): "FA BO",
    ("POST", "subscriptions/{id}/cancel-undo"): "FA BO",
    ("POST", "subscriptions/{id}/change"): "FA BO",
    ("POST", "subscriptions/{id}/migrate-version"): "FA BO",
    ("POST", "subscriptions/{id}/pause"): "FA BO",
    ("POST", "subscriptions/{id}/preview-change"): "ALL",  # a preview, changes nothing
    ("POST", "subscriptions/{id}/resume"): "FA BO",
    ("POST", "subscriptions/{id}/scheduled-change/cancel"): "FA BO",
    ("GET", "subscriptions/{id}/upcoming-invoice"): "ALL",
    # Custom prices: a commercial term, like the catalog's prices: finance admins set them; every role reads.
    ("GET", "subscriptions/{id}/prices"): "ALL",
    ("GET", "subscriptions/{id}/prices/{id}"): "ALL",
    ("PUT", "subscriptions/{id}/prices/{id}"): "FA",
    ("DELETE", "subscriptions/{id}/prices/{id}"): "FA",
    # Progressive billing thresholds of its own: a commercial term like custom prices.
    ("GET", "subscriptions/{id}/progressive-billing"): "ALL",
    ("PUT", "subscriptions/{id}/progressive-billing"): "FA",
    ("DELETE", "subscriptions/{id}/progressive-billing"): "FA",
    ("GET", "invoices"): "ALL",
    ("POST", "invoices"): "FA BO",  # a one-off invoice
    ("GET", "invoices/{id}"): "ALL",
    ("POST", "invoices/{id}/credit-notes"): "FA BO",
    ("POST", "invoices/{id}/credit-notes/preview"): "FA BO",
    ("POST", "invoices/{id}/finalize"): "FA BO",
    ("POST", "invoices/{id}/mark-paid"): "FA BO",
    ("POST", "invoices/{id}/mark-uncollectible"): "FA BO",
    ("GET", "invoices/{id}/pdf"): "ALL",
    ("POST", "invoices/{id}/send"): "FA BO",
    ("POST", "invoices/{id}/void"): "FA BO",
    ("POST", "invoices/{id}/charge"): "FA BO",
    ("GET", "invoice-items"): "ALL",
    ("POST", "invoice-items"): "FA BO",
    ("GET", "invoice-items/{id}"): "ALL",
    ("PATCH", "invoice-items/{id}"): "FA BO",
    ("DELETE", "invoice-items/{id}"): "FA",  # the billing operator deletes nothing
    ("GET", "credit-notes"): "ALL",
    ("GET", "credit-notes/{id}"): "ALL",
    ("GET", "credit-notes/{id}/pdf"): "ALL",
    ("POST", "credit-notes/{id}/void"): "FA BO",
    ("GET", "billing-runs"): "FA BO AU",
    ("POST", "billing-runs"): "FA BO",
    ("GET", "billing-runs/{id}"): "FA BO AU",
    ("GET", "tax-rates"): "FA BO AU",
    ("POST", "tax-rates"): "FA",
    ("GET", "tax-rates/{id}"): "FA BO AU",
    ("PATCH", "tax-rates/{id}"): "FA",
    ("GET", "payments"): "ALL",
    ("POST", "payments"): "FA BO",
    ("GET", "payments/{id}"): "ALL",
    ("POST", "payments/{id}/reverse"): "FA BO",
    ("GET", "refunds"): "ALL",
    ("GET", "refunds/{id}"): "ALL",
    ("GET", "dunning-campaigns"): "FA BO AU",
    ("POST", "dunning-campaigns"): "FA BO",
    ("GET", "dunning-campaigns/{id}"): "FA BO AU",
    ("PATCH", "dunning-campaigns/{id}"): "FA BO",
    ("DELETE", "dunning-campaigns/{id}"): "FA",
    ("GET", "webhook-endpoints"): "FA AU",
    ("POST", "webhook-endpoints"): "FA",
    ("GET", "webhook-endpoints/event-types"): "FA AU",
    ("GET", "webhook-endpoints/{id}"): "FA AU",
    ("PATCH", "webhook-endpoints/{id}"): "FA",
    ("POST", "webhook-endpoints/{id}/roll-secret"): "FA",
    ("GET", "webhook-deliveries"): "FA AU",
    ("GET", "webhook-deliveries/{id}"): "FA AU",
    ("POST", "webhook-deliveries/{id}/redeliver"): "FA",
    ("GET", "alerts"): "ALL",
    ("POST", "alerts"): "FA BO",
    ("GET", "alerts/{id}"): "ALL",
    ("PATCH", "alerts/{id}"): "FA BO",
    ("DELETE", "alerts/{id}"): "FA",
    ("GET", "alert-crossings"): "ALL",
    ("GET", "alert-crossings/{id}"): "ALL",
    # Usage ingestion takes API keys; the customer API takes customer users (apps/portal/tests).
    ("POST", "events"): NOT_STAFF,
    ("POST", "events/batch"): NOT_STAFF,
    ("POST", "events/{id}/void"): NOT_STAFF,
    ("POST", "events/{id}/replace"): NOT_STAFF,
}
PORTAL_API_PREFIX = "portal/"  # every route under it: NOT_STAFF


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def _route(raw: str) -> str:
    raw = raw.replace("^", "").replace("$", "")
    raw = re.sub(r"\(\?P<\w+>[^)]*\)", "{id}", raw)
    return re.sub(r"<(?:\w+:)?\w+>", "{id}", raw)


def api_operations() -> list[tuple[str, str]]:
    """Every (method, route) the staff and customer API serve, read from the URL conf."""
    operations = set()
    for raw, callback in _walk(get_resolver().url_patterns):
        if not raw.startswith("api/v1/"):
            continue
        route = _route(raw)[len("api/v1/") :]
        actions = getattr(callback, "actions", None)
        if actions is not None:
            methods = actions.keys()
        else:
            view_class = callback.view_class
            methods = [m for m in ("get", "post", "put", "patch", "delete") if hasattr(view_class, m)]
        # HEAD is GET's (DRF adds it to a viewset's actions once it has served a request).
        operations.update((method.upper(), route) for method in methods if method not in {"head", "options"})
    return sorted(operations, key=lambda op: (op[1], op[0]))


def expected_api(method: str, route: str):
    if route.startswith(PORTAL_API_PREFIX):
        return NOT_STAFF
    spec = API[(method, route)]
    return spec if spec == NOT_STAFF else who(spec)


def test_the_tables_cover_every_api_operation():
    served = api_operations()
    staff = {op for op in served if not op[1].startswith(PORTAL_API_PREFIX)}
    assert sorted(staff - set(API)) == [], "API operations without an entry in the role matrix"
    assert sorted(set(API) - staff) == [], "entries for operations the API no longer serves"
    assert len(served) > len(API)  # the customer API is walked too


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "route"), api_operations(), ids=[f"{m} {r}" for m, r in api_operations()])
def test_api_matrix(api_client, role, method, route):
    _, token = user_token_create(user_id=staff_in(role).pk, name="matrix")
    path = "/api/v1/" + route.replace("{id}", str(MISSING))
    expected = expected_api(method, route)

    response = getattr(api_client, method.lower())(path, {}, format="json", HTTP_AUTHORIZATION=f"Token {token}")

    if expected == NOT_STAFF:
        assert response.status_code in {401, 403}, response.status_code
    elif role in expected:
        assert response.status_code not in {401, 403, 405} and response.status_code < 500, (
            response.status_code,
            response.content[:300],
        )
    else:
        assert response.status_code == 403, response.status_code
        assert response.json()["code"] == "permission_denied"


# --- A customer, field by field ---------------------------------------------------------------------

# Field of `PATCH customers/<id>` → (a new value, the roles that may change it). "never": refused for
# everyone (400), the currency being fixed. Support corrects details; billing terms, the external ID
# (which usage events name) and cards are money actions.
CUSTOMER_FIELDS = {
    "name": ("Renamed Ltd.", "FA BO SU"),
    "email": ("new-billing@customer.example", "FA BO SU"),
    "address_line1": ("1 New Road", "FA BO SU"),
    "address_line2": ("Floor 2", "FA BO SU"),
    "city": ("Leeds", "FA BO SU"),
    "postal_code": ("LS1 1AA", "FA BO SU"),
    "state": ("West Yorkshire", "FA BO SU"),
    "country": ("IE", "FA BO SU"),
    "tax_id": ("", "FA BO SU"),
    "tax_id_type": ("gb_vat", "FA BO SU"),
    "billing_contacts": ([{"email": "ap@customer.example", "name": "AP"}], "FA BO SU"),
    "external_id": ("crm-42", "FA BO"),
    "tax_exempt": (True, "FA BO"),
    "payment_terms_days": (45, "FA BO"),
    "invoice_grouping": ("per_customer", "FA BO"),
    "collection_method": ("charge_automatically", "FA BO"),
    "time_zone": ("Asia/Shanghai", "FA BO"),
    "currency": ("EUR", "never"),
}


def test_the_tables_cover_every_field_of_a_customer_update():
    from apps.accounts.api.serializers import CustomerUpdateInputSerializer

    assert set(CUSTOMER_FIELDS) == set(CustomerUpdateInputSerializer().fields)


def _customer_state(customer_id: int) -> dict:
    customer = Customer.objects.get(pk=customer_id)
    state = {name: getattr(customer, name) for name in CUSTOMER_FIELDS if name != "billing_contacts"}
    state["country"] = str(state["country"])
    state["billing_contacts"] = sorted(customer.billing_contacts.values_list("email", flat=True))
    return state


@pytest.fixture
def customer():
    return CustomerFactory(tax_id="GB980780684", tax_id_type="other")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("field", list(CUSTOMER_FIELDS))
def test_customer_update_field_by_field(api_client, customer, role, field):
    value, spec = CUSTOMER_FIELDS[field]
    _, token = user_token_create(user_id=staff_in(role).pk, name="matrix")
    before = _customer_state(customer.pk)

    response = api_client.patch(
        f"/api/v1/customers/{customer.pk}", {field: value}, format="json", HTTP_AUTHORIZATION=f"Token {token}"
    )

    after = _customer_state(customer.pk)
    changed = {name for name in before if before[name] != after[name]}
    if role not in expected_api("PATCH", "customers/{id}"):
        assert (response.status_code, response.json()["code"], changed) == (403, "permission_denied", set())
    elif spec == "never":
        assert (response.status_code, list(response.json()["fields"]), changed) == (400, [field], set())
    elif role in who(spec):
        assert response.status_code == 200, response.json()
        assert field in changed
    else:
        assert response.status_code == 403
        assert response.json() == {
            "code": "permission_denied",
            "message": "Your role may not change a customer's billing terms.",
            "fields": {field: ["Changing this is a money action your role does not have."]},
        }
        assert changed == set()


def test_sending_a_billing_term_back_unchanged_is_no_change_and_allowed(api_client, customer):
    _, token = user_token_create(user_id=staff_in(SUPPORT).pk, name="matrix")

    response = api_client.patch(
        f"/api/v1/customers/{customer.pk}",
        {"name": "Corrected Ltd.", "tax_exempt": False, "payment_terms_days": None},
        format="json",
        HTTP_AUTHORIZATION=f"Token {token}",
    )

    assert response.status_code == 200
    assert Customer.objects.get(pk=customer.pk).name == "Corrected Ltd."


# The customer's admin change page: field → the roles for whom it is editable (the others see it
# read-only; the auditor sees every field read-only).
CUSTOMER_ADMIN_FIELDS = {
    "name": "FA BO SU",
    "email": "FA BO SU",
    "address_line1": "FA BO SU",
    "address_line2": "FA BO SU",
    "postal_code": "FA BO SU",
    "city": "FA BO SU",
    "state": "FA BO SU",
    "country": "FA BO SU",
    "tax_id": "FA BO SU",
    "tax_id_type": "FA BO SU",
    "preferred_language": "FA BO SU",
    "external_id": "FA BO",
    "payment_terms_days": "FA BO",
    "invoice_grouping": "FA BO",
    "collection_method": "FA BO",
    "tax_exempt": "FA BO",
    "time_zone": "FA BO",
}

# The inlines of the customer's admin change page: model → (view, add, change, delete, editable fields).
CUSTOMER_ADMIN_INLINES = {
    "accounts.BillingContact": ("ALL", "FA BO SU", "FA BO SU", "FA", {"name", "email", "receives_invoices"}),
    # Portal users join by accepting an invitation; a membership's user is never changed.
    "accounts.CustomerMembership": ("ALL", "", "FA BO", "FA", {"role", "language"}),
    "accounts.CustomerInvitation": ("ALL", "", "", "", set()),  # made and revoked on their own page
    "subscriptions.Subscription": ("ALL", "", "", "", set()),
    "invoices.Invoice": ("ALL", "", "", "", set()),
    "payments.Payment": ("ALL", "", "", "", set()),
    "payments.StripeCustomer": ("FA BO AU", "", "", "FA", set()),  # the link to the Stripe customer
}


def _admin_request(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def test_the_tables_cover_every_field_and_inline_of_the_customer_page(superuser, customer):
    model_admin = admin.site.get_model_admin(Customer)
    request = _admin_request(superuser)

    assert set(model_admin.get_form(request, customer, change=True).base_fields) == set(CUSTOMER_ADMIN_FIELDS)
    assert {inline.model._meta.label for inline in model_admin.get_inline_instances(request, customer)} == set(
        CUSTOMER_ADMIN_INLINES
    )


@pytest.mark.parametrize("role", ROLES)
def test_customer_admin_page_field_by_field(customer, role):
    model_admin = admin.site.get_model_admin(Customer)
    request = _admin_request(staff_in(role))

    editable = set(model_admin.get_form(request, customer, change=True).base_fields)
    if not model_admin.has_change_permission(request, customer):
        editable = set()  # the page is read-only for this role
    inlines = {}
    for inline in model_admin.get_inline_instances(request, customer):
        fields = set(inline.get_formset(request, customer).form.base_fields) - {"id", "DELETE", "customer"}
        can_change = inline.has_change_permission(request, customer)
        inlines[inline.model._meta.label] = (
            inline.has_add_permission(request, customer),
            can_change,
            inline.has_delete_permission(request, customer),
            fields if can_change or inline.has_add_permission(request, customer) else set(),
        )

    assert editable == {name for name, spec in CUSTOMER_ADMIN_FIELDS.items() if role in who(spec)}
    assert inlines == {
        label: (role in who(add), role in who(change), role in who(delete), fields if role in who(change) else set())
        for label, (view, add, change, delete, fields) in CUSTOMER_ADMIN_INLINES.items()
        if role in who(view)
    }


def test_support_cannot_change_billing_terms_or_portal_access_on_the_customer_page(client, customer, superuser):
    """The attack: Support posts the customer's change form with a billing term changed, a membership
    made owner and pointed at another customer's user. Only the details they may correct change."""
    member = UserFactory(username="member", email="member@customer.example")
    membership = CustomerMembership.objects.create(customer=customer, user=member, role="viewer")
    other_user = UserFactory(username="other-owner", email="owner@other.example")
    CustomerMembership.objects.create(customer=CustomerFactory(), user=other_user, role="owner")
    client.force_login(superuser)
    url = reverse("admin:accounts_customer_change", args=[customer.pk])
    client.force_login(staff_in(SUPPORT))
    data = change_form_data(client.get(url), name="Corrected Ltd.", tax_exempt="on", payment_terms_days="90")
    data.update({"memberships-0-role": "owner", "memberships-0-user": str(other_user.pk)})

    response = client.post(url, data)

    assert response.status_code == 302
    customer.refresh_from_db()
    membership.refresh_from_db()
    assert (customer.name, customer.tax_exempt, customer.payment_terms_days) == ("Corrected Ltd.", False, None)
    assert (membership.user_id, membership.role) == (member.pk, "viewer")
    assert not CustomerMembership.objects.filter(customer=customer, user=other_user).exists()


def test_an_operator_changes_a_role_but_never_the_user_of_a_membership(client, customer):
    member = UserFactory(username="member", email="member@customer.example")
    membership = CustomerMembership.objects.create(customer=customer, user=member, role="viewer")
    other_user = UserFactory(username="other-owner", email="owner@other.example")
    url = reverse("admin:accounts_customer_change", args=[customer.pk])
    client.force_login(staff_in(BILLING_OPERATOR))
    data = change_form_data(client.get(url))
    data.update({"memberships-0-role": "billing", "memberships-0-user": str(other_user.pk)})

    response = client.post(url, data)

    assert response.status_code == 302
    membership.refresh_from_db()
    assert (membership.user_id, membership.role) == (member.pk, "billing")


def test_support_may_correct_billing_contacts(client, customer):
    BillingContact.objects.create(customer=customer, email="ap@customer.example", name="AP")
    url = reverse("admin:accounts_customer_change", args=[customer.pk])
    client.force_login(staff_in(SUPPORT))
    data = change_form_data(client.get(url), **{"billing_contacts-0-email": "payables@customer.example"})

    assert client.post(url, data).status_code == 302
    assert list(customer.billing_contacts.values_list("email", flat=True)) == ["payables@customer.example"]


# --- The admin: every model's pages -----------------------------------------------------------------

# Model → roles that may (view, add, change, delete) it in the admin. "" is superusers only.
ADMIN_MODELS = {
    "accounts.ApiKey": ("FA AU", "FA", "FA", ""),  # revoked, never deleted
    "alerts.Alert": ("ALL", "FA BO", "FA BO", "FA"),
    "alerts.AlertCrossing": ("ALL", "", "", ""),  # recorded by evaluation
    "accounts.Customer": ("ALL", "FA BO", "FA BO SU", "FA"),
    "accounts.CustomerInvitation": ("ALL", "FA BO", "FA BO", ""),  # revoked, never deleted
    "accounts.PortalToken": ("FA BO AU", "", "FA", ""),  # made by customers; staff may revoke
    "accounts.UserToken": ("FA AU", "", "FA", ""),  # made by superusers; revoked, never deleted
    "accounts.SimulatedClock": ("FA BO AU", "FA BO", "FA BO", "FA"),
    "auditlog.LogEntry": ("FA AU", "", "", ""),
    "auth.Group": ("FA AU", "", "", ""),
    "auth.User": ("FA AU", "", "", ""),
    "axes.AccessAttempt": ("", "", "", ""),
    "axes.AccessFailureLog": ("", "", "", ""),
    "axes.AccessLog": ("", "", "", ""),
    "catalog.BillableMetric": ("FA BO AU", "FA", "FA", ""),
    "catalog.Coupon": ("ALL", "FA", "FA", ""),  # archived, never deleted
    "catalog.Feature": ("ALL", "FA", "FA", ""),  # never deleted; granted inline on a plan version
    "catalog.Plan": ("ALL", "FA", "FA", ""),
    "catalog.PlanVersion": ("ALL", "FA", "FA", ""),
    "catalog.Price": ("ALL", "", "FA", "FA"),  # added with a plan version
    "catalog.Product": ("ALL", "FA", "FA", ""),
    "django_celery_beat.PeriodicTask": ("FA AU", "", "", ""),
    "invoices.BillingRun": ("FA BO AU", "", "", ""),  # started by "Run billing"
    "invoices.CreditNote": ("ALL", "", "", ""),  # issued from an invoice, voided by its view
    "invoices.Invoice": ("ALL", "", "FA BO", ""),  # made by billing; drafts only are deleted
    "invoices.InvoiceItem": ("ALL", "FA BO", "FA BO", "FA"),  # pending ones only are changed or deleted
    "invoices.InvoiceNumberSequence": ("FA BO AU", "", "", ""),
    "invoices.TaxRate": ("FA BO AU", "FA", "FA", ""),
    "payments.CustomerDunningSetting": ("FA BO AU", "FA BO", "FA BO", ""),
    "payments.DunningCampaign": ("FA BO AU", "FA BO", "FA BO", "FA"),
    "payments.InvoiceDunning": ("FA BO AU", "", "FA BO", ""),
    "payments.Payment": ("ALL", "FA BO", "FA BO", ""),
    "payments.Refund": ("ALL", "", "", ""),
    "payments.StripeCustomer": ("FA BO AU", "", "", ""),
    "payments.StripeDispute": ("FA BO AU", "", "", ""),
    "portal.PortalConfiguration": ("", "", "", ""),
    "subscriptions.Discount": ("FA BO AU", "FA", "FA", ""),
    "subscriptions.Subscription": ("ALL", "FA BO", "FA BO", ""),
    "subscriptions.SubscriptionPriceOverride": ("ALL", "FA", "FA", "FA"),  # custom prices: finance admins set them
    "subscriptions.SubscriptionProgressiveBilling": ("ALL", "FA", "FA", "FA"),  # its own thresholds, likewise
    "usage.UsageEvent": ("FA BO AU", "", "", ""),  # sent through the API
    "wallets.CreditPurchase": ("ALL", "", "", ""),  # bought through a wallet's action, the API or the portal
    "wallets.PrepaidStatusChange": ("ALL", "", "", ""),  # written by the ledger's services
    "wallets.Wallet": ("ALL", "FA BO", "FA BO", ""),  # its ledger is kept: never deleted
    "wallets.WalletEntry": ("ALL", "", "", ""),  # append-only: written by the services
    "usage.UsageEventChange": ("FA BO AU", "", "", ""),  # written by ingestion and corrections
    "webhooks.WebhookDelivery": ("FA AU", "", "FA", ""),
    "webhooks.WebhookEndpoint": ("FA AU", "FA", "FA", ""),
    "webhooks.WebhookEvent": ("FA AU", "", "", ""),
}


def test_the_tables_cover_every_admin_model():
    assert sorted(model._meta.label for model in admin.site._registry) == sorted(ADMIN_MODELS)


def _admin_cases():
    return [(label, role) for label in ADMIN_MODELS for role in ROLES]


@pytest.mark.parametrize(("label", "role"), _admin_cases(), ids=[f"{label}-{role}" for label, role in _admin_cases()])
def test_admin_model_matrix(client, label, role):
    """The changelist and add pages (GET), and the change and delete pages of an object that does not
    exist (POST): 403 when refused, before any lookup; a page or a redirect when allowed."""
    view, add, change, delete = (who(spec) for spec in ADMIN_MODELS[label])
    app_label, model_name = label.lower().split(".")
    client.force_login(staff_in(role))
    answers = {
        "view": client.get(reverse(f"admin:{app_label}_{model_name}_changelist")).status_code,
        "add": client.get(reverse(f"admin:{app_label}_{model_name}_add")).status_code,
        "change": client.post(reverse(f"admin:{app_label}_{model_name}_change", args=[MISSING]), {}).status_code,
        "delete": client.post(reverse(f"admin:{app_label}_{model_name}_delete", args=[MISSING]), {}).status_code,
    }

    refused = {action for action, status in answers.items() if status == 403}
    assert refused == {
        action
        for action, allowed in {"view": view | change, "add": add, "change": change, "delete": delete}.items()
        if role not in allowed
    }, answers
    assert all(status < 500 for status in answers.values()), answers


# Admin actions (the list's "Action" menu): model.action → the roles offered it.
ADMIN_ACTIONS = {
    "accounts.ApiKey.revoke": "FA",
    "accounts.PortalToken.revoke": "FA",
    "accounts.UserToken.revoke": "FA",
    "accounts.CustomerInvitation.revoke": "FA BO",
    "alerts.Alert.deactivate": "FA BO",
    "axes.AccessAttempt.cleanup_expired_attempts": "",
    "catalog.Coupon.archive_coupons": "FA",
    # django-celery-beat offers these to whoever sees the list; here they need the change permission.
    "django_celery_beat.PeriodicTask.enable_tasks": "",
    "django_celery_beat.PeriodicTask.disable_tasks": "",
    "django_celery_beat.PeriodicTask.toggle_tasks": "",
    "django_celery_beat.PeriodicTask.run_tasks": "",
    "invoices.Invoice.finalize_selected": "FA BO",
    "invoices.Invoice.void_selected": "FA BO",
    "invoices.Invoice.mark_paid_selected": "FA BO",
    "invoices.Invoice.mark_uncollectible_selected": "FA BO",
    "invoices.Invoice.render_pdf_selected": "FA BO",
    "invoices.Invoice.send_selected": "FA BO",
    "invoices.Invoice.charge_card_selected": "FA BO",
    "payments.InvoiceDunning.exclude_selected": "FA BO",
    "payments.InvoiceDunning.resume_selected": "FA BO",
    "payments.InvoiceDunning.run_next_action_now": "FA BO",
    "payments.Payment.reverse_selected": "FA BO",
    "subscriptions.Subscription.migrate_to_latest_version": "FA BO",
    "wallets.Wallet.grant_credits_selected": "FA BO",
    "wallets.Wallet.buy_credits_selected": "FA BO",
    "wallets.Wallet.export_csv": "ALL",
    "wallets.WalletEntry.void_selected": "FA BO",
    "wallets.WalletEntry.export_csv": "ALL",
    "webhooks.WebhookDelivery.redeliver": "FA",
    "webhooks.WebhookEndpoint.roll_secret": "FA",
}


def _actions_offered(user) -> set[str]:
    """The actions of the lists the user may open."""
    request = _admin_request(user)
    return {
        f"{model._meta.label}.{name}"
        for model, model_admin in admin.site._registry.items()
        if model_admin.has_view_or_change_permission(request)
        for name in model_admin.get_actions(request)
        if name != "delete_selected"  # Django's, offered with the delete permission (ADMIN_MODELS)
    }


def test_the_tables_cover_every_admin_action(superuser):
    assert sorted(_actions_offered(superuser)) == sorted(ADMIN_ACTIONS)


@pytest.mark.parametrize("role", ROLES)
def test_admin_action_matrix(role):
    assert sorted(_actions_offered(staff_in(role))) == sorted(
        action for action, spec in ADMIN_ACTIONS.items() if role in who(spec)
    )


# Custom admin views (operations on one object, reports): URL name → roles. Each is posted for an
# object that does not exist: 403 when refused, a redirect or a 404 when allowed.
ADMIN_VIEWS = {
    "finance-dashboard": "ALL",  # Support sees the app list only (see test_roles.py)
    "staff-language": "ALL",  # each staff user's own language of the admin
    "reports-export": "FA BO AU",
    "accounts_simulatedclock_advance": "FA BO",
    "accounts_customer_one_off_invoice": "FA BO",
    "catalog_planversion_copy": "FA",
    "catalog_price_quote": "ALL",
    "subscriptions_subscription_change_plan": "FA BO",
    "subscriptions_subscription_cancel": "FA BO",
    "subscriptions_subscription_pause": "FA BO",
    "subscriptions_subscription_resume": "FA BO",
    "subscriptions_subscription_cancel_undo": "FA BO",
    "invoices_invoice_pdf": "ALL",
    "invoices_invoice_credit_note": "FA BO",
    "invoices_invoice_finalize": "FA BO",
    "invoices_invoice_void": "FA BO",
    "invoices_invoice_mark_paid": "FA BO",
    "invoices_invoice_mark_uncollectible": "FA BO",
    "invoices_invoice_render_pdf": "FA BO",
    "invoices_invoice_send": "FA BO",
    "invoices_invoice_charge_card": "FA BO",
    "invoices_billingrun_run": "FA BO",
    "invoices_creditnote_pdf": "ALL",
    "invoices_creditnote_void": "FA BO",
    "payments_payment_reverse": "FA BO",
}
# Django's own admin URLs, and each model's standard pages (ADMIN_MODELS).
_STANDARD_ADMIN_URLS = {"index", "login", "logout", "password_change", "password_change_done", "autocomplete",
                        "jsi18n", "view_on_site", "app_list"}  # fmt: skip
_STANDARD_SUFFIXES = ("_changelist", "_add", "_change", "_delete", "_history")


def admin_views() -> list[str]:
    """The names of every admin URL (the project's under /admin/ and the admin site's own)."""
    names = set()
    for pattern in billing_portal.urls.urlpatterns:
        if isinstance(pattern, URLPattern) and str(pattern.pattern).startswith("admin/") and pattern.name:
            names.add(pattern.name)
    for pattern in admin.site.get_urls():
        names.update(_admin_names(pattern))
    return sorted(name for name in names if name not in _STANDARD_ADMIN_URLS and not name.endswith(_STANDARD_SUFFIXES))


def _admin_names(pattern):
    if isinstance(pattern, URLResolver):
        for inner in pattern.url_patterns:
            yield from _admin_names(inner)
    elif pattern.name:
        yield pattern.name


def test_the_tables_cover_every_custom_admin_view():
    assert admin_views() == sorted(ADMIN_VIEWS)


def _admin_view_url(name: str) -> str:
    if name in {"finance-dashboard", "staff-language"}:
        return reverse(name)
    if name == "reports-export":
        return reverse(name, args=["mrr"])
    if name == "invoices_billingrun_run":
        return reverse(f"admin:{name}")
    return reverse(f"admin:{name}", args=[MISSING])


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", sorted(ADMIN_VIEWS))
def test_admin_view_matrix(client, role, name):
    client.force_login(staff_in(role))
    url = _admin_view_url(name)

    if name in {"finance-dashboard", "reports-export", "catalog_price_quote"}:
        response = client.get(url)  # reads
    else:
        response = client.post(url, {})  # an object that does not exist, nothing to do

    if role in who(ADMIN_VIEWS[name]):
        assert response.status_code in {200, 302, 404}, response.status_code
    else:
        assert response.status_code == 403
