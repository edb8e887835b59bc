"""Admin login brute-force protection (django-axes): a username is locked out from an address after
AXES_FAILURE_LIMIT failed logins."""

import pytest
from axes.models import AccessAttempt

from apps.accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LOGIN_URL = "/admin/login/?next=/admin/"


@pytest.fixture
def admin_user(settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    user = UserFactory(username="finance", is_staff=True, is_superuser=True)
    user.set_password("correct horse battery staple")
    user.save()
    return user


def _login(client, password: str, username: str = "finance", address: str = "10.1.1.1"):
    return client.post(LOGIN_URL, {"username": username, "password": password}, REMOTE_ADDR=address)


def test_a_correct_password_signs_in(client, admin_user):
    response = _login(client, "correct horse battery staple")

    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_after_the_failure_limit_even_the_right_password_is_refused(client, admin_user):
    failures = [_login(client, f"guess-{n}").status_code for n in range(3)]

    locked = _login(client, "correct horse battery staple")

    assert failures == [200, 200, 429]  # the form again, twice; the third failure locks
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    attempt = AccessAttempt.objects.get()
    # the refused attempt while locked out counts as one more failure
    assert (attempt.username, attempt.ip_address, attempt.failures_since_start) == ("finance", "10.1.1.1", 4)


def test_the_lockout_is_per_username_and_address(client, admin_user):
    for n in range(3):
        _login(client, f"guess-{n}")

    from_elsewhere = _login(client, "correct horse battery staple", address="10.9.9.9")

    assert from_elsewhere.status_code == 302


def test_a_successful_login_resets_the_count(client, admin_user):
    _login(client, "guess-1")
    _login(client, "guess-2")
    assert _login(client, "correct horse battery staple").status_code == 302
    client.logout()

    again = [_login(client, f"guess-{n}").status_code for n in range(2)]

    assert again == [200, 200]
    assert AccessAttempt.objects.get().failures_since_start == 2
