"""Admin login brute-force protection (django-axes): a username is locked out from an address after
AXES_FAILURE_LIMIT failed logins."""

import pytest
from axes.models import AccessAttempt
from django.urls import reverse

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


@pytest.fixture
def behind_one_proxy(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}


def _login_through_proxy(client, password: str, forwarded_for: str):
    return client.post(
        LOGIN_URL,
        {"username": "finance", "password": password},
        REMOTE_ADDR="192.168.0.10",  # the proxy, the same for every client
        HTTP_X_FORWARDED_FOR=forwarded_for,
    )


def test_behind_a_proxy_the_lockout_counts_the_client_address_not_the_proxys(client, admin_user, behind_one_proxy):
    for n in range(3):
        _login_through_proxy(client, f"guess-{n}", forwarded_for="10.1.1.1")

    from_elsewhere = _login_through_proxy(client, "correct horse battery staple", forwarded_for="10.9.9.9")

    assert from_elsewhere.status_code == 302  # not locked out by someone else's failures at the proxy
    assert AccessAttempt.objects.get().ip_address == "10.1.1.1"


def test_behind_a_proxy_a_forged_forwarded_address_does_not_escape_the_lockout(client, admin_user, behind_one_proxy):
    for n in range(3):
        _login_through_proxy(client, f"guess-{n}", forwarded_for="10.1.1.1")

    # The client sends an X-Forwarded-For of its own; the proxy appends the address it really saw.
    forged = _login_through_proxy(client, "correct horse battery staple", forwarded_for="10.7.7.7, 10.1.1.1")

    assert forged.status_code == 429


@pytest.mark.parametrize(
    ("forwarded_for", "counted_as"),
    [
        ("1.2.3.4:5678", "1.2.3.4"),  # a proxy that writes the port too
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("not-an-address", "192.168.0.10"),  # garbage: the proxy's own address
        ("10.7.7.7, 1.2.3.4:99999x", "192.168.0.10"),
    ],
)
def test_behind_a_proxy_an_address_with_a_port_or_garbage_is_counted_without_error(
    client, admin_user, behind_one_proxy, forwarded_for, counted_as
):
    failures = [_login_through_proxy(client, f"guess-{n}", forwarded_for=forwarded_for).status_code for n in range(3)]

    assert failures == [200, 200, 429]  # no 500 from storing the address
    attempt = AccessAttempt.objects.get()
    assert (attempt.username, attempt.ip_address, attempt.failures_since_start) == ("finance", counted_as, 3)


def test_behind_a_proxy_the_same_client_with_and_without_a_port_is_one_address(client, admin_user, behind_one_proxy):
    for n, forwarded_for in enumerate(["1.2.3.4:5678", "1.2.3.4:6000", "1.2.3.4"]):
        _login_through_proxy(client, f"guess-{n}", forwarded_for=forwarded_for)

    from_elsewhere = _login_through_proxy(client, "correct horse battery staple", forwarded_for="5.6.7.8:5678")
    locked = _login_through_proxy(client, "correct horse battery staple", forwarded_for="1.2.3.4:7000")

    assert from_elsewhere.status_code == 302
    assert locked.status_code == 429


def test_the_portal_login_is_locked_out_too(client, admin_user):
    customer_user = UserFactory(username="buyer")  # password: correct-horse-battery
    portal_login = reverse("portal:login")

    def attempt(password: str):
        return client.post(portal_login, {"username": "buyer", "password": password}, REMOTE_ADDR="10.2.2.2")

    failures = [attempt(f"guess-{n}").status_code for n in range(3)]
    locked = attempt("correct-horse-battery")

    assert failures == [200, 200, 429]
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    assert customer_user.pk and AccessAttempt.objects.get().username == "buyer"
