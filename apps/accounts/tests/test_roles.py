"""Staff roles: the groups exist with the permissions of apps/accounts/roles.py, and the main admin
pages render for the roles docs/roles.md allows (200) and refuse the others (403), with real objects.
test_role_matrix.py walks every API endpoint, admin page, action and customer field."""

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from apps.accounts.credentials import user_token_create
from apps.accounts.roles import (
    AUDITOR,
    BILLING_OPERATOR,
    FINANCE_ADMIN,
    ROLES,
    SUPPORT,
    roles_apply,
    roles_apply_after_migrate,
)
from apps.accounts.tests.factories import CustomerFactory, UserFactory
from apps.invoices.tests.factories import make_open_invoice

pytestmark = pytest.mark.django_db

FA, BO, AU, SU = FINANCE_ADMIN, BILLING_OPERATOR, AUDITOR, SUPPORT
ALL = {FA, BO, AU, SU}
MISSING = 999_999  # detail URLs of objects that do not exist: allowed → 404, denied → 403


def staff_in(role: str):
    user = UserFactory(username=role.lower().replace(" ", "-").replace("-only", ""), is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


def perms_of(role: str) -> set[str]:
    return {
        f"{app_label}.{codename}"
        for app_label, codename in Group.objects.get(name=role).permissions.values_list(
            "content_type__app_label", "codename"
        )
    }


def test_the_migration_made_one_group_per_role():
    assert set(Group.objects.values_list("name", flat=True)) >= {role.name for role in ROLES}
    assert len(ROLES) == 4


def test_role_permissions_at_a_glance():
    assert {"invoices.delete_invoice", "webhooks.add_webhookendpoint", "auditlog.view_logentry"} <= perms_of(FA)
    assert "auth.change_user" not in perms_of(FA)
    operator = perms_of(BO)
    assert {"invoices.change_invoice", "accounts.add_customer", "catalog.view_plan"} <= operator
    assert not {perm for perm in operator if perm.split(".")[1].startswith("delete_")}
    assert not {
        perm for perm in operator if perm.startswith(("webhooks.", "auditlog.", "accounts.")) and "apikey" in perm
    }
    assert "catalog.change_plan" not in operator
    auditor = perms_of(AU)
    assert auditor and all(perm.split(".")[1].startswith("view_") for perm in auditor)
    assert {"auditlog.view_logentry", "webhooks.view_webhookdelivery", "auth.view_user"} <= auditor
    assert perms_of(SU) == {
        "accounts.view_customer", "accounts.change_customer", "accounts.view_billingcontact",
        "accounts.change_billingcontact", "accounts.add_billingcontact", "accounts.view_customermembership",
        "accounts.view_customerinvitation",
        "catalog.view_product", "catalog.view_plan", "catalog.view_planversion", "catalog.view_charge",
        "catalog.view_price", "catalog.view_coupon", "catalog.view_feature", "catalog.view_featuregrant",
        "catalog.view_progressivebilling", "subscriptions.view_subscriptionprogressivebilling",
        "invoices.view_progressivecrossing",
        "subscriptions.view_subscriptionpriceoverride",
        "subscriptions.view_subscription", "subscriptions.view_subscriptionevent", "subscriptions.view_scheduledchange",
        "invoices.view_invoice", "invoices.view_invoiceline", "invoices.view_invoiceitem", "invoices.view_invoiceevent",
        "invoices.view_creditnote",
        "invoices.view_creditnoteline",
        "payments.view_payment", "payments.view_paymentallocation", "payments.view_refund",
        "wallets.view_wallet", "wallets.view_walletentry", "wallets.view_creditpurchase",
        "wallets.view_prepaidstatuschange",
        "alerts.view_alert", "alerts.view_alertcrossing",
    }  # fmt: skip


def test_new_models_join_the_roles_when_roles_are_applied_again():
    """What happens after `migrate` brings a new app (here: its permissions made by hand)."""
    content_type = ContentType.objects.create(app_label="payments", model="payout")
    for action in ("view", "add", "change", "delete"):
        Permission.objects.create(content_type=content_type, codename=f"{action}_payout", name=f"Can {action}")
    Permission.objects.create(content_type=content_type, codename="approve_payout", name="Can approve")
    group = Group.objects.get(name=SUPPORT)
    group.permissions.add(Permission.objects.get(content_type__app_label="accounts", codename="delete_customer"))

    roles_apply(apps=apps)

    payouts = {role: sorted(p for p in perms_of(role) if p.endswith("payout")) for role in (FA, BO, AU, SU)}
    assert payouts == {
        FA: ["payments.add_payout", "payments.approve_payout", "payments.change_payout", "payments.delete_payout",
             "payments.view_payout"],
        BO: ["payments.add_payout", "payments.change_payout", "payments.view_payout"],
        AU: ["payments.view_payout"],
        SU: [],  # support reads payments, allocations and refunds only
    }  # fmt: skip
    assert "accounts.delete_customer" not in perms_of(SUPPORT)  # the module is the source of truth


def test_the_post_migrate_receiver_applies_roles_once_after_the_last_app():
    Group.objects.get(name=AUDITOR).permissions.clear()
    first_app = apps.get_app_config("accounts")
    last_app = [config for config in apps.get_app_configs() if config.models_module is not None][-1]

    roles_apply_after_migrate(sender=first_app, app_config=first_app)
    assert perms_of(AUDITOR) == set()

    roles_apply_after_migrate(sender=last_app, app_config=last_app)
    assert "auditlog.view_logentry" in perms_of(AUDITOR)


@pytest.fixture
def invoice():
    return make_open_invoice()


ADMIN_PAGES = [
    # (description, url builder, roles allowed)
    ("customer list", lambda inv: reverse("admin:accounts_customer_changelist"), ALL),
    ("customer add", lambda inv: reverse("admin:accounts_customer_add"), {FA, BO}),
    ("customer change page", lambda inv: reverse("admin:accounts_customer_change", args=[inv.customer_id]), ALL),
    ("invoice list", lambda inv: reverse("admin:invoices_invoice_changelist"), ALL),
    ("invoice void", lambda inv: reverse("admin:invoices_invoice_void", args=[inv.pk]), {FA, BO}),
    ("payment list", lambda inv: reverse("admin:payments_payment_changelist"), ALL),
    ("payment add", lambda inv: reverse("admin:payments_payment_add") + f"?customer={inv.customer_id}", {FA, BO}),
    ("tax rate add", lambda inv: reverse("admin:invoices_taxrate_add"), {FA}),
    ("plan add", lambda inv: reverse("admin:catalog_plan_add"), {FA}),
    ("plan list", lambda inv: reverse("admin:catalog_plan_changelist"), ALL),
    ("API key list", lambda inv: reverse("admin:accounts_apikey_changelist"), {FA, AU}),
    ("API key add", lambda inv: reverse("admin:accounts_apikey_add"), {FA}),
    ("webhook endpoint list", lambda inv: reverse("admin:webhooks_webhookendpoint_changelist"), {FA, AU}),
    ("webhook endpoint add", lambda inv: reverse("admin:webhooks_webhookendpoint_add"), {FA}),
    ("webhook delivery list", lambda inv: reverse("admin:webhooks_webhookdelivery_changelist"), {FA, AU}),
    ("audit trail", lambda inv: reverse("admin:auditlog_logentry_changelist"), {FA, AU}),
    ("staff users", lambda inv: reverse("admin:auth_user_changelist"), {FA, AU}),
    ("finance report export", lambda inv: reverse("reports-export", args=["mrr"]), {FA, BO, AU}),
]


@pytest.mark.parametrize("role", [FA, BO, AU, SU])
@pytest.mark.parametrize(("page", "url", "allowed"), ADMIN_PAGES, ids=[page[0] for page in ADMIN_PAGES])
def test_admin_matrix(client, invoice, role, page, url, allowed):
    client.force_login(staff_in(role))

    response = client.get(url(invoice))

    assert response.status_code == (200 if role in allowed else 403), page


def test_staff_without_a_role_gets_nothing(client, api_client):
    user = UserFactory(username="no-role", is_staff=True)
    CustomerFactory()
    client.force_login(user)
    _, token = user_token_create(user_id=user.pk, name="roles")

    assert client.get(reverse("admin:accounts_customer_changelist")).status_code == 403
    assert api_client.get("/api/v1/customers", HTTP_AUTHORIZATION=f"Token {token}").status_code == 403
