import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_admin_index_lists_our_apps_and_not_the_stripe_internals(client, superuser):
    client.force_login(superuser)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    apps = [app["app_label"] for app in response.context["app_list"]]
    assert {"accounts", "catalog", "subscriptions", "invoices"} <= set(apps)
    assert "djstripe" not in apps


def test_root_redirects_to_the_admin(client):
    response = client.get("/")
    assert (response.status_code, response["Location"]) == (302, "/admin/")
