"""Signing in to the portal: one-time sign-in links and password resets, by email. Every ask does the
same work whatever the address (known, unknown or staff) and is answered the same way; the email
itself is sent by a task on the `email` queue, within per-address limits."""

import hashlib
import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from apps.accounts.constants import PortalLanguage
from apps.accounts.services import portal_email_enqueue, portal_email_send, portal_url
from apps.core.rate_limits import rate_limit_hit

from . import tasks

logger = logging.getLogger(__name__)


def portal_login_link(*, user) -> str:
    """A one-time sign-in link to the portal (django-sesame; expires after `SESAME_MAX_AGE`)."""
    from sesame.utils import get_query_string

    return portal_url(reverse("portal:magic-login")) + get_query_string(user)


def _portal_email_within_limit(*, email: str, client: str, what: str) -> bool:
    """Count one sign-in link or password reset asked for `email` (both together, whatever the case
    of the address, known or not) from the client address `client`, against two limits:
    `PORTAL_EMAIL_RATES["address"]` per email address and client address, so that whoever asks again
    and again for someone else's address uses up their own count, not the owner's; and the looser
    `PORTAL_EMAIL_RATES["address_total"]` per email address from anywhere, so that many networks
    together cannot flood a mailbox (counted only for asks within the first limit). False past either:
    the asker is answered as usual but nothing is sent, and that is logged (the address masked)."""
    digest = hashlib.sha256(email.lower().encode()).hexdigest()
    rates = settings.PORTAL_EMAIL_RATES
    limit = "per-address"
    wait = rate_limit_hit(scope="portal_email_address", ident=f"{digest}:{client}", rate=rates.get("address"))
    if wait is None:
        limit = "overall per-address"
        wait = rate_limit_hit(scope="portal_email_address_total", ident=digest, rate=rates.get("address_total"))
    if wait is None:
        return True
    local, _at, domain = email.rpartition("@")
    logger.warning(
        "portal %s for %s***@%s from %s not sent: over the %s limit (%s) for %d more seconds",
        what, local[:1], domain, client, limit,
        rates["address"] if limit == "per-address" else rates["address_total"], round(wait),
    )  # fmt: skip
    return False


def _portal_users():
    """Who may get portal emails: active, non-staff users who belong to a customer."""
    return get_user_model().objects.filter(is_active=True, is_staff=False, memberships__isnull=False).distinct()


def portal_login_link_send(*, email: str, client: str) -> None:
    """Someone asks (from the client address `client`) for a sign-in link to `email`: whatever the
    address, one task is queued on commit, and the task finds who (if anyone) gets a link. The request
    does the same work for a known, an unknown or a staff address, and a mail server failure never
    reaches it. Past the per-address limits nothing is queued (`_portal_email_within_limit`)."""
    email = email.strip()
    if email and _portal_email_within_limit(email=email, client=client, what="sign-in link"):
        transaction.on_commit(lambda: portal_email_enqueue(tasks.portal_login_link_request_task, email))


def portal_login_link_recipients(*, email: str) -> list[int]:
    """The users (ids) a sign-in link asked for `email` goes to. Says nothing to the asker. Staff
    accounts sign in through the admin only: a customer's mailbox never opens a staff account."""
    email = email.strip()
    if not email:
        return []
    return list(_portal_users().filter(email__iexact=email).order_by("id").values_list("id", flat=True))


def portal_login_link_email_send(*, user_id: int) -> bool:
    """Email one customer user a sign-in link (made now, so it expires `SESAME_MAX_AGE` after it is
    sent), in their portal language. False when the user may no longer have one."""
    user = _portal_users().filter(pk=user_id).first()
    if user is None:
        return False
    membership = user.memberships.select_related("customer").order_by("id").first()
    language = membership.portal_language if membership else PortalLanguage.ENGLISH
    link = portal_login_link(user=user)
    portal_email_send(template="login_link", to=user.email, language=language, context={"user": user, "link": link})
    return True


def portal_password_reset_request(*, email: str, client: str, domain: str, protocol: str, language: str) -> None:
    """Someone asks (from the client address `client`) to reset the password of `email`: as for
    sign-in links, one task is queued on commit whatever the address, and the task finds who (if
    anyone) gets the email. Past the per-address limits nothing is queued (`_portal_email_within_limit`)."""
    email = email.strip()
    if email and _portal_email_within_limit(email=email, client=client, what="password reset"):
        transaction.on_commit(
            lambda: portal_email_enqueue(tasks.portal_password_reset_request_task, email, domain, protocol, language)
        )


def portal_password_reset_recipients(*, email: str) -> list[int]:
    """The customer users (ids) a password reset asked for `email` goes to: those with a password
    (Django's rule; the others sign in with a link)."""
    email = email.strip()
    users = _portal_users().filter(email__iexact=email).order_by("id") if email else []
    return [user.pk for user in users if user.has_usable_password()]


def portal_password_reset_email_send(*, user_id: int, domain: str, protocol: str, language: str) -> bool:
    """Email a customer user a link to choose a new password (Django's reset token, made now)."""
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    user = _portal_users().filter(pk=user_id).first()
    if user is None:
        return False
    context = {
        "email": user.email,
        "domain": domain,
        "site_name": domain,
        "protocol": protocol,
        "user": user,
        "uid": urlsafe_base64_encode(force_bytes(user.pk)),
        "token": default_token_generator.make_token(user),
    }
    with translation.override(language):
        subject = "".join(render_to_string("portal/email/password_reset_subject.txt", context).splitlines())
        body = render_to_string("portal/email/password_reset.txt", context)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email])
    return True
