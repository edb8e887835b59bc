"""Entitlements: what a customer's subscriptions grant, combined, cached and announced once per change
(docs/entitlements.md)."""

from datetime import UTC, datetime

import pytest
from django.db import transaction
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import (
    subscription_cancel,
    subscription_change,
    subscription_pause,
    subscription_resume,
    subscription_start,
)
from apps.catalog.models import FeatureGrant, PlanVersion
from apps.catalog.services import GrantInput, feature_create, feature_update, plan_version_features_set
from apps.catalog.tests.factories import PlanFactory
from apps.subscriptions.entitlements import (
    SourceGrant,
    customer_entitlements,
    customer_entitlements_refresh,
    customer_entitlements_touch,
    entitlements_combine,
)
from apps.subscriptions.models import EntitlementsChange, Subscription
from apps.subscriptions.services import subscription_migrate_version

pytestmark = pytest.mark.django_db

MAY = datetime(2026, 5, 1, tzinfo=UTC)


def _grant(code, kind, value, subscription_id, started_at=MAY):
    return SourceGrant(
        feature_code=code, feature_name=code.title(), kind=kind, value=value, subscription_id=subscription_id,
        plan_code=f"plan-{subscription_id}", plan_version=1, status="active", started_at=started_at,
    )  # fmt: skip


def test_grants_combine_limits_add_up_booleans_any_true_values_from_the_latest_subscription():
    later = datetime(2026, 6, 1, tzinfo=UTC)
    features = entitlements_combine(
        [
            _grant("seats", "limit", 10, 1),
            _grant("sso", "boolean", True, 1),
            _grant("support", "value", "email", 1),
            _grant("seats", "limit", 5, 2, later),
            _grant("sso", "boolean", False, 2, later),
            _grant("support", "value", "priority", 2, later),
            _grant("projects", "limit", 3, 1),
            _grant("projects", "limit", "unlimited", 2, later),
        ]
    )

    assert [(f["code"], f["value"]) for f in features] == [
        ("projects", "unlimited"),
        ("seats", 15),
        ("sso", True),
        ("support", "priority"),
    ]
    assert features[1]["sources"] == [
        {"subscription": 1, "plan": "plan-1", "plan_version": 1, "status": "active", "value": 10},
        {"subscription": 2, "plan": "plan-2", "plan_version": 1, "status": "active", "value": 5},
    ]
    assert entitlements_combine([_grant("sso", "boolean", False, 1)])[0]["value"] is False


@pytest.fixture
def catalog():
    """Starter: 3 seats, no SSO, email support. Pro: 10 seats, SSO, priority support. Extra seats: 5 seats."""
    feature_create(code="seats", name="Seats", kind="limit")
    feature_create(code="sso", name="Single sign-on", kind="boolean")
    feature_create(code="support", name="Support", kind="value")
    plans = {}
    for code, grants in {
        "starter": [("seats", "3"), ("sso", False), ("support", "email")],
        "pro": [("seats", 10), ("sso", True), ("support", "priority")],
        "extra-seats": [("seats", 5)],
    }.items():
        plan = PlanFactory(code=code, prices=[Money("10.00", "USD")])
        plan_version_features_set(
            version=plan.current_version, grants=[GrantInput(feature=f, value=v) for f, v in grants]
        )
        plans[code] = plan
    return plans


def _start(customer, plan, callbacks, **kwargs):
    with callbacks(execute=True):
        return subscription_start(customer=customer, plan=plan, **kwargs)


def _values(customer):
    return {f["code"]: f["value"] for f in customer_entitlements(customer_id=customer.pk)["features"]}


def test_the_union_of_active_trialing_and_past_due_subscriptions(catalog, django_capture_on_commit_callbacks):
    customer = CustomerFactory(currency="USD")
    pro = _start(customer, catalog["pro"], django_capture_on_commit_callbacks)
    extra = _start(customer, catalog["extra-seats"], django_capture_on_commit_callbacks, trial_days=14)
    starter = _start(customer, catalog["starter"], django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        subscription_pause(subscription_id=starter.pk)
    assert Subscription.objects.get(pk=extra.pk).status == "trialing"

    document = customer_entitlements(customer_id=customer.pk)

    assert document["customer"] == customer.pk
    assert [(f["code"], f["kind"], f["value"]) for f in document["features"]] == [
        ("seats", "limit", 15),
        ("sso", "boolean", True),
        ("support", "value", "priority"),
    ]
    seats = document["features"][0]
    assert [(s["subscription"], s["plan"], s["status"], s["value"]) for s in seats["sources"]] == [
        (pro.pk, "pro", "active", 10),
        (extra.pk, "extra-seats", "trialing", 5),
    ]
    other = CustomerFactory(currency="USD")
    assert customer_entitlements(customer_id=other.pk) == {"customer": other.pk, "features": []}


def test_paused_and_canceled_subscriptions_grant_nothing_and_resume_grants_again(
    catalog, django_capture_on_commit_callbacks
):
    customer = CustomerFactory(currency="USD")
    pro = _start(customer, catalog["pro"], django_capture_on_commit_callbacks)
    assert _values(customer) == {"seats": 10, "sso": True, "support": "priority"}

    with django_capture_on_commit_callbacks(execute=True):
        subscription_pause(subscription_id=pro.pk)
    assert _values(customer) == {}

    with django_capture_on_commit_callbacks(execute=True):
        subscription_resume(subscription_id=pro.pk)
    assert _values(customer) == {"seats": 10, "sso": True, "support": "priority"}

    with django_capture_on_commit_callbacks(execute=True):
        subscription_cancel(subscription_id=pro.pk, when="period_end")
    assert _values(customer) == {"seats": 10, "sso": True, "support": "priority"}  # until the period ends

    with django_capture_on_commit_callbacks(execute=True):
        subscription_cancel(subscription_id=pro.pk, when="now")
    assert _values(customer) == {}


def test_the_cache_serves_the_stored_answer_and_a_plan_change_replaces_it_at_once(
    catalog, django_capture_on_commit_callbacks
):
    customer = CustomerFactory(currency="USD")
    subscription = _start(customer, catalog["pro"], django_capture_on_commit_callbacks)
    assert _values(customer)["seats"] == 10
    # Behind the services' back (no event, no invalidation) the cached answer is what is served.
    FeatureGrant.objects.filter(plan_version=subscription.plan_version, feature__code="seats").update(value="99")
    assert _values(customer)["seats"] == 10
    FeatureGrant.objects.filter(plan_version=subscription.plan_version, feature__code="seats").update(value="10")

    with django_capture_on_commit_callbacks(execute=True):
        subscription_change(subscription_id=subscription.pk, plan=catalog["starter"])

    assert _values(customer) == {"seats": 3, "sso": False, "support": "email"}


def test_a_feature_change_makes_every_cached_answer_stale(catalog, django_capture_on_commit_callbacks):
    customer = CustomerFactory(currency="USD")
    _start(customer, catalog["pro"], django_capture_on_commit_callbacks)
    assert customer_entitlements(customer_id=customer.pk)["features"][1]["name"] == "Single sign-on"

    with django_capture_on_commit_callbacks(execute=True):
        feature_update(feature_id=catalog["pro"].current_version.feature_grants.get(feature__code="sso").feature_id,
                       name="SAML single sign-on")  # fmt: skip

    assert customer_entitlements(customer_id=customer.pk)["features"][1]["name"] == "SAML single sign-on"


def test_a_version_migration_changes_entitlements(catalog, django_capture_on_commit_callbacks):
    customer = CustomerFactory(currency="USD")
    subscription = _start(customer, catalog["starter"], django_capture_on_commit_callbacks)
    version_2 = PlanVersion.objects.create(plan=catalog["starter"], number=2)
    from apps.catalog.tests.factories import add_charge

    add_charge(version_2, name="Fee", price_model="flat", amount=10)
    plan_version_features_set(version=version_2, grants=[GrantInput(feature="seats", value=5)])
    assert _values(customer)["seats"] == 3

    with django_capture_on_commit_callbacks(execute=True):
        subscription_migrate_version(subscription_id=subscription.pk, version=version_2, timing="now")

    assert _values(customer) == {"seats": 5}


def test_a_change_is_recorded_once_with_the_new_and_previous_values(catalog, django_capture_on_commit_callbacks):
    customer = CustomerFactory(currency="USD")
    pro = _start(customer, catalog["pro"], django_capture_on_commit_callbacks)
    first = EntitlementsChange.objects.get()
    assert (first.customer_id, first.previous_values) == (customer.pk, {})
    assert [(f["code"], f["value"]) for f in first.features] == [("seats", 10), ("sso", True), ("support", "priority")]

    with django_capture_on_commit_callbacks(execute=True):
        subscription_change(subscription_id=pro.pk, quantity=3)  # same plan: nothing granted changes
    assert EntitlementsChange.objects.count() == 1

    with django_capture_on_commit_callbacks(execute=True):
        subscription_change(subscription_id=pro.pk, plan=catalog["starter"])
    change = EntitlementsChange.objects.latest("id")
    assert EntitlementsChange.objects.count() == 2
    assert change.previous_values == {"seats": 10, "sso": True, "support": "priority"}
    assert [(f["code"], f["value"]) for f in change.features] == [("seats", 3), ("sso", False), ("support", "email")]


def test_several_changes_in_one_transaction_make_one_change(catalog, django_capture_on_commit_callbacks):
    customer = CustomerFactory(currency="USD")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            subscription_start(customer=customer, plan=catalog["pro"])
            subscription_start(customer=customer, plan=catalog["extra-seats"])
            customer_entitlements_touch(customer_id=customer.pk)

    assert len([cb for cb in callbacks if type(cb).__name__ == "_Refresh"]) == 1
    change = EntitlementsChange.objects.get()
    assert {f["code"]: f["value"] for f in change.features} == {"seats": 15, "sso": True, "support": "priority"}
    assert customer_entitlements_refresh(customer_id=customer.pk) is None  # nothing changed since


def test_an_answer_computed_before_a_change_and_stored_after_it_is_not_served(
    catalog, django_capture_on_commit_callbacks
):
    from django.core.cache import cache

    customer = CustomerFactory(currency="USD")
    subscription = _start(customer, catalog["pro"], django_capture_on_commit_callbacks)
    assert _values(customer)["seats"] == 10
    computed_before = cache.get(f"entitlements:{customer.pk}")  # a slow request's answer, with its tokens

    with django_capture_on_commit_callbacks(execute=True):
        subscription_change(subscription_id=subscription.pk, plan=catalog["starter"])
    cache.set(f"entitlements:{customer.pk}", computed_before)  # ... stored once the change is done

    assert _values(customer) == {"seats": 3, "sso": False, "support": "email"}


def test_a_refresh_that_fails_after_commit_is_logged_and_the_change_stands(
    catalog, django_capture_on_commit_callbacks, settings, caplog
):
    """With the cache unreachable (Redis down), what runs after commit to refresh the customer's cached
    entitlements fails: the failure is logged and the subscription that was saved stays saved (the
    callbacks are robust; before, the failure escaped after the commit)."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    customer = CustomerFactory()

    subscription = _start(customer, catalog["pro"], django_capture_on_commit_callbacks, now=MAY)

    assert Subscription.objects.filter(pk=subscription.pk).exists()
    assert EntitlementsChange.objects.filter(customer_id=customer.pk).exists()  # the refresh itself ran
    assert "in on_commit()" in caplog.text and "Connection refused" in caplog.text  # the cache's failure, logged
