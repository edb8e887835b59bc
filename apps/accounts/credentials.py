"""Credentials: the seller's API keys, staff users' API tokens and customer users' API tokens. Each is
shown once when made, stored as a hash, revocable, and records its last use (at most one write a minute)."""

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.translation import gettext
from django.utils.translation import gettext as _

from apps.core import clock
from apps.core.errors import NotFound, ValidationFailed
from apps.core.validation import validate_instance

from .models import ApiKey, CustomerMembership, PortalToken, UserToken

API_KEY_PREFIX = "bp_"


def api_key_hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


@transaction.atomic
def api_key_create(*, name: str, actor: Any = None) -> tuple[ApiKey, str]:
    """A new API key and its secret, which is shown this once and never stored (only its hash is)."""
    if not name.strip():
        raise ValidationFailed(gettext("Give the key a name."), fields={"name": [gettext("Say what uses this key.")]})
    public = secrets.token_hex(4)
    raw_key = f"{API_KEY_PREFIX}{public}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey(
        name=name.strip(),
        prefix=f"{API_KEY_PREFIX}{public}",
        key_hash=api_key_hash(raw_key),
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    validate_instance(api_key)
    api_key.save()
    return api_key, raw_key


@transaction.atomic
def api_key_revoke(*, api_key_id: int, now: datetime | None = None) -> ApiKey:
    api_key = ApiKey.objects.select_for_update().filter(pk=api_key_id).first()
    if api_key is None:
        raise NotFound(gettext("API key %(api_key_id)s does not exist.") % {"api_key_id": api_key_id})
    if api_key.revoked_at is None:
        api_key.revoked_at = now or clock.now()
        api_key.save(update_fields=["revoked_at", "updated_at"])
    return api_key


def api_key_authenticate(raw_key: str, *, now: datetime | None = None) -> ApiKey | None:
    """The active key matching `raw_key`, or None. Records when it was last used (at most once a minute)."""
    if not raw_key.startswith(API_KEY_PREFIX):
        return None
    api_key = ApiKey.objects.filter(key_hash=api_key_hash(raw_key), revoked_at__isnull=True).first()
    if api_key is None or not hmac.compare_digest(api_key.key_hash, api_key_hash(raw_key)):
        return None
    _last_use_record(api_key, now=now or clock.now())
    return api_key


# --- Users' API tokens (`Authorization: Token bpu_…`) ----------------------------------------------

USER_TOKEN_PREFIX = "bpu_"


@transaction.atomic
def user_token_create(*, user_id: int, name: str, actor: Any = None) -> tuple[UserToken, str]:
    """A new API token of an active user, and its secret, which is shown this once and never stored
    (only its hash is)."""
    errors: dict[str, list[str]] = {}
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        errors["user"] = [gettext("User %(user_id)s does not exist.") % {"user_id": user_id}]
    elif not user.is_active:
        errors["user"] = [gettext("User %(user)s is deactivated.") % {"user": user}]
    if not (name or "").strip():
        errors["name"] = [gettext("Say what uses this token.")]
    if errors:
        raise ValidationFailed(gettext("The token was not made."), fields=errors)
    public = secrets.token_hex(4)
    raw_token = f"{USER_TOKEN_PREFIX}{public}_{secrets.token_urlsafe(32)}"
    token = UserToken(
        user=user,
        name=name.strip(),
        prefix=f"{USER_TOKEN_PREFIX}{public}",
        key_hash=api_key_hash(raw_token),
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    validate_instance(token)
    token.save()
    return token, raw_token


@transaction.atomic
def user_token_revoke(*, token_id: int, now: datetime | None = None) -> UserToken:
    token = UserToken.objects.select_for_update().filter(pk=token_id).first()
    if token is None:
        raise NotFound(gettext("Token %(token_id)s does not exist.") % {"token_id": token_id})
    if token.revoked_at is None:
        token.revoked_at = now or clock.now()
        token.save(update_fields=["revoked_at", "updated_at"])
    return token


def user_token_authenticate(raw_token: str, *, now: datetime | None = None) -> UserToken | None:
    """The active token matching `raw_token` of an active user, or None. Records when it was last used
    (at most once a minute)."""
    if not raw_token.startswith(USER_TOKEN_PREFIX):
        return None
    token = (
        UserToken.objects.select_related("user")
        .filter(key_hash=api_key_hash(raw_token), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None or not hmac.compare_digest(token.key_hash, api_key_hash(raw_token)):
        return None
    _last_use_record(token, now=now or clock.now())
    return token


def _last_use_record(credential: ApiKey | PortalToken | UserToken, *, now: datetime) -> None:
    """Record when an API key or customer token was last used: at most one write a minute."""
    if credential.last_used_at is None or now - credential.last_used_at > timedelta(minutes=1):
        type(credential).objects.filter(pk=credential.pk).update(last_used_at=now)


# --- Customer users' API tokens -------------------------------------------------------------------


PORTAL_TOKEN_PREFIX = "bpc_"
PORTAL_TOKEN_NAME_MAX_LENGTH = PortalToken._meta.get_field("name").max_length
# Active tokens one member may hold for one customer.
PORTAL_TOKENS_PER_MEMBER = 20


@transaction.atomic
def portal_token_create(*, membership_id: int, name: str) -> tuple[PortalToken, str]:
    """A customer user's new personal token for the customer API, acting for the membership's customer
    only. Returns the token and its secret, which is shown this once and never stored (only its hash is)."""
    membership = CustomerMembership.objects.select_for_update().filter(pk=membership_id).first()
    if membership is None:
        raise NotFound(gettext("No such membership."))
    name = name.strip()
    if not name:
        raise ValidationFailed(_("Give the token a name."), fields={"name": [_("Say what uses this token.")]})
    if len(name) > PORTAL_TOKEN_NAME_MAX_LENGTH:
        raise ValidationFailed(
            _("The name is too long."),
            fields={"name": [_("At most %(count)d characters.") % {"count": PORTAL_TOKEN_NAME_MAX_LENGTH}]},
        )
    if membership.portal_tokens.filter(revoked_at__isnull=True).count() >= PORTAL_TOKENS_PER_MEMBER:
        raise ValidationFailed(
            _("You have too many tokens."),
            fields={
                "name": [
                    _("Revoke one you no longer use first (at most %(count)d).") % {"count": PORTAL_TOKENS_PER_MEMBER}
                ]
            },
        )
    public = secrets.token_hex(4)
    raw_token = f"{PORTAL_TOKEN_PREFIX}{public}_{secrets.token_urlsafe(32)}"
    token = PortalToken(
        membership=membership, name=name, prefix=f"{PORTAL_TOKEN_PREFIX}{public}", key_hash=api_key_hash(raw_token)
    )
    validate_instance(token)
    token.save()
    return token, raw_token


@transaction.atomic
def portal_token_revoke(*, membership_id: int, token_id: int | str, now: datetime | None = None) -> PortalToken:
    """Revoke one of the member's own tokens; another member's or customer's token is `NotFound`."""
    try:
        token_pk = int(token_id)
    except (TypeError, ValueError):
        raise NotFound(gettext("No such token.")) from None
    token = PortalToken.objects.select_for_update().filter(pk=token_pk, membership_id=membership_id).first()
    if token is None:
        raise NotFound(gettext("No such token."))
    if token.revoked_at is None:
        token.revoked_at = now or clock.now()
        token.save(update_fields=["revoked_at", "updated_at"])
    return token


def portal_token_authenticate(raw_token: str, *, now: datetime | None = None) -> PortalToken | None:
    """The active token matching `raw_token` of an active, non-staff user still in the team, or None (a
    staff account never acts through the portal, even if it became staff after making the token).
    Records when it was last used (at most once a minute)."""
    if not raw_token.startswith(PORTAL_TOKEN_PREFIX):
        return None
    token = (
        PortalToken.objects.select_related("membership__user", "membership__customer")
        .filter(
            key_hash=api_key_hash(raw_token),
            revoked_at__isnull=True,
            membership__user__is_active=True,
            membership__user__is_staff=False,
            membership__user__is_superuser=False,
        )
        .first()
    )
    if token is None or not hmac.compare_digest(token.key_hash, api_key_hash(raw_token)):
        return None
    _last_use_record(token, now=now or clock.now())
    return token
