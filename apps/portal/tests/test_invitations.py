"""Invitations to a customer's team need the invitee's consent: nothing is joined before the invitee
accepts (signed in with the invited address, or making their account from the link), links expire
and can be revoked, and a user of several customers chooses where to work after signing in.

The attack (issue 21): customer A's owner invited customer B's owner by email, and B's owner's next
sign-in landed in A's portal (A renamed to sort first)."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from apps.accounts.invitations import (
    customer_invitation_accept,
    customer_invitation_create,
    customer_invitation_email_send,
)
from apps.accounts.models import CustomerInvitation, CustomerMembership
from apps.accounts.tests.factories import UserFactory
from apps.core import clock
from apps.core.errors import PermissionRefused

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db

User = get_user_model()


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def _invite(client, owner, email, role="owner", capture=None):
    client.force_login(owner)
    with capture(execute=True):
        response = client.post(reverse("portal:team"), {"email": email, "role": role})
    client.logout()
    assert response.status_code == 302
    return response


def _link(email: str) -> str:
    """The path of the invitation link last emailed to `email`."""
    body = [message for message in mail.outbox if message.to == [email]][-1].body
    return re.search(r"http://[^/]+(/portal/invitations/[^/\s]+/)", body).group(1)


@pytest.fixture
def invite(client, django_capture_on_commit_callbacks, eager_tasks):
    def _do(owner, email, role="owner"):
        _invite(client, owner, email, role, capture=django_capture_on_commit_callbacks)
        return _link(email)

    return _do


def _sign_in(client, user):
    user.set_password(PASSWORD)
    user.save()
    return client.post(reverse("portal:login"), {"username": user.username, "password": PASSWORD})


def test_an_invited_owner_of_another_customer_does_not_land_in_the_inviters_portal(client, world, invite):
    world.a.customer.name = "AAA first by name"
    world.a.customer.save()
    invite(world.a.user, world.b.user.email)

    assert not CustomerMembership.objects.filter(customer=world.a.customer, user=world.b.user).exists()
    response = _sign_in(client, world.b.user)
    assert response["Location"] == reverse("portal:dashboard")
    dashboard = client.get(reverse("portal:dashboard"))
    assert dashboard.status_code == 200
    assert dashboard.context["customer"] == world.b.customer
    assert "You have an invitation to a billing account to answer." in _text(dashboard)
    assert client.get(reverse("portal:invoices")).context["customer"] == world.b.customer
    api = client.get("/api/v1/portal/me").json()
    assert (api["customer_id"], [m["customer_id"] for m in api["memberships"]]) == (
        world.b.customer.pk,
        [world.b.customer.pk],
    )


def test_the_invitee_signed_in_with_the_invited_address_accepts_and_works_there(client, world, invite):
    link = invite(world.a.user, world.b.user.email, role="viewer")
    _sign_in(client, world.b.user)

    page = client.get(link)
    assert page.status_code == 200
    assert "Join the billing account of Alpha Labs" in _text(page)
    assert not CustomerMembership.objects.filter(customer=world.a.customer, user=world.b.user).exists()
    response = client.post(link)

    assert response["Location"] == reverse("portal:dashboard")
    membership = CustomerMembership.objects.get(customer=world.a.customer, user=world.b.user)
    assert membership.role == "viewer"
    invitation = CustomerInvitation.objects.get(customer=world.a.customer)
    assert (invitation.accepted_by, invitation.accepted_at is not None) == (world.b.user, True)
    assert client.get(reverse("portal:dashboard")).context["customer"] == world.a.customer
    assert client.post(link).status_code == 404  # used: the link works no more


def test_after_accepting_a_user_of_several_customers_chooses_at_each_sign_in(client, world, invite):
    link = invite(world.a.user, world.b.user.email)
    _sign_in(client, world.b.user)
    client.post(link)
    client.logout()

    _sign_in(client, world.b.user)
    response = client.get(reverse("portal:invoices"))

    assert response.status_code == 302
    assert response["Location"] == reverse("portal:choose") + "?next=/portal/invoices/"
    chooser = client.get(response["Location"])
    assert [m.customer.name for m in chooser.context["choices"]] == ["Alpha Labs", "Beta Works"]
    assert client.get(reverse("portal:dashboard")).status_code == 302  # none picked for them
    chosen = client.post(reverse("portal:choose"), {"customer": world.b.customer.pk, "next": "/portal/invoices/"})
    assert chosen["Location"] == "/portal/invoices/"
    assert client.get(reverse("portal:invoices")).context["customer"] == world.b.customer


def test_the_chooser_goes_nowhere_but_the_portal_and_only_to_the_users_customers(client, world):
    CustomerMembership.objects.create(customer=world.b.customer, user=world.a.user, role="viewer")
    third = UserFactory(username="third", email="third@example.com")
    client.force_login(world.a.user)

    outside = client.post(reverse("portal:choose"), {"customer": world.b.customer.pk, "next": "https://evil.example/"})
    assert outside["Location"] == reverse("portal:dashboard")
    other = CustomerMembership.objects.create(customer=world.a.customer, user=third).customer_id
    client.force_login(third)
    assert client.post(reverse("portal:choose"), {"customer": world.b.customer.pk}).status_code == 404
    assert client.get(reverse("portal:dashboard")).context["customer"].pk == other


def test_another_signed_in_user_cannot_accept(client, world, invite):
    link = invite(world.a.user, "someone.else@example.com")
    _sign_in(client, world.b.user)

    page = client.get(link)
    response = client.post(link)

    assert "Sign out, then open the link again" in _text(page)
    assert response.status_code == 403
    assert "This invitation is for another email address." in _text(response)
    assert not CustomerMembership.objects.filter(customer=world.a.customer, user=world.b.user).exists()
    assert CustomerInvitation.objects.get(customer=world.a.customer).accepted_at is None


def test_the_link_alone_does_not_accept_for_an_address_that_has_an_account(client, world, invite):
    link = invite(world.a.user, world.b.user.email)

    page = client.get(link)
    response = client.post(link)

    assert "This address already has an account: sign in with it, then accept." in _text(page)
    assert response["Location"] == f"{reverse('portal:login')}?next={link}"
    assert not CustomerMembership.objects.filter(customer=world.a.customer, user=world.b.user).exists()


def test_a_new_address_makes_its_account_from_the_link_and_joins(client, world, invite):
    link = invite(world.a.user, "new.person@alpha.example", role="billing")
    assert not User.objects.filter(email="new.person@alpha.example").exists()  # nothing before accepting

    response = client.post(link)

    assert response["Location"] == reverse("portal:password")
    user = User.objects.get(email="new.person@alpha.example")
    assert not user.has_usable_password()
    assert CustomerMembership.objects.get(user=user).customer == world.a.customer
    assert client.get(reverse("portal:dashboard")).context["customer"] == world.a.customer


def test_an_expired_invitation_cannot_be_accepted(client, world, invite, settings):
    link = invite(world.a.user, "late@alpha.example")
    later = clock.now() + timedelta(seconds=settings.PORTAL_INVITATION_MAX_AGE + 1)

    with clock.frozen_at(later):
        page = client.get(link)
        response = client.post(link)

    assert (page.status_code, response.status_code) == (404, 404)
    assert "This invitation is no longer valid" in _text(response)
    assert not User.objects.filter(email="late@alpha.example").exists()


def test_the_owner_revokes_an_invitation_and_its_link_stops_working(client, world, invite):
    link = invite(world.a.user, world.b.user.email)
    invitation = CustomerInvitation.objects.get(customer=world.a.customer)
    client.force_login(world.b.user)
    assert client.post(reverse("portal:team-invitation-revoke", args=[invitation.pk])).status_code == 404  # not B's
    client.force_login(world.a.user)
    assert f"Revoke the invitation of {world.b.user.email}" in _text(client.get(reverse("portal:team")))

    client.post(reverse("portal:team-invitation-revoke", args=[invitation.pk]))

    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    client.force_login(world.b.user)
    assert client.post(link).status_code == 404
    assert not CustomerMembership.objects.filter(customer=world.a.customer, user=world.b.user).exists()


def test_staff_revoke_an_invitation_in_the_admin(client, world, invite, superuser):
    link = invite(world.a.user, "new.person@alpha.example")
    invitation = CustomerInvitation.objects.get(customer=world.a.customer)
    client.force_login(superuser)

    client.post(
        reverse("admin:accounts_customerinvitation_changelist"),
        {"action": "revoke", "_selected_action": [invitation.pk]},
    )

    client.logout()
    assert client.post(link).status_code == 404
    assert not User.objects.filter(email="new.person@alpha.example").exists()


def test_staff_invite_from_the_admin_and_the_invitee_accepts(
    client, world, superuser, eager_tasks, django_capture_on_commit_callbacks
):
    client.force_login(superuser)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:accounts_customerinvitation_add"),
            {"customer": world.b.customer.pk, "email": "cfo@beta.example", "role": "owner"},
        )
    assert response.status_code == 302
    client.logout()
    client.post(_link("cfo@beta.example"))
    assert CustomerMembership.objects.get(user__email="cfo@beta.example").customer == world.b.customer


def test_inviting_again_replaces_the_link(client, world, invite):
    first = invite(world.a.user, "new.person@alpha.example")
    second = invite(world.a.user, "new.person@alpha.example")

    assert client.get(first).status_code == 404
    assert client.get(second).status_code == 200
    assert CustomerInvitation.objects.filter(customer=world.a.customer, revoked_at__isnull=True).count() == 1


def test_the_invite_form_answers_the_same_for_a_staff_address_and_an_unknown_one(
    client, world, django_capture_on_commit_callbacks, eager_tasks
):
    """Low finding: the form said "This address belongs to a staff account". Now the page and the
    invitation are the same for any address; a staff account is never emailed and cannot accept."""
    staff = UserFactory(username="finance", email="finance@seller.example", is_staff=True)
    client.force_login(world.a.user)
    answers = {}
    for email in ["finance@seller.example", "nobody@example.com"]:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("portal:team"), {"email": email, "role": "owner"}, follow=True)
        told = [str(message).replace(email, "ADDRESS") for message in response.context["messages"]]
        answers[email] = (response.redirect_chain, told, response.context["form"].errors)
    expected = (
        [(reverse("portal:team"), 302)],
        ["ADDRESS is invited: they join the team once they accept the invitation we email them."],
        {},
    )
    assert answers["finance@seller.example"] == answers["nobody@example.com"] == expected
    assert CustomerInvitation.objects.filter(email__in=["finance@seller.example", "nobody@example.com"]).count() == 2
    assert [message.to for message in mail.outbox] == [["nobody@example.com"]]  # a staff account is never emailed
    invitation = CustomerInvitation.objects.get(email="finance@seller.example")
    with pytest.raises(PermissionRefused):
        customer_invitation_accept(invitation_id=invitation.pk, user=staff)
    assert not CustomerMembership.objects.filter(user=staff).exists()


def test_two_addresses_sharing_their_first_150_characters_both_join(client, world, invite):
    """Low finding: usernames were the address cut to 150 characters, so the second such address was a
    500 (unique username). Each new account now gets a free username."""
    local = "a" * 64
    domain = ".".join(["b" * 40] * 3) + ".example"  # 132 characters
    first, second = f"{local}@{domain}", f"{local}@{domain[:-8]}.example.org"
    assert first[:150] == second[:150] and len(first) > 150
    links = [invite(world.a.user, first), invite(world.a.user, second)]

    for link in links:
        client.logout()
        assert client.post(link).status_code == 302

    users = User.objects.filter(email__in=[first, second])
    assert users.count() == 2
    assert len({user.username for user in users}) == 2
    assert all(len(user.username) <= 150 for user in users)
    assert CustomerMembership.objects.filter(customer=world.a.customer, user__in=users).count() == 2


def test_an_address_longer_than_the_database_takes_is_a_form_error(client, world):
    client.force_login(world.a.user)
    email = "a" * 64 + "@" + ".".join(["b" * 60] * 4) + ".example"  # 314 characters

    response = client.post(reverse("portal:team"), {"email": email, "role": "viewer"})

    assert response.status_code == 200
    assert response.context["form"].errors["email"]
    assert not CustomerInvitation.objects.exists()


def test_invitation_pages_in_simplified_chinese(client, world, invite):
    link = invite(world.a.user, "new.person@alpha.example")
    client.cookies["django_language"] = "zh-hans"

    page = _text(client.get(link))

    assert "加入 Alpha Labs 的账单账户" in page
    assert "接受邀请" in page
    CustomerMembership.objects.create(customer=world.b.customer, user=world.a.user, role="viewer")
    client.force_login(world.a.user)
    CustomerMembership.objects.filter(user=world.a.user).update(language="zh-hans")
    client.cookies["django_language"] = "zh-hans"
    assert "选择账单账户" in _text(client.get(reverse("portal:choose")))


def test_the_invitation_email_is_in_the_customers_language(world):
    world.a.customer.preferred_language = "zh-hans"
    world.a.customer.save()

    customer_invitation_create(customer_id=world.a.customer.pk, email="x@alpha.example", role="viewer", actor=None)
    customer_invitation_email_send(invitation_id=CustomerInvitation.objects.get().pk)

    assert "接受邀请" in mail.outbox[-1].body
