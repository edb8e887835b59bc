"""Staff roles: which model permissions each role's group holds (docs/roles.md has the matrix).

Roles are Django groups, created by a data migration (accounts 0009) and brought up to date after every
`migrate` (a `post_migrate` receiver), so models added later (payments, webhooks, …) join the roles
by the rules below without a migration of their own. A rule grants actions on an app's models; `"*"`
stands for every model of the app or every action (the standard view/add/change/delete and any
custom permission). Denials are applied after the grants. Permissions given to a group by hand are
replaced: this module is the source of truth.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

FINANCE_ADMIN = "Finance admin"
BILLING_OPERATOR = "Billing operator"
AUDITOR = "Read-only auditor"
SUPPORT = "Support"

# Apps whose models are the business: customers, catalog, subscriptions, usage, invoices, payments.
BUSINESS_APPS = (
    "accounts",
    "catalog",
    "subscriptions",
    "usage",
    "invoices",
    "wallets",
    "payments",
    "reports",
    "alerts",
)


@dataclass(frozen=True)
class Rule:
    app_label: str
    models: tuple[str, ...] = ("*",)  # lower-case model names, or "*"
    actions: tuple[str, ...] = ("*",)  # view, add, change, delete, a custom codename, or "*"


@dataclass(frozen=True)
class Role:
    name: str
    description: str
    grants: tuple[Rule, ...]
    denials: tuple[Rule, ...] = field(default=())


def _everything(app_labels: Iterable[str], actions: tuple[str, ...] = ("*",)) -> tuple[Rule, ...]:
    return tuple(Rule(app_label, ("*",), actions) for app_label in app_labels)


ROLES: tuple[Role, ...] = (
    Role(
        name=FINANCE_ADMIN,
        description="Everything in billing: customers, catalog and prices, subscriptions, invoices, credit "
        "notes, payments, tax rates, API keys, webhook endpoints; reads the audit trail and staff accounts.",
        grants=(
            *_everything([*BUSINESS_APPS, "webhooks"]),
            Rule("auditlog", ("logentry",), ("view",)),
            Rule("auth", ("user", "group"), ("view",)),
            Rule("django_celery_beat", ("*",), ("view",)),
        ),
    ),
    Role(
        name=BILLING_OPERATOR,
        description="Runs day-to-day billing: customers and their contacts, subscriptions, invoices (finalize, "
        "void, mark paid), credit notes, payments and refunds, billing runs, test clocks. Reads the catalog, "
        "tax rates and usage; deletes nothing; no API keys, webhook endpoints or audit trail.",
        grants=(
            *_everything(BUSINESS_APPS, ("view",)),
            Rule(
                "accounts",
                ("customer", "billingcontact", "customermembership", "customerinvitation", "simulatedclock"),
                ("add", "change"),
            ),
            Rule("accounts", ("customer",), ("change_customer_billing",)),
            Rule("subscriptions", ("subscription", "scheduledchange"), ("add", "change")),
            Rule("usage", ("usageevent",), ("add",)),
            Rule("invoices", ("invoice", "invoiceitem", "creditnote", "billingrun"), ("add", "change")),
            Rule("payments", ("*",), ("add", "change")),
            Rule("wallets", ("wallet",), ("add", "change", "grant_credits", "purchase_credits", "void_credits")),
            Rule("reports", ("*",), ("view_finance_reports",)),
            Rule("alerts", ("alert",), ("add", "change")),
        ),
        denials=(Rule("accounts", ("apikey", "usertoken"), ("*",)),),
    ),
    Role(
        name=AUDITOR,
        description="Reads everything, including the audit trail, webhook deliveries and staff accounts; "
        "changes nothing.",
        grants=(
            *_everything([*BUSINESS_APPS, "webhooks", "auditlog", "django_celery_beat"], ("view",)),
            Rule("reports", ("*",), ("view_finance_reports",)),
            Rule("auth", ("user", "group"), ("view",)),
        ),
    ),
    Role(
        name=SUPPORT,
        description="Answers customers: reads customers, subscriptions, invoices, credit notes, payments and "
        "the catalog; corrects a customer's details and billing contacts. No money actions (billing terms, "
        "cards, usage), and no say over who may use a customer's portal.",
        grants=(
            Rule("accounts", ("customer", "billingcontact"), ("view", "change")),
            Rule("accounts", ("billingcontact",), ("add",)),
            Rule("accounts", ("customermembership", "customerinvitation"), ("view",)),
            Rule(
                "catalog",
                (
                    "product",
                    "plan",
                    "planversion",
                    "charge",
                    "price",
                    "coupon",
                    "feature",
                    "featuregrant",
                    "progressivebilling",
                ),
                ("view",),
            ),
            Rule(
                "subscriptions",
                (
                    "subscription",
                    "subscriptionevent",
                    "scheduledchange",
                    "subscriptionpriceoverride",
                    "subscriptionprogressivebilling",
                ),
                ("view",),
            ),
            Rule(
                "invoices",
                (
                    "invoice",
                    "invoiceline",
                    "invoiceitem",
                    "invoiceevent",
                    "creditnote",
                    "creditnoteline",
                    "progressivecrossing",
                ),
                ("view",),
            ),
            Rule("payments", ("payment", "paymentallocation", "refund"), ("view",)),
            Rule("wallets", ("wallet", "walletentry", "creditpurchase", "prepaidstatuschange"), ("view",)),
            Rule("alerts", ("alert", "alertcrossing"), ("view",)),
        ),
    ),
)


def _action_of(codename: str, model: str) -> str:
    for action in ("view", "add", "change", "delete"):
        if codename == f"{action}_{model}":
            return action
    return codename  # a custom permission is matched by its codename


def _matches(rule: Rule, app_label: str, model: str, codename: str) -> bool:
    if rule.app_label != app_label:
        return False
    if "*" not in rule.models and model not in rule.models:
        return False
    return "*" in rule.actions or _action_of(codename, model) in rule.actions


def role_permission_keys(role: Role, permissions: Iterable[tuple[str, str, str]]) -> set[tuple[str, str]]:
    """The (app_label, codename) pairs the role holds among `permissions` ((app_label, model, codename))."""
    granted = set()
    for app_label, model, codename in permissions:
        if any(_matches(rule, app_label, model, codename) for rule in role.grants) and not any(
            _matches(rule, app_label, model, codename) for rule in role.denials
        ):
            granted.add((app_label, codename))
    return granted


def roles_apply(*, apps: Any = None, using: str = "default") -> dict[str, int]:
    """Create the role groups and set their permissions. `apps` is a migration's app registry (or the
    live one). Returns the number of permissions of each role."""
    if apps is None:
        from django.apps import apps as live_apps

        apps = live_apps
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    permissions = list(
        permission_model.objects.using(using).values_list(
            "id", "content_type__app_label", "content_type__model", "codename"
        )
    )
    by_key = {(app_label, codename): pk for pk, app_label, _model, codename in permissions}
    triples = [(app_label, model, codename) for _pk, app_label, model, codename in permissions]
    counts = {}
    for role in ROLES:
        group, _ = group_model.objects.using(using).get_or_create(name=role.name)
        ids = sorted(by_key[key] for key in role_permission_keys(role, triples))
        current = set(group.permissions.values_list("id", flat=True))
        if current != set(ids):
            group.permissions.set(ids)
        counts[role.name] = len(ids)
    return counts


def roles_apply_after_migrate(sender: Any, app_config: Any = None, using: str = "default", **kwargs: Any) -> None:
    """post_migrate receiver: runs once, after the last app's permissions were created."""
    from django.apps import apps as live_apps

    last_app = [config for config in live_apps.get_app_configs() if config.models_module is not None][-1]
    if app_config is not None and app_config.label != last_app.label:
        return
    roles_apply(apps=kwargs.get("apps") or live_apps, using=using)
