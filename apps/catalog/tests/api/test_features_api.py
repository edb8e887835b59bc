"""Features and grants in the catalog API; a customer's entitlements in the staff and customer APIs
(docs/entitlements.md)."""

import pytest
from djmoney.money import Money

from apps.accounts.credentials import user_token_create
from apps.accounts.models import CustomerMembership
from apps.accounts.roles import BILLING_OPERATOR, SUPPORT
from apps.accounts.tests.factories import CustomerFactory, UserFactory
from apps.accounts.tests.test_role_matrix import staff_in
from apps.billing.services import subscription_change, subscription_start
from apps.catalog.models import Feature, FeatureGrant
from apps.catalog.services import GrantInput, feature_create, plan_version_features_set
from apps.catalog.tests.factories import PlanFactory
from apps.subscriptions.tests.factories import make_subscription

pytestmark = pytest.mark.django_db

NOT_A_LIMIT = 'A limit is a whole number (0 or more) or "unlimited".'


@pytest.fixture
def features():
    return {
        "seats": feature_create(code="seats", name="Seats", kind="limit"),
        "sso": feature_create(code="sso", name="Single sign-on", kind="boolean"),
        "support": feature_create(code="support", name="Support", kind="value"),
    }


def test_create_list_and_rename_a_feature(api_client, superuser):
    api_client.force_authenticate(superuser)

    created = api_client.post(
        "/api/v1/features", {"code": "projects", "name": "Projects", "kind": "limit"}, format="json"
    )

    assert created.status_code == 201, created.json()
    feature = Feature.objects.get()
    body = created.json()
    assert {key: body[key] for key in ("id", "code", "name", "description", "kind")} == {
        "id": feature.pk,
        "code": "projects",
        "name": "Projects",
        "description": "",
        "kind": "limit",
    }
    assert [row["code"] for row in api_client.get("/api/v1/features").json()["results"]] == ["projects"]
    renamed = api_client.patch(f"/api/v1/features/{feature.pk}", {"name": "Active projects"}, format="json")
    assert (renamed.status_code, renamed.json()["name"]) == (200, "Active projects")


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"code": "projects", "name": "Projects", "kind": "size"}, ["kind"]),
        ({"code": "Projects!", "name": "Projects", "kind": "limit"}, ["code"]),
        ({"code": "projects", "kind": "limit"}, ["name"]),
    ],
)
def test_a_bad_feature_is_400_with_field_errors_and_nothing_made(api_client, superuser, payload, fields):
    api_client.force_authenticate(superuser)

    response = api_client.post("/api/v1/features", payload, format="json")

    assert response.status_code == 400
    assert sorted(response.json()["fields"]) == fields
    assert not Feature.objects.exists()


def test_set_what_a_version_grants_and_read_it_with_the_version(api_client, superuser, features):
    version = PlanFactory(prices=[Money("10.00", "USD")]).current_version
    api_client.force_authenticate(superuser)

    response = api_client.put(
        f"/api/v1/plan-versions/{version.pk}/features",
        {
            "features": [
                {"feature": "seats", "value": 10},
                {"feature": "sso", "value": True},
                {"feature": "support", "value": "priority"},
            ]
        },
        format="json",
    )

    assert response.status_code == 200, response.json()
    expected = [
        {"feature": "seats", "name": "Seats", "kind": "limit", "value": 10},
        {"feature": "sso", "name": "Single sign-on", "kind": "boolean", "value": True},
        {"feature": "support", "name": "Support", "kind": "value", "value": "priority"},
    ]
    assert response.json()["features"] == expected
    assert api_client.get(f"/api/v1/plan-versions/{version.pk}").json()["features"] == expected
    unlimited = api_client.put(
        f"/api/v1/plan-versions/{version.pk}/features",
        {"features": [{"feature": "seats", "value": "unlimited"}]},
        format="json",
    )
    assert unlimited.json()["features"] == [
        {"feature": "seats", "name": "Seats", "kind": "limit", "value": "unlimited"}
    ]


@pytest.mark.parametrize(
    ("grant", "fields"),
    [
        ({"feature": "seats", "value": "ten"}, {"features.0.value": [NOT_A_LIMIT]}),
        ({"feature": "seats", "value": 1.5}, {"features.0.value": [NOT_A_LIMIT]}),
        ({"feature": "sso", "value": 3}, {"features.0.value": ["An on/off feature takes true or false."]}),
        ({"feature": "support", "value": False}, {"features.0.value": ["A value feature takes non-empty text."]}),
        ({"feature": "storage", "value": 1}, {"features.0.feature": ["There is no feature 'storage'."]}),
    ],
)  # fmt: skip
def test_a_bad_grant_is_400_on_its_field_and_changes_nothing(api_client, superuser, features, grant, fields):
    version = PlanFactory(prices=[Money("10.00", "USD")]).current_version
    plan_version_features_set(version=version, grants=[GrantInput("seats", 5)])
    api_client.force_authenticate(superuser)

    response = api_client.put(f"/api/v1/plan-versions/{version.pk}/features", {"features": [grant]}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert response.json()["fields"] == fields
    assert list(FeatureGrant.objects.values_list("feature__code", "value")) == [("seats", "5")]


def test_grants_of_a_version_with_subscribers_are_409(api_client, superuser, features):
    subscription = make_subscription(plan=PlanFactory(prices=[Money("10.00", "USD")]))
    api_client.force_authenticate(superuser)

    response = api_client.put(
        f"/api/v1/plan-versions/{subscription.plan_version_id}/features",
        {"features": [{"feature": "seats", "value": 1}]},
        format="json",
    )

    assert (response.status_code, response.json()["code"]) == (409, "not_editable")
    assert not FeatureGrant.objects.exists()


def test_only_finance_admins_write_features(api_client, features):
    for role in (BILLING_OPERATOR, SUPPORT):
        api_client.force_authenticate(staff_in(role))
        assert api_client.post("/api/v1/features", {"code": "x", "name": "X", "kind": "value"}).status_code == 403
        assert api_client.get("/api/v1/features").status_code == 200
    assert Feature.objects.count() == 3


# --- GET customers/{id}/entitlements, GET portal/entitlements ---------------------------------------


@pytest.fixture
def customer_on_two_plans(features, django_capture_on_commit_callbacks):
    pro = PlanFactory(code="pro", prices=[Money("10.00", "USD")])
    plan_version_features_set(
        version=pro.current_version,
        grants=[GrantInput("seats", 10), GrantInput("sso", True), GrantInput("support", "priority")],
    )
    extra = PlanFactory(code="extra-seats", prices=[Money("3.00", "USD")])
    plan_version_features_set(version=extra.current_version, grants=[GrantInput("seats", 5)])
    customer = CustomerFactory(currency="USD")
    with django_capture_on_commit_callbacks(execute=True):
        first = subscription_start(customer=customer, plan=pro)
        second = subscription_start(customer=customer, plan=extra)
    return customer, first, second


def test_customer_entitlements(api_client, customer_on_two_plans):
    customer, pro, extra = customer_on_two_plans
    _, token = user_token_create(user_id=staff_in(SUPPORT).pk, name="app")

    response = api_client.get(f"/api/v1/customers/{customer.pk}/entitlements", HTTP_AUTHORIZATION=f"Token {token}")

    assert response.status_code == 200
    pro_source = {"subscription": pro.pk, "plan": "pro", "plan_version": 1, "status": "active"}
    assert response.json() == {
        "customer": customer.pk,
        "features": [
            {
                "code": "seats", "name": "Seats", "kind": "limit", "value": 15,
                "sources": [
                    {**pro_source, "value": 10},
                    {"subscription": extra.pk, "plan": "extra-seats", "plan_version": 1, "status": "active",
                     "value": 5},
                ],
            },
            {"code": "sso", "name": "Single sign-on", "kind": "boolean", "value": True,
             "sources": [{**pro_source, "value": True}]},
            {"code": "support", "name": "Support", "kind": "value", "value": "priority",
             "sources": [{**pro_source, "value": "priority"}]},
        ],
    }  # fmt: skip


def test_customer_entitlements_follow_a_plan_change_at_once(
    api_client, superuser, customer_on_two_plans, django_capture_on_commit_callbacks
):
    customer, pro, _ = customer_on_two_plans
    api_client.force_authenticate(superuser)
    url = f"/api/v1/customers/{customer.pk}/entitlements"
    assert api_client.get(url).json()["features"][0]["value"] == 15
    starter = PlanFactory(code="starter", prices=[Money("5.00", "USD")])
    plan_version_features_set(version=starter.current_version, grants=[GrantInput("seats", 2)])

    with django_capture_on_commit_callbacks(execute=True):
        subscription_change(subscription_id=pro.pk, plan=starter)

    assert [(f["code"], f["value"]) for f in api_client.get(url).json()["features"]] == [("seats", 7)]


@pytest.mark.parametrize("customer_id", ["999999", "abc"])
def test_entitlements_of_no_customer_are_404(api_client, superuser, customer_id):
    api_client.force_authenticate(superuser)
    response = api_client.get(f"/api/v1/customers/{customer_id}/entitlements")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_portal_entitlements_are_the_customers_own(api_client, customer_on_two_plans):
    customer, _, _ = customer_on_two_plans
    user = UserFactory(username="owner")
    CustomerMembership.objects.create(customer=customer, user=user, role="viewer")
    other = CustomerFactory(currency="USD")
    _, token = user_token_create(user_id=user.pk, name="portal")

    mine = api_client.get("/api/v1/portal/entitlements", HTTP_AUTHORIZATION=f"Token {token}")
    theirs = api_client.get(
        "/api/v1/portal/entitlements", HTTP_AUTHORIZATION=f"Token {token}", HTTP_X_CUSTOMER_ID=str(other.pk)
    )

    assert mine.status_code == 200
    assert [(f["code"], f["value"]) for f in mine.json()["features"]] == [
        ("seats", 15),
        ("sso", True),
        ("support", "priority"),
    ]
    assert theirs.status_code == 404
    assert api_client.get("/api/v1/portal/entitlements").status_code == 401
