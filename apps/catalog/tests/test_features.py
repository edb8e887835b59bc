"""Features and what plan versions grant: services and admin (docs/entitlements.md)."""

import pytest
from django.urls import reverse
from djmoney.money import Money

from apps.catalog.models import Feature, FeatureGrant, PlanVersion
from apps.catalog.services import (
    GrantInput,
    feature_create,
    feature_update,
    plan_version_copy,
    plan_version_features_set,
)
from apps.catalog.tests.factories import PlanFactory
from apps.catalog.tests.test_admin import PLATFORM_FEE, version_post
from apps.core.errors import NotEditable, ValidationFailed
from apps.core.tests.test_admin import change_form_data
from apps.subscriptions.tests.factories import make_subscription

pytestmark = pytest.mark.django_db


@pytest.fixture
def features():
    return {
        "seats": feature_create(code="seats", name="Seats", kind="limit"),
        "sso": feature_create(code="sso", name="Single sign-on", kind="boolean"),
        "support": feature_create(code="support", name="Support", kind="value"),
    }


def _grants(version):
    return {grant.feature.code: grant.value for grant in version.feature_grants.select_related("feature")}


def test_grants_are_stored_normalized_for_their_kind(features):
    version = PlanFactory().current_version

    plan_version_features_set(
        version=version,
        grants=[GrantInput("seats", "25"), GrantInput("sso", "Yes"), GrantInput("support", "  priority ")],
    )
    assert _grants(version) == {"seats": "25", "sso": "true", "support": "priority"}
    assert {g.feature.code: g.typed_value for g in version.feature_grants.all()} == {
        "seats": 25,
        "sso": True,
        "support": "priority",
    }

    plan_version_features_set(version=version, grants=[GrantInput("seats", "Unlimited"), GrantInput("sso", False)])
    assert _grants(version) == {"seats": "unlimited", "sso": "false"}


@pytest.mark.parametrize(
    ("grant", "field", "message"),
    [
        (GrantInput("seats", "ten"), "features.0.value", 'A limit is a whole number (0 or more) or "unlimited".'),
        (GrantInput("seats", 2.5), "features.0.value", 'A limit is a whole number (0 or more) or "unlimited".'),
        (GrantInput("seats", -1), "features.0.value", 'A limit is a whole number (0 or more) or "unlimited".'),
        (GrantInput("seats", True), "features.0.value", 'A limit is a whole number (0 or more) or "unlimited".'),
        (GrantInput("sso", 5), "features.0.value", "An on/off feature takes true or false."),
        (GrantInput("sso", "maybe"), "features.0.value", "An on/off feature takes true or false."),
        (GrantInput("support", 3), "features.0.value", "A value feature takes non-empty text."),
        (GrantInput("support", " "), "features.0.value", "A value feature takes non-empty text."),
        (GrantInput("storage", 1), "features.0.feature", "There is no feature 'storage'."),
    ],
)
def test_a_bad_grant_is_refused_on_its_field_and_nothing_changes(features, grant, field, message):
    version = PlanFactory().current_version
    plan_version_features_set(version=version, grants=[GrantInput("seats", 1)])

    with pytest.raises(ValidationFailed) as refused:
        plan_version_features_set(version=version, grants=[grant])

    assert refused.value.fields == {field: [message]}
    assert _grants(version) == {"seats": "1"}


def test_a_feature_granted_twice_is_refused(features):
    version = PlanFactory().current_version
    with pytest.raises(ValidationFailed) as refused:
        plan_version_features_set(version=version, grants=[GrantInput("seats", 1), GrantInput("seats", 2)])
    assert refused.value.fields == {"features.1.feature": ["This feature is granted twice."]}
    assert not FeatureGrant.objects.exists()


def test_a_version_with_subscribers_keeps_its_grants_and_its_copy_takes_them(features):
    subscription = make_subscription(plan=PlanFactory(prices=[Money("10.00", "USD")]))
    version = subscription.plan_version
    FeatureGrant.objects.create(plan_version=version, feature=features["seats"], value="10")

    with pytest.raises(NotEditable):
        plan_version_features_set(version=version, grants=[GrantInput("seats", 20)])
    assert _grants(version) == {"seats": "10"}

    assert _grants(plan_version_copy(version=version)) == {"seats": "10"}


def test_a_feature_kind_is_fixed_once_granted(features):
    feature_update(feature_id=features["support"].pk, kind="limit")  # nobody grants it yet
    FeatureGrant.objects.create(plan_version=PlanFactory().current_version, feature=features["seats"], value="3")

    with pytest.raises(ValidationFailed) as refused:
        feature_update(feature_id=features["seats"].pk, kind="boolean")

    assert refused.value.fields == {"kind": ["Plan versions grant this feature: its kind cannot change."]}
    assert Feature.objects.get(code="seats").kind == "limit"


def test_feature_codes_are_unique_and_well_formed(features):
    with pytest.raises(ValidationFailed) as duplicate:
        feature_create(code="seats", name="Seats again", kind="limit")
    assert duplicate.value.fields == {"code": ["A feature with this code already exists."]}
    with pytest.raises(ValidationFailed) as malformed:
        feature_create(code="Seats!", name="Seats", kind="limit")
    assert list(malformed.value.fields) == ["code"]
    with pytest.raises(ValidationFailed) as kind:
        feature_create(code="storage", name="Storage", kind="size")
    assert list(kind.value.fields) == ["kind"]


# --- admin -------------------------------------------------------------------------------------------


def test_admin_creates_a_feature_and_refuses_a_kind_change_once_granted(client, superuser, features):
    client.force_login(superuser)
    data = {"code": "projects", "name": "Projects", "description": "", "kind": "limit"}
    response = client.post(reverse("admin:catalog_feature_add"), data)
    assert response.status_code == 302
    assert Feature.objects.get(code="projects").kind == "limit"

    FeatureGrant.objects.create(plan_version=PlanFactory().current_version, feature=features["sso"], value="true")
    url = reverse("admin:catalog_feature_change", args=[features["sso"].pk])
    response = client.post(url, change_form_data(client.get(url), kind="limit"))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "kind": ["Plan versions grant this feature: its kind cannot change."]
    }
    assert Feature.objects.get(code="sso").kind == "boolean"


def _version_with_grants(plan, rows: list[tuple[int, str]]) -> dict:
    """The add-version POST (one flat fee) with these grants in the features inline."""
    data = version_post(plan, PLATFORM_FEE)
    data.update({"feature_grants-TOTAL_FORMS": len(rows), "feature_grants-INITIAL_FORMS": 0})
    for index, (feature_id, value) in enumerate(rows):
        data.update({f"feature_grants-{index}-feature": feature_id, f"feature_grants-{index}-value": value})
    return data


@pytest.mark.parametrize(
    ("feature", "value", "message"),
    [
        ("seats", "ten", 'A limit is a whole number (0 or more) or "unlimited".'),
        ("seats", "1.5", 'A limit is a whole number (0 or more) or "unlimited".'),
        ("sso", "10", "An on/off feature takes true or false."),
    ],
)
def test_admin_grants_inline_shows_what_is_wrong_with_a_value(client, superuser, features, feature, value, message):
    plan = PlanFactory(prices=[])
    client.force_login(superuser)

    response = client.post(
        reverse("admin:catalog_planversion_add"), _version_with_grants(plan, [(features[feature].pk, value)])
    )

    assert response.status_code == 200
    [formset] = [i.formset for i in response.context["inline_admin_formsets"] if i.formset.model is FeatureGrant]
    assert formset.errors[0] == {"value": [message]}
    assert not PlanVersion.objects.exists()
    assert not FeatureGrant.objects.exists()


def test_admin_grants_inline_saves_normalized_values_and_shows_them_once_locked(client, superuser, features):
    plan = PlanFactory(prices=[])
    client.force_login(superuser)
    data = _version_with_grants(
        plan, [(features["seats"].pk, "Unlimited"), (features["sso"].pk, "on"), (features["support"].pk, "24/7")]
    )

    response = client.post(reverse("admin:catalog_planversion_add"), data)

    assert response.status_code == 302, response.context and response.context["errors"]
    version = PlanVersion.objects.get(plan=plan)
    assert _grants(version) == {"seats": "unlimited", "sso": "true", "support": "24/7"}
    url = reverse("admin:catalog_planversion_change", args=[version.pk])
    assert [i.formset.model for i in client.get(url).context["inline_admin_formsets"]].count(FeatureGrant) == 1

    make_subscription(plan=plan)
    locked = client.get(url)
    assert locked.context["has_change_permission"] is False
    assert not [i for i in locked.context["inline_admin_formsets"] if i.formset.model is FeatureGrant]
    content = locked.content.decode()
    assert 'id="features-granted"' in content
    assert "<td>Seats (seats)</td><td>Limit (a whole number, or unlimited)</td><td>unlimited</td>" in content
