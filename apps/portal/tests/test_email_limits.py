"""Nobody can flood a mailbox through the portal's email forms (sign-in link, password reset): past
`PORTAL_EMAIL_RATES["address"]` for one address from one client address, or past
`PORTAL_EMAIL_RATES["address_total"]` for one address from anywhere, the forms answer as before but
send nothing (logged), and past `PORTAL_EMAIL_RATES["client"]` for one client address they answer 429
with a form error. Nobody can use up the owner's own asks from elsewhere."""

import logging
import re

import pytest
from django.core import mail
from django.core.cache import cache
from django.urls import reverse

from apps.core.tests.rate_windows import inside_one_window

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def limits(settings):
    settings.PORTAL_EMAIL_RATES = {"address": "3/15minute", "address_total": "10/hour", "client": "20/hour"}
    cache.clear()  # the counters live in the cache
    with inside_one_window():
        yield
    cache.clear()


def _ask(client, form: str, email: str, capture, address: str = "10.2.2.2", **extra):
    with capture(execute=True):
        return client.post(reverse(form), {"email": email}, REMOTE_ADDR=address, **extra)


def _page(response, email: str) -> str:
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", response.content.decode())
    return html.replace(email, "ADDRESS")


def test_an_address_gets_at_most_three_emails_from_both_forms_then_the_same_answer_and_a_log(
    client, world, django_capture_on_commit_callbacks, eager_tasks, caplog
):
    email = world.a.user.email
    forms = ["portal:login-link", "portal:password-reset", "portal:login-link"]
    first = [_ask(client, form, email, django_capture_on_commit_callbacks) for form in forms]
    assert len(mail.outbox) == 3
    with caplog.at_level(logging.WARNING, logger="apps.portal.services"):
        link = _ask(client, "portal:login-link", email.upper(), django_capture_on_commit_callbacks)
        reset = _ask(client, "portal:password-reset", email, django_capture_on_commit_callbacks)

    assert len(mail.outbox) == 3  # nothing more sent
    assert (link.status_code, reset.status_code) == (200, 302)
    assert _page(link, email.upper()) == _page(first[0], email)  # the same answer as when sent
    assert reset["Location"] == first[1]["Location"] == reverse("portal:password-reset-done")
    logged = [r.getMessage() for r in caplog.records if r.name == "apps.portal.services"]
    assert len(logged) == 2
    assert logged[0].startswith(
        "portal sign-in link for O***@ALPHA-LABS.EXAMPLE from 10.2.2.2 not sent: "
        "over the per-address limit (3/15minute)"
    )
    assert logged[1].startswith("portal password reset for o***@alpha-labs.example from 10.2.2.2 not sent")


def test_the_address_limit_answers_the_same_for_an_unknown_address(
    client, world, django_capture_on_commit_callbacks, eager_tasks
):
    known, unknown = world.a.user.email, "nobody@example.com"
    for _ in range(3):
        _ask(client, "portal:login-link", known, django_capture_on_commit_callbacks)
        _ask(client, "portal:login-link", unknown, django_capture_on_commit_callbacks)
    mail.outbox.clear()

    over = {e: _ask(client, "portal:login-link", e, django_capture_on_commit_callbacks) for e in (known, unknown)}

    assert mail.outbox == []
    assert _page(over[known], known) == _page(over[unknown], unknown)
    # another address is counted on its own
    _ask(client, "portal:login-link", world.b.user.email, django_capture_on_commit_callbacks)
    assert [m.to for m in mail.outbox] == [[world.b.user.email]]


def test_a_flood_from_one_network_does_not_stop_the_owners_own_ask_from_another(
    client, world, django_capture_on_commit_callbacks, eager_tasks
):
    victim = world.a.user.email
    for form in ["portal:login-link", "portal:password-reset"] * 4:  # 8 asks, 3 sent
        _ask(client, form, victim, django_capture_on_commit_callbacks, address="203.0.113.66")
    assert len(mail.outbox) == 3
    mail.outbox.clear()

    link = _ask(client, "portal:login-link", victim, django_capture_on_commit_callbacks, address="198.51.100.7")
    reset = _ask(client, "portal:password-reset", victim, django_capture_on_commit_callbacks, address="198.51.100.7")

    assert (link.status_code, reset.status_code) == (200, 302)
    assert len(mail.outbox) == 2  # the owner's link and reset both go out
    assert "sesame=" in mail.outbox[0].body


def test_the_overall_ceiling_per_address_holds_across_networks(
    client, world, django_capture_on_commit_callbacks, eager_tasks, caplog
):
    victim = world.a.user.email
    networks = [f"203.0.113.{n}" for n in range(1, 6)]
    with caplog.at_level(logging.WARNING, logger="apps.portal.services"):
        for address in networks:  # 5 networks × 3 asks: 15 asks, each network within its own count
            for _ in range(3):
                _ask(client, "portal:login-link", victim, django_capture_on_commit_callbacks, address=address)
        late = _ask(client, "portal:password-reset", victim, django_capture_on_commit_callbacks, address="192.0.2.1")

    assert len(mail.outbox) == 10  # address_total: 10/hour
    assert late.status_code == 302  # the same answer, nothing sent
    logged = [r.getMessage() for r in caplog.records if r.name == "apps.portal.services"]
    assert len(logged) == 6
    assert "over the overall per-address limit (10/hour)" in logged[-1]


def test_a_client_address_over_its_limit_gets_429_and_a_form_error(
    client, world, django_capture_on_commit_callbacks, eager_tasks
):
    emails = [f"someone{n}@example.com" for n in range(20)]
    within = [_ask(client, "portal:login-link", e, django_capture_on_commit_callbacks).status_code for e in emails]

    link = _ask(client, "portal:login-link", world.a.user.email, django_capture_on_commit_callbacks)
    reset = _ask(client, "portal:password-reset", world.a.user.email, django_capture_on_commit_callbacks)

    assert within == [200] * 20
    for response in (link, reset):
        assert response.status_code == 429
        assert 1 <= int(response["Retry-After"]) <= 3600
        assert re.search(
            r"Too many emails were asked for from your network\. Try again in \d+ minutes?\.", response.content.decode()
        )
        assert 'name="email"' in response.content.decode()  # the form again
    assert mail.outbox == []
    # another client is counted on its own
    other = _ask(
        client, "portal:login-link", world.a.user.email, django_capture_on_commit_callbacks, address="10.3.3.3"
    )
    assert other.status_code == 200
    assert [m.to for m in mail.outbox] == [[world.a.user.email]]


def test_behind_proxies_the_client_is_told_apart_by_its_forwarded_address(
    client, world, django_capture_on_commit_callbacks, settings
):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    settings.PORTAL_EMAIL_RATES = {"address": "", "client": "2/hour"}
    proxy = "10.0.0.1"
    answers = [
        _ask(client, "portal:login-link", "a@example.com", django_capture_on_commit_callbacks, address=proxy,
             HTTP_X_FORWARDED_FOR=forwarded).status_code
        for forwarded in ["203.0.113.5", "203.0.113.5", "203.0.113.5", "198.51.100.7"]
    ]  # fmt: skip

    assert answers == [200, 200, 429, 200]


def test_the_client_limit_error_is_translated(client, world, django_capture_on_commit_callbacks, settings):
    settings.PORTAL_EMAIL_RATES = {"address": "", "client": "1/hour"}
    _ask(client, "portal:password-reset", "a@example.com", django_capture_on_commit_callbacks)

    response = _ask(
        client,
        "portal:password-reset",
        "a@example.com",
        django_capture_on_commit_callbacks,
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )

    assert response.status_code == 429
    assert "请求的邮件过多" in response.content.decode()
