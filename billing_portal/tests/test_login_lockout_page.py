"""A locked-out login (django-axes) answers 429 with a page in the admin's or the portal's style, in
the visitor's language, saying the account is locked for now and when to try again."""

from datetime import timedelta

import pytest
from django.urls import reverse

from apps.accounts.models import CustomerMembership
from apps.accounts.tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def axes_on(settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)


def _user(**fields):
    user = UserFactory(**fields)
    user.set_password(PASSWORD)
    user.save()
    return user


def _lock(client, url: str, username: str, **extra):
    for n in range(2):
        client.post(url, {"username": username, "password": f"guess-{n}"}, REMOTE_ADDR="10.4.4.4", **extra)
    return client.post(url, {"username": username, "password": PASSWORD}, REMOTE_ADDR="10.4.4.4", **extra)


def test_the_admin_lockout_page_says_when_to_try_again(client):
    _user(username="finance", is_staff=True, is_superuser=True)

    response = _lock(client, reverse("admin:login"), "finance")

    html = response.content.decode()
    assert response.status_code == 429
    assert response["Retry-After"] == "900"
    assert response["Content-Type"].startswith("text/html")
    assert html.count("This account is temporarily locked</h1>") == 1  # the admin title, once
    assert "Try again in 15 minutes." in html
    assert 'id="site-name"' in html  # the admin's header and styles
    assert "_auth_user_id" not in client.session


def test_the_portal_lockout_page_is_the_portals_and_translated(client):
    user = _user(username="alpha-owner", email="owner@alpha.example")
    CustomerMembership.objects.create(customer=CustomerFactory(), user=user)

    english = _lock(client, reverse("portal:login"), "alpha-owner")
    chinese = client.post(
        reverse("portal:login"), {"username": "alpha-owner", "password": PASSWORD},
        REMOTE_ADDR="10.4.4.4", HTTP_ACCEPT_LANGUAGE="zh-hans",
    )  # fmt: skip

    assert (english.status_code, chinese.status_code) == (429, 429)
    assert "This account is temporarily locked" in english.content.decode()
    assert "Try again in 15 minutes." in english.content.decode()
    assert 'href="/portal/login/link/"' in english.content.decode()  # the portal's page
    html = chinese.content.decode()
    assert '<html lang="zh-hans">' in html
    assert "此账户已暂时锁定" in html
    assert "请在 15 分钟后重试" in html
    assert "_auth_user_id" not in client.session


def test_the_admin_lockout_page_is_translated(client):
    _user(username="finance", is_staff=True)

    response = _lock(client, reverse("admin:login"), "finance", HTTP_ACCEPT_LANGUAGE="zh-hans")

    assert response.status_code == 429
    assert "此账户已暂时锁定" in response.content.decode()
