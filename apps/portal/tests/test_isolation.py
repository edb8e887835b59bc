"""Tenant isolation: a user of customer A gets 404 for every object of customer B, on every portal page
and customer API endpoint, and for ids that do not exist or are not numbers; and B's data is unchanged."""

import pytest
from django.urls import reverse

from apps.subscriptions.models import Subscription

pytestmark = pytest.mark.django_db


def _b_ids(world):
    b = world.b
    return {
        "invoice": b.invoice.pk,
        "credit_note": b.credit_note.pk,
        "subscription": b.subscription.pk,
    }


PAGE_ROUTES = [
    ("GET", "portal:invoice", "invoice_id", "invoice"),
    ("GET", "portal:invoice-pdf", "invoice_id", "invoice"),
    ("GET", "portal:credit-note-pdf", "credit_note_id", "credit_note"),
    ("GET", "portal:subscription", "subscription_id", "subscription"),
    ("GET", "portal:subscription-change", "subscription_id", "subscription"),
    ("POST", "portal:subscription-change", "subscription_id", "subscription"),
    ("GET", "portal:subscription-cancel", "subscription_id", "subscription"),
    ("POST", "portal:subscription-cancel", "subscription_id", "subscription"),
    ("POST", "portal:subscription-resume", "subscription_id", "subscription"),
]

API_ROUTES = [
    ("GET", "/api/v1/portal/invoices/{}", "invoice"),
    ("GET", "/api/v1/portal/invoices/{}/pdf", "invoice"),
    ("GET", "/api/v1/portal/credit-notes/{}", "credit_note"),
    ("GET", "/api/v1/portal/credit-notes/{}/pdf", "credit_note"),
    ("GET", "/api/v1/portal/subscriptions/{}", "subscription"),
    ("GET", "/api/v1/portal/subscriptions/{}/upcoming-invoice", "subscription"),
    ("GET", "/api/v1/portal/subscriptions/{}/usage", "subscription"),
    ("GET", "/api/v1/portal/subscriptions/{}/plans", "subscription"),
    ("POST", "/api/v1/portal/subscriptions/{}/preview-change", "subscription"),
    ("POST", "/api/v1/portal/subscriptions/{}/change", "subscription"),
    ("POST", "/api/v1/portal/subscriptions/{}/cancel", "subscription"),
    ("POST", "/api/v1/portal/subscriptions/{}/resume", "subscription"),
    ("POST", "/api/v1/portal/subscriptions/{}/pause", "subscription"),
]


def _snapshot(world):
    subscription = Subscription.objects.get(pk=world.b.subscription.pk)
    return (subscription.status, subscription.plan_id, subscription.quantity, subscription.cancel_at_period_end)


@pytest.mark.parametrize(("method", "name", "kwarg", "kind"), PAGE_ROUTES)
def test_portal_pages_hide_another_customers_objects(client, world, method, name, kwarg, kind):
    client.force_login(world.a.user)
    before = _snapshot(world)
    for value in [_b_ids(world)[kind], 999999, "abc", -1]:
        url = reverse(name, kwargs={kwarg: value})
        data = {"plan": world.pro.pk, "quantity": 3, "reason": ""} if method == "POST" else None
        response = client.post(url, data) if method == "POST" else client.get(url)
        assert response.status_code == 404, (url, response.status_code)
    assert _snapshot(world) == before


@pytest.mark.parametrize(("method", "path", "kind"), API_ROUTES)
def test_customer_api_hides_another_customers_objects(api_client, world, method, path, kind):
    api_client.force_authenticate(world.a.user)
    before = _snapshot(world)
    for value in [_b_ids(world)[kind], 999999, "abc"]:
        url = path.format(value)
        payload = {"plan": world.pro.pk, "quantity": 3}
        response = api_client.post(url, payload, format="json") if method == "POST" else api_client.get(url)
        assert response.status_code == 404, (url, response.status_code, getattr(response, "data", None))
        assert response.json()["code"] == "not_found"
    assert _snapshot(world) == before


def test_lists_show_only_the_users_customer(client, api_client, world):
    client.force_login(world.a.user)
    page = client.get(reverse("portal:invoices")).content.decode()
    assert world.a.invoice.number in page
    assert world.b.invoice.number not in page
    assert world.a.credit_note.number in page
    assert world.b.credit_note.number not in page

    api_client.force_authenticate(world.a.user)
    invoices = api_client.get("/api/v1/portal/invoices").json()
    assert [row["id"] for row in invoices["results"]] == [world.a.invoice.pk]
    notes = api_client.get("/api/v1/portal/credit-notes").json()
    assert [row["id"] for row in notes["results"]] == [world.a.credit_note.pk]
    subscriptions = api_client.get("/api/v1/portal/subscriptions").json()
    assert [row["id"] for row in subscriptions["results"]] == [world.a.subscription.pk]


def test_customer_header_of_a_customer_the_user_does_not_belong_to_is_404(api_client, world):
    api_client.force_authenticate(world.a.user)
    response = api_client.get("/api/v1/portal/invoices", HTTP_X_CUSTOMER_ID=str(world.b.customer.pk))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("header", ["-3915802382492631132274688", str(2**63), "0", "-1"])
def test_a_customer_header_out_of_any_id_range_is_404(api_client, world, header):
    api_client.force_authenticate(world.a.user)
    response = api_client.get("/api/v1/portal/credit-notes", HTTP_X_CUSTOMER_ID=header)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_switching_to_a_customer_the_user_does_not_belong_to_is_404(client, world):
    client.force_login(world.a.user)
    response = client.post(reverse("portal:switch"), {"customer": world.b.customer.pk})
    assert response.status_code == 404
    page = client.get(reverse("portal:dashboard")).content.decode()
    assert "Alpha Labs" in page
    assert "Beta Works" not in page


def test_pausing_another_customers_subscription_is_404(client, world):
    # Pausing is on in these tests' configuration, so the 404 is the isolation's, not the feature's.
    client.force_login(world.a.user)
    before = _snapshot(world)
    for value in [world.b.subscription.pk, 999999, "abc"]:
        response = client.post(reverse("portal:subscription-pause", kwargs={"subscription_id": value}))
        assert response.status_code == 404, value
    assert _snapshot(world) == before
    response = client.post(reverse("portal:subscription-pause", kwargs={"subscription_id": world.a.subscription.pk}))
    assert response.status_code == 302


def test_removing_another_customers_team_member_is_404(client, world):
    from apps.accounts.models import CustomerMembership
    from apps.accounts.tests.factories import UserFactory

    mate = UserFactory(username="b-mate", email="mate@beta-works.example")
    b_mate = CustomerMembership.objects.create(customer=world.b.customer, user=mate, role="viewer")
    b_owner = world.b.user.memberships.get()
    client.force_login(world.a.user)
    for value in [b_mate.pk, b_owner.pk, 999999]:
        response = client.post(reverse("portal:team-remove", kwargs={"membership_id": value}))
        assert response.status_code == 404, value
    assert CustomerMembership.objects.filter(pk__in=[b_mate.pk, b_owner.pk]).count() == 2
