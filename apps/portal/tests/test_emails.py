"""The portal's emails leave from Celery tasks: a mail server that fails never fails the request (the
invitation stays saved, pending, the task retries), and asking for a sign-in link answers the same whatever
the address."""

import logging
import re

import pytest
from django.core import mail
from django.urls import reverse

from apps.accounts.models import CustomerInvitation, CustomerMembership
from apps.accounts.tests.factories import UserFactory
from apps.portal.tasks import portal_login_link_email_task
from billing_portal.celery import app as celery_app

pytestmark = pytest.mark.django_db


@pytest.fixture
def mail_server_down(settings):
    """Django's SMTP backend pointed at a port where nothing listens: every send raises."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2


def test_invitation_is_saved_when_the_mail_server_fails(
    client, world, django_capture_on_commit_callbacks, eager_tasks, mail_server_down, caplog
):
    client.force_login(world.a.user)
    with caplog.at_level(logging.WARNING, logger="apps.accounts.tasks"):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("portal:team"), {"email": "new.person@alpha.example", "role": "billing"})
    assert response.status_code == 302
    invitation = CustomerInvitation.objects.get(customer=world.a.customer, email="new.person@alpha.example")
    assert [r.message for r in caplog.records if r.message.startswith("invitation ")] == [
        f"invitation {invitation.pk} not sent, giving up: ConnectionRefusedError: [Errno 111] Connection refused"
    ]


def test_sign_in_link_request_answers_the_same_for_known_and_unknown_addresses(
    client, world, django_capture_on_commit_callbacks, eager_tasks, mail_server_down
):
    staff = UserFactory(username="finance", email="finance@seller.example", is_staff=True)
    CustomerMembership.objects.create(customer=world.a.customer, user=staff)
    pages = {}
    for email in [world.a.user.email, "nobody@example.com", staff.email]:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            response = client.post(reverse("portal:login-link"), {"email": email})
        assert response.status_code == 200
        assert len(callbacks) == 1  # one task queued, whoever the address belongs to
        pages[email] = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", response.content.decode()).replace(
            email, "ADDRESS"
        )
    assert len(set(pages.values())) == 1


def test_email_task_retries_a_mail_server_failure(world, mail_server_down, caplog):
    """On a worker (not eager) a failing mail server is retried: 1 try + 5 retries, then given up."""
    # `apply` runs each retry at once, in-process; a worker would wait 1, 2, 4, 8 then 16 minutes.
    celery_app.conf.task_eager_propagates = False
    try:
        with caplog.at_level(logging.WARNING, logger="apps.accounts.tasks"):
            result = portal_login_link_email_task.apply(args=[world.a.user.pk])
    finally:
        celery_app.conf.task_eager_propagates = True
    assert result.get() is False
    messages = [r.message for r in caplog.records if r.name == "apps.accounts.tasks"]
    assert len(messages) == 6
    assert all("(will retry)" in m for m in messages[:5]) and "giving up" in messages[5]
    assert mail.outbox == []


def test_sign_in_link_email_task_sends_the_link(world):
    assert portal_login_link_email_task.apply(args=[world.a.user.pk]).get() is True
    assert mail.outbox[0].to == [world.a.user.email]
    assert "/portal/login/magic/?sesame=" in mail.outbox[0].body
