"""Invitations to a customer's portal team: made by an owner (portal) or staff (admin), accepted only
by the invitee.

Nobody becomes a member before accepting: an invitation is a pending row, emailed as a link with a
one-use-per-email token (only its SHA-256 is stored; each email makes a new token, so the secret never
passes through the task queue). The invitee accepts signed in with the invited address; an address
with no account yet gets its account made from the link itself, which proves the mailbox. An
invitation expires after `PORTAL_INVITATION_MAX_AGE` and may be revoked by the customer's owners and
by staff. Inviting answers the same for any address (unknown, a customer user's, a staff account's):
only the email task knows, and it never emails a staff account.
"""

import logging
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext as _

from apps.core import clock
from apps.core.errors import Conflict, NotFound, PermissionRefused, ValidationFailed
from apps.core.queue import enqueue
from apps.core.validation import validate_instance

from .credentials import api_key_hash
from .models import Customer, CustomerInvitation, CustomerMembership
from .services import portal_email_send, portal_url

logger = logging.getLogger(__name__)

EMAIL_MAX_LENGTH = CustomerInvitation._meta.get_field("email").max_length


def _token_hash(token: str) -> str:
    return api_key_hash(token)


def _open_invitations() -> QuerySet[CustomerInvitation]:
    """Invitations neither accepted, revoked nor expired."""
    return CustomerInvitation.objects.filter(
        accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=clock.now()
    )


def _invalid() -> ValidationFailed:
    return ValidationFailed(
        _("This invitation is no longer valid."),
        fields={"invitation": [_("It was accepted, revoked or has expired. Ask for a new one.")]},
        code="invitation_invalid",
    )


def _is_staff_address(email: str) -> bool:
    User = get_user_model()
    return User.objects.filter(email__iexact=email).filter(is_staff=True).exists() or (
        User.objects.filter(email__iexact=email, is_superuser=True).exists()
    )


@transaction.atomic
def customer_invitation_create(*, customer_id: int, email: str, role: str, actor: Any) -> CustomerInvitation:
    """Invite `email` to the customer's team with `role`: a pending invitation (an open one for the
    same address is replaced), emailed by a task once saved. Answers the same whoever the address
    belongs to, except someone already in this team (whom the inviter sees in the team list)."""
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise NotFound(gettext("Customer %(customer_id)s does not exist.") % {"customer_id": customer_id})
    email = email.strip().lower()
    errors: dict[str, list[str]] = {}
    if len(email) > EMAIL_MAX_LENGTH:
        errors["email"] = [_("At most %(count)d characters.") % {"count": EMAIL_MAX_LENGTH}]
    else:
        try:
            validate_email(email)
        except DjangoValidationError:
            errors["email"] = [_("Enter a valid email address.")]
    if role not in CustomerMembership.Role.values:
        errors["role"] = [gettext("Use one of: %(values)s.") % {"values": ", ".join(CustomerMembership.Role.values)}]
    if errors:
        raise ValidationFailed(_("The invitation is not valid."), fields=errors)
    if CustomerMembership.objects.filter(customer=customer, user__email__iexact=email).exists():
        raise ValidationFailed(
            _("Already a member."), fields={"email": [_("This person already belongs to the team.")]}
        )
    now = clock.now()
    CustomerInvitation.objects.filter(
        customer=customer, email=email, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=now, updated_at=now)
    invitation = CustomerInvitation(
        customer=customer,
        email=email,
        role=role,
        token_hash=_token_hash(secrets.token_urlsafe(32)),  # replaced by the emailed link's token
        invited_by=actor if getattr(actor, "is_authenticated", False) else None,
        expires_at=now + timedelta(seconds=settings.PORTAL_INVITATION_MAX_AGE),
    )
    validate_instance(invitation)
    try:
        with transaction.atomic():
            invitation.save()
    except IntegrityError:  # the same address invited at the same moment by someone else
        raise Conflict(
            _("This person is being invited right now."), fields={"email": [_("Try again in a moment.")]}
        ) from None
    transaction.on_commit(lambda: _email_enqueue(invitation.pk))
    return invitation


def _email_enqueue(invitation_id: int) -> None:
    from . import tasks

    enqueue(tasks.customer_invitation_send_task, invitation_id)


def customer_invitation_link(*, token: str) -> str:
    return portal_url(reverse("portal:invitation", args=[token]))


def customer_invitation_email_send(*, invitation_id: int) -> bool:
    """Email the invitee a link with a new token (the previous link stops working), in the customer's
    language. False, and nothing sent, when the invitation is no longer open or the address belongs
    to a staff account (staff never join a customer's team)."""
    with transaction.atomic():
        invitation = (
            _open_invitations()
            .select_for_update(of=("self",))  # not the nullable inviter's row (PostgreSQL refuses it)
            .select_related("customer", "invited_by")
            .filter(pk=invitation_id)
            .first()
        )
        if invitation is None:
            return False
        if _is_staff_address(invitation.email):
            logger.warning("invitation %s not sent: the address belongs to a staff account", invitation_id)
            return False
        token = secrets.token_urlsafe(32)
        invitation.token_hash = _token_hash(token)
        invitation.save(update_fields=["token_hash", "updated_at"])
    customer = invitation.customer
    language = customer.preferred_language
    inviter = invitation.invited_by
    with translation.override(language):
        role = invitation.get_role_display()
    portal_email_send(
        template="invitation",
        to=invitation.email,
        language=language,
        context={
            "customer": customer,
            "link": customer_invitation_link(token=token),
            "inviter": (getattr(inviter, "email", "") or str(inviter)) if inviter else customer.name,
            "role": role,
            "expires_at": invitation.expires_at,
        },
    )
    return True


def customer_invitation_for_token(*, token: str) -> CustomerInvitation:
    """The open invitation of a link's token; `ValidationFailed` (`invitation_invalid`) for a token
    that is unknown, or of an invitation accepted, revoked or expired (the same answer for each)."""
    invitation = _open_invitations().select_related("customer").filter(token_hash=_token_hash(token)).first()
    if invitation is None:
        raise _invalid()
    return invitation


def customer_invitations_for_user(*, user) -> QuerySet[CustomerInvitation]:
    """The open invitations addressed to a signed-in customer user's email (none for staff)."""
    if not getattr(user, "is_authenticated", False) or user.is_staff or user.is_superuser or not user.email:
        return CustomerInvitation.objects.none()
    return _open_invitations().filter(email__iexact=user.email).select_related("customer").order_by("created_at", "id")


def customer_invitation_list_for_customer(*, customer_id: int) -> QuerySet[CustomerInvitation]:
    """A customer's open invitations, for its team page."""
    return _open_invitations().filter(customer_id=customer_id).order_by("email", "id")


@transaction.atomic
def customer_invitation_accept(*, invitation_id: int, user) -> CustomerMembership:
    """The signed-in `user` accepts an invitation addressed to their email: they join the customer
    with the invitation's role (someone already in the team keeps their role). Refused for another
    address, a staff account, or an invitation no longer open; nothing changes then."""
    invitation = _open_invitations().select_for_update().filter(pk=invitation_id).first()
    if invitation is None:
        raise _invalid()
    if not getattr(user, "is_authenticated", False) or not user.is_active or user.is_staff or user.is_superuser:
        raise PermissionRefused(
            _("Staff accounts cannot join a customer's team."), fields={"invitation": [_("Sign in as the invitee.")]}
        )
    if (user.email or "").strip().lower() != invitation.email:
        raise PermissionRefused(
            _("This invitation is for another email address."),
            fields={"invitation": [_("Sign in with the address the invitation was sent to.")]},
        )
    membership = CustomerMembership.objects.filter(customer_id=invitation.customer_id, user=user).first()
    if membership is None:
        membership = CustomerMembership(customer_id=invitation.customer_id, user=user, role=invitation.role)
        validate_instance(membership, exclude=["user", "customer"])
        membership.save()
    invitation.accepted_at, invitation.accepted_by = clock.now(), user
    invitation.save(update_fields=["accepted_at", "accepted_by", "updated_at"])
    return membership


def _username_for(email: str) -> str:
    """A free username for a new customer user: the address when it fits and is free, else a made-up
    one (usernames are unique and at most 150 characters; addresses may be longer, or share their
    first 150 characters). They sign in with their email or a link either way."""
    User = get_user_model()
    max_length = User._meta.get_field(User.USERNAME_FIELD).max_length
    if len(email) <= max_length and not User.objects.filter(username__iexact=email).exists():
        return email
    while True:
        username = f"user-{secrets.token_hex(8)}"
        if not User.objects.filter(username=username).exists():
            return username


class AccountExists(ValidationFailed):  # noqa: N818 (a refusal, like ValidationFailed)
    """The invited address has an account: its owner signs in to accept."""

    code = "sign_in_to_accept"


@transaction.atomic
def customer_invitation_accept_with_new_account(*, token: str):
    """The holder of an invitation link to an address that has no account accepts it: the account is
    made (no password; they may set one) and joins the team. Returns (user, membership). An address
    with an account is `AccountExists`: its owner signs in and accepts."""
    invitation = customer_invitation_for_token(token=token)
    User = get_user_model()
    if User.objects.filter(email__iexact=invitation.email).exists():
        raise AccountExists(
            _("Sign in to accept."),
            fields={"invitation": [_("Sign in as %(email)s, then accept.") % {"email": invitation.email}]},
        )
    user = User(username=_username_for(invitation.email), email=invitation.email)
    user.set_unusable_password()
    user.save()
    membership = customer_invitation_accept(invitation_id=invitation.pk, user=user)
    return user, membership


@transaction.atomic
def customer_invitation_revoke(*, invitation_id: int, customer_id: int | None = None) -> CustomerInvitation:
    """Revoke an open invitation (its link stops working). `customer_id` scopes it to one customer
    (an owner's team page): another customer's invitation is `NotFound`."""
    invitations = CustomerInvitation.objects.select_for_update().filter(pk=invitation_id)
    if customer_id is not None:
        invitations = invitations.filter(customer_id=customer_id)
    invitation = invitations.first()
    if invitation is None:
        raise NotFound(gettext("No such invitation."))
    if invitation.accepted_at is not None:
        raise ValidationFailed(
            _("This invitation was accepted."), fields={"invitation": [_("Remove the member from the team instead.")]}
        )
    if invitation.revoked_at is None:
        invitation.revoked_at = clock.now()
        invitation.save(update_fields=["revoked_at", "updated_at"])
    return invitation
