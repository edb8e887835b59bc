"""Customer users' personal tokens for the customer API: made and revoked in the portal and through the
API, shown once, acting for their own customer only (with the member's role), refused by the staff
API, and another user's or customer's token (or a guessed id) is a 404 that changes nothing."""

import pytest
from django.urls import reverse

from apps.accounts.credentials import portal_token_create
from apps.accounts.models import CustomerMembership, PortalToken
from apps.accounts.tests.factories import UserFactory
from apps.subscriptions.models import Subscription

pytestmark = pytest.mark.django_db


def _bearer(raw_token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw_token}"}


def _token(account, name="Script") -> tuple[PortalToken, str]:
    return portal_token_create(membership_id=account.user.memberships.get(customer=account.customer).pk, name=name)


def test_create_a_token_in_the_portal_then_use_it_then_revoke_it(client, api_client, world):
    client.force_login(world.a.user)
    response = client.post(reverse("portal:api-tokens"), {"name": "Accounting export"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    secret = response.context["created"]["secret"]
    assert secret.startswith("bpc_") and secret in response.content.decode()
    token = PortalToken.objects.get()
    assert token.name == "Accounting export" and token.key_hash != secret and secret not in token.key_hash
    # Shown once: the list shows the start only.
    page = client.get(reverse("portal:api-tokens")).content.decode()
    assert secret not in page and token.prefix in page

    me = api_client.get("/api/v1/portal/me", **_bearer(secret))
    assert me.status_code == 200
    assert me.json()["customer_id"] == world.a.customer.pk
    invoices = api_client.get("/api/v1/portal/invoices", **_bearer(secret)).json()
    assert [row["id"] for row in invoices["results"]] == [world.a.invoice.pk]

    response = client.post(reverse("portal:api-token-revoke", args=[token.pk]))
    assert response.status_code == 302
    assert api_client.get("/api/v1/portal/me", **_bearer(secret)).status_code == 401
    assert PortalToken.objects.get().revoked_at is not None


def test_a_token_acts_for_its_own_customer_only(api_client, world):
    # The user of A also belongs to B (first by name would be A; the token is B's).
    CustomerMembership.objects.create(customer=world.b.customer, user=world.a.user, role="owner")
    _, secret = _token(world.b)
    me = api_client.get("/api/v1/portal/me", **_bearer(secret)).json()
    assert me["customer_id"] == world.b.customer.pk
    invoices = api_client.get("/api/v1/portal/invoices", **_bearer(secret)).json()
    assert [row["id"] for row in invoices["results"]] == [world.b.invoice.pk]
    # Another of the user's customers, by header or by id: 404.
    response = api_client.get("/api/v1/portal/invoices", HTTP_X_CUSTOMER_ID=str(world.a.customer.pk), **_bearer(secret))
    assert response.status_code == 404
    assert api_client.get(f"/api/v1/portal/invoices/{world.a.invoice.pk}", **_bearer(secret)).status_code == 404
    response = api_client.post(
        f"/api/v1/portal/subscriptions/{world.a.subscription.pk}/cancel", {}, format="json", **_bearer(secret)
    )
    assert response.status_code == 404
    assert Subscription.objects.get(pk=world.a.subscription.pk).cancel_at_period_end is False


def test_the_staff_api_refuses_a_customer_token(api_client, world):
    _, secret = _token(world.a)
    assert api_client.get("/api/v1/customers", **_bearer(secret)).status_code == 401


def test_a_token_carries_the_members_current_role_and_dies_with_the_membership(api_client, world):
    viewer = UserFactory(username="viewer", email="viewer@alpha-labs.example")
    membership = CustomerMembership.objects.create(customer=world.a.customer, user=viewer, role="viewer")
    _, secret = portal_token_create(membership_id=membership.pk, name="Reader")
    assert api_client.get("/api/v1/portal/invoices", **_bearer(secret)).status_code == 200
    url = f"/api/v1/portal/subscriptions/{world.a.subscription.pk}/cancel"
    assert api_client.post(url, {}, format="json", **_bearer(secret)).status_code == 403
    assert Subscription.objects.get(pk=world.a.subscription.pk).cancel_at_period_end is False

    viewer.is_active = False
    viewer.save()
    assert api_client.get("/api/v1/portal/invoices", **_bearer(secret)).status_code == 401
    viewer.is_active = True
    viewer.save()
    membership.delete()  # removed from the team
    assert api_client.get("/api/v1/portal/invoices", **_bearer(secret)).status_code == 401


def test_tokens_through_the_api(api_client, world):
    _token(world.b, name="B's")
    api_client.force_authenticate(world.a.user)
    response = api_client.post("/api/v1/portal/tokens", {"name": "  "}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()["fields"]
    assert not PortalToken.objects.filter(membership__customer=world.a.customer).exists()

    response = api_client.post("/api/v1/portal/tokens", {"name": "CI"}, format="json")
    assert response.status_code == 201
    created = response.json()
    assert created["name"] == "CI" and created["token"].startswith(created["prefix"] + "_")
    assert response.headers["Cache-Control"] == "no-store"  # the secret must not stay in a cache
    listed = api_client.get("/api/v1/portal/tokens").json()
    assert [(row["id"], row["name"]) for row in listed] == [(created["id"], "CI")]
    assert "token" not in listed[0]

    api_client.force_authenticate(None)
    assert api_client.get("/api/v1/portal/me", **_bearer(created["token"])).status_code == 200
    api_client.force_authenticate(world.a.user)
    assert api_client.delete(f"/api/v1/portal/tokens/{created['id']}").status_code == 204
    api_client.force_authenticate(None)
    assert api_client.get("/api/v1/portal/me", **_bearer(created["token"])).status_code == 401


def test_with_the_portal_session_the_api_makes_and_revokes_tokens(client, world):
    client.force_login(world.a.user)  # the portal's session cookie
    response = client.post("/api/v1/portal/tokens", {"name": "CI"}, content_type="application/json")
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    created = response.json()
    assert client.delete(f"/api/v1/portal/tokens/{created['id']}").status_code == 204
    assert PortalToken.objects.get().revoked_at is not None


def test_a_token_cannot_make_or_revoke_tokens(api_client, world):
    token, secret = _token(world.a)
    other, _ = _token(world.a, name="Other")

    listed = api_client.get("/api/v1/portal/tokens", **_bearer(secret))
    made = api_client.post("/api/v1/portal/tokens", {"name": "Minted"}, format="json", **_bearer(secret))
    revoked_other = api_client.delete(f"/api/v1/portal/tokens/{other.pk}", **_bearer(secret))
    revoked_self = api_client.delete(f"/api/v1/portal/tokens/{token.pk}", **_bearer(secret))

    assert listed.status_code == 200 and len(listed.json()) == 2  # listing stays allowed
    for response in (made, revoked_other, revoked_self):
        assert response.status_code == 403
        assert response.json()["code"] == "session_required"
        assert "signed-in" in response.json()["message"]
    assert sorted(PortalToken.objects.values_list("name", flat=True)) == ["Other", "Script"]
    assert not PortalToken.objects.filter(revoked_at__isnull=False).exists()


def test_a_drf_token_cannot_make_tokens_either(api_client, world):
    from apps.accounts.credentials import user_token_create

    _, user_token = user_token_create(user_id=world.a.user.pk, name="user")
    made = api_client.post(
        "/api/v1/portal/tokens", {"name": "Minted"}, format="json", HTTP_AUTHORIZATION=f"Token {user_token}"
    )

    assert made.status_code == 403
    assert made.json()["code"] == "session_required"
    assert not PortalToken.objects.exists()


def test_a_token_of_a_user_who_became_staff_is_refused(api_client, world):
    _, secret = _token(world.a)
    assert api_client.get("/api/v1/portal/me", **_bearer(secret)).status_code == 200

    world.a.user.is_staff = True
    world.a.user.save()
    assert api_client.get("/api/v1/portal/me", **_bearer(secret)).status_code == 401

    world.a.user.is_staff = False
    world.a.user.is_superuser = True
    world.a.user.save()
    assert api_client.get("/api/v1/portal/me", **_bearer(secret)).status_code == 401


def test_another_users_or_customers_token_is_404_and_stays_active(client, api_client, world):
    b_token, b_secret = _token(world.b)
    teammate = UserFactory(username="mate", email="mate@alpha-labs.example")
    mate_membership = CustomerMembership.objects.create(customer=world.a.customer, user=teammate, role="owner")
    mate_token, _ = portal_token_create(membership_id=mate_membership.pk, name="Mate's")

    client.force_login(world.a.user)
    page = client.get(reverse("portal:api-tokens")).content.decode()
    assert b_token.prefix not in page and mate_token.prefix not in page
    api_client.force_authenticate(world.a.user)
    assert api_client.get("/api/v1/portal/tokens").json() == []
    for value in [b_token.pk, mate_token.pk, 999999, "abc", -1]:
        assert client.post(reverse("portal:api-token-revoke", args=[value])).status_code == 404, value
        response = api_client.delete(f"/api/v1/portal/tokens/{value}")
        assert response.status_code == 404, value
        assert response.json()["code"] == "not_found"
    assert PortalToken.objects.filter(revoked_at__isnull=False).count() == 0
    api_client.force_authenticate(None)
    assert api_client.get("/api/v1/portal/me", **_bearer(b_secret)).status_code == 200


def test_bad_token_name_is_a_form_error(client, world):
    client.force_login(world.a.user)
    response = client.post(reverse("portal:api-tokens"), {"name": "x" * 101})
    assert response.status_code == 200
    assert response.context["form"].errors["name"]
    assert response.context["created"] is None
    assert not PortalToken.objects.exists()


def test_an_unknown_bearer_token_is_401(api_client, world):
    assert api_client.get("/api/v1/portal/me", **_bearer("bpc_00000000_guess")).status_code == 401
