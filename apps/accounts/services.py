import hashlib
import hmac
import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from apps.core import clock
from apps.core.api.throttling import rate_limit_hit
from apps.core.errors import NotFound, ValidationFailed
from apps.core.queue import enqueue
from apps.core.validation import validate_instance

from .constants import CollectionMethod, PortalLanguage
from .models import ApiKey, BillingContact, Customer, CustomerMembership, PortalToken, TestClock, UserToken
from .tax_ids import InvalidTaxId, tax_id_check, tax_id_type_fits_country

logger = logging.getLogger(__name__)

CUSTOMER_EDITABLE_FIELDS = (
    "external_id",
    "name",
    "email",
    "address_line1",
    "address_line2",
    "city",
    "postal_code",
    "state",
    "country",
    "tax_id",
    "tax_id_type",
    "tax_exempt",
    "payment_terms_days",
    "invoice_grouping",
    "collection_method",
    "preferred_language",
)

TAX_ID_FIELDS = ("tax_id", "tax_id_type", "tax_id_status", "tax_id_checked_at")


def _customer_tax_id_apply(customer: Customer, *, tax_id: str, tax_id_type: str) -> dict[str, list[str]]:
    """Set the customer's tax ID fields from what was typed: checked and normalized (see
    apps/accounts/tax_ids.py), or all empty without a tax ID. Returns the field errors, if any (then
    the fields hold the input as typed, for the form to show)."""
    if not tax_id.strip():
        customer.tax_id, customer.tax_id_type, customer.tax_id_status, customer.tax_id_checked_at = "", "", "", None
        return {}
    try:
        checked = tax_id_check(tax_id=tax_id, country=str(customer.country), tax_id_type=tax_id_type)
    except InvalidTaxId as exc:
        customer.tax_id, customer.tax_id_type = tax_id, tax_id_type
        return {exc.field: [exc.message]}
    customer.tax_id, customer.tax_id_type = checked.tax_id, checked.type
    customer.tax_id_status, customer.tax_id_checked_at = checked.status, clock.now()
    return {}


def _customer_validate(customer: Customer, *, tax_id_errors: dict[str, list[str]]) -> None:
    """Refuse the customer with every field error at once: the model's and the tax ID's (a refused
    tax ID's fields hold the input, so the model's checks of them are skipped)."""
    try:
        validate_instance(customer, exclude=list(TAX_ID_FIELDS) if tax_id_errors else None)
    except ValidationFailed as exc:
        raise ValidationFailed(exc.message, fields={**exc.fields, **tax_id_errors}) from exc
    if tax_id_errors:
        raise ValidationFailed(_("The tax ID is not valid."), fields=tax_id_errors)


@transaction.atomic
def customer_create(
    *,
    name: str,
    email: str,
    country: str,
    currency: str,
    external_id: str = "",
    address_line1: str = "",
    address_line2: str = "",
    city: str = "",
    postal_code: str = "",
    state: str = "",
    tax_id: str = "",
    tax_id_type: str = "",
    tax_exempt: bool = False,
    payment_terms_days: int | None = None,
    invoice_grouping: str = "",
    collection_method: str = CollectionMethod.SEND_INVOICE,
    preferred_language: str = PortalLanguage.ENGLISH,
    test_clock: TestClock | None = None,
    billing_contacts: list[dict[str, Any]] | None = None,
) -> Customer:
    """A new customer. A tax ID is checked and normalized first; `tax_id_type` empty means the usual
    kind for the customer's country (an EU VAT number in an EU member state)."""
    customer = Customer(
        test_clock=test_clock,
        name=name,
        email=email,
        country=country,
        currency=currency,
        external_id=external_id,
        address_line1=address_line1,
        address_line2=address_line2,
        city=city,
        postal_code=postal_code,
        state=state,
        tax_exempt=tax_exempt,
        payment_terms_days=payment_terms_days,
        invoice_grouping=invoice_grouping,
        collection_method=collection_method,
        preferred_language=preferred_language,
    )
    tax_id_errors = _customer_tax_id_apply(customer, tax_id=tax_id, tax_id_type=tax_id_type)
    _customer_validate(customer, tax_id_errors=tax_id_errors)
    customer.save()
    if billing_contacts:
        customer_billing_contacts_replace(customer=customer, contacts=billing_contacts)
    return customer


@transaction.atomic
def customer_update(*, customer_id: int, **changes) -> Customer:
    """Change a customer's details. The billing currency is fixed once the customer exists. The tax
    ID is checked again when it, its kind or the country changes. `billing_contacts`, when given,
    replaces the whole list (see `customer_billing_contacts_replace`)."""
    customer = Customer.objects.select_for_update().filter(pk=customer_id).first()
    if customer is None:
        raise NotFound(f"Customer {customer_id} does not exist.")
    billing_contacts = changes.pop("billing_contacts", None)
    if changes.get("currency", customer.currency) == customer.currency:
        changes.pop("currency", None)  # sending the unchanged currency back is fine
    unknown = set(changes) - set(CUSTOMER_EDITABLE_FIELDS)
    if "currency" in unknown:
        raise ValidationFailed(
            "The billing currency cannot be changed.",
            fields={"currency": ["The billing currency cannot be changed once the customer exists."]},
        )
    if unknown:
        raise ValidationFailed(f"Unknown fields: {', '.join(sorted(unknown))}.")
    tax_id_changes = {name: changes.pop(name) for name in ("tax_id", "tax_id_type") if name in changes}
    for name, value in changes.items():
        setattr(customer, name, value)
    tax_id_errors: dict[str, list[str]] = {}
    if tax_id_changes or "country" in changes:
        # The kind stays unless the customer moved where it does not apply (then: the new country's).
        fits = tax_id_type_fits_country(tax_id_type=customer.tax_id_type, country=str(customer.country))
        default_type = customer.tax_id_type if fits else ""
        tax_id_errors = _customer_tax_id_apply(
            customer,
            tax_id=tax_id_changes.get("tax_id", customer.tax_id),
            tax_id_type=tax_id_changes.get("tax_id_type", default_type),
        )
        changes.update(dict.fromkeys(TAX_ID_FIELDS))
    _customer_validate(customer, tax_id_errors=tax_id_errors)
    customer.save(update_fields=[*changes, "updated_at"])
    if billing_contacts is not None:
        customer_billing_contacts_replace(customer=customer, contacts=billing_contacts)
    return customer


@transaction.atomic
def customer_billing_contacts_replace(*, customer: Customer, contacts: list[dict[str, Any]]) -> list[BillingContact]:
    """Make `contacts` ({"email", "name", "receives_invoices"}) the customer's billing contacts: a
    contact already on file (same email, any case) keeps its row and takes the new name and flag,
    the others are added, and contacts not listed are removed. Errors are per contact and field
    (`billing_contacts.<index>.<field>`); nothing is written unless the whole list is valid."""
    errors: dict[str, list[str]] = {}
    seen: dict[str, int] = {}
    for index, contact in enumerate(contacts):
        email = str(contact.get("email", "")).strip()
        if not email:
            errors[f"billing_contacts.{index}.email"] = [_("This field is required.")]
        elif email.lower() in seen:
            errors[f"billing_contacts.{index}.email"] = [
                _("Already listed (contact %(index)d).") % {"index": seen[email.lower()]}
            ]
        else:
            seen[email.lower()] = index
    if errors:
        raise ValidationFailed(_("Some billing contacts are invalid."), fields=errors)
    existing = {contact.email.lower(): contact for contact in customer.billing_contacts.all()}
    kept: list[BillingContact] = []
    for index, data in enumerate(contacts):
        email = str(data["email"]).strip()
        contact = existing.pop(email.lower(), None) or BillingContact(customer=customer)
        contact.email = email
        contact.name = str(data.get("name", "")).strip()
        contact.receives_invoices = bool(data.get("receives_invoices", True))
        try:
            validate_instance(contact, exclude=["customer"])
        except ValidationFailed as exc:
            raise ValidationFailed(
                _("Some billing contacts are invalid."),
                fields={f"billing_contacts.{index}.{name}": messages for name, messages in exc.fields.items()},
            ) from exc
        kept.append(contact)
    BillingContact.objects.filter(pk__in=[contact.pk for contact in existing.values()]).delete()
    for contact in kept:
        contact.save()
    return kept


@transaction.atomic
def customer_membership_add(
    *, customer: Customer, user, role: str = CustomerMembership.Role.BILLING
) -> CustomerMembership:
    """Let a user act for a customer (a user may belong to several customers). Idempotent: an existing
    membership keeps its row and takes the given role."""
    membership, _created = CustomerMembership.objects.update_or_create(
        customer=customer, user=user, defaults={"role": role}
    )
    validate_instance(membership, exclude=["user", "customer"])
    return membership


@transaction.atomic
def test_clock_create(*, name: str, frozen_at: datetime | None = None) -> TestClock:
    """A test clock starting at `frozen_at` (default: now)."""
    test_clock = TestClock(name=name, frozen_at=clock.ensure_aware(frozen_at or clock.now()))
    validate_instance(test_clock)
    test_clock.save()
    return test_clock


test_clock_create.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


API_KEY_PREFIX = "bp_"


def api_key_hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


@transaction.atomic
def api_key_create(*, name: str, actor: Any = None) -> tuple[ApiKey, str]:
    """A new API key and its secret, which is shown this once and never stored (only its hash is)."""
    if not name.strip():
        raise ValidationFailed("Give the key a name.", fields={"name": ["Say what uses this key."]})
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
        raise NotFound(f"API key {api_key_id} does not exist.")
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
        errors["user"] = [f"User {user_id} does not exist."]
    elif not user.is_active:
        errors["user"] = [f"User {user} is deactivated."]
    if not (name or "").strip():
        errors["name"] = ["Say what uses this token."]
    if errors:
        raise ValidationFailed("The token was not made.", fields=errors)
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
        raise NotFound(f"Token {token_id} does not exist.")
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
    """Record when an API key or a token was last used: at most one write a minute."""
    if credential.last_used_at is None or now - credential.last_used_at > timedelta(minutes=1):
        type(credential).objects.filter(pk=credential.pk).update(last_used_at=now)


# --- Portal users ----------------------------------------------------------------------------------

# What a customer user may change about their own billing account in the portal.
CUSTOMER_SELF_SERVICE_FIELDS = (
    "name",
    "email",
    "address_line1",
    "address_line2",
    "city",
    "postal_code",
    "state",
    "country",
    "tax_id",
    "tax_id_type",
    "preferred_language",
)


@transaction.atomic
def customer_billing_details_update(
    *, customer_id: int, billing_emails: list[str] | None = None, **changes: Any
) -> Customer:
    """A customer user's change of their billing details: address, tax ID (checked as everywhere),
    language and the extra addresses bills are emailed to (`billing_emails`, contacts not listed are
    removed; a contact kept keeps its name). Nothing else (currency, terms, tax exemption) may change
    this way."""
    unknown = set(changes) - set(CUSTOMER_SELF_SERVICE_FIELDS)
    if unknown:
        raise ValidationFailed(f"Unknown fields: {', '.join(sorted(unknown))}.")
    contacts = None
    if billing_emails is not None:
        customer = Customer.objects.filter(pk=customer_id).first()
        if customer is None:
            raise NotFound(f"Customer {customer_id} does not exist.")
        names = {contact.email.lower(): contact.name for contact in customer.billing_contacts.all()}
        contacts = [
            {"email": email, "name": names.get(email.strip().lower(), ""), "receives_invoices": True}
            for email in billing_emails
        ]
        try:
            return customer_update(customer_id=customer_id, billing_contacts=contacts, **changes)
        except ValidationFailed as exc:
            fields = {
                name.replace("billing_contacts.", "billing_emails.").replace(".email", ""): messages
                for name, messages in exc.fields.items()
            }
            raise ValidationFailed(exc.message, fields=fields) from exc
    return customer_update(customer_id=customer_id, **changes)


def _portal_url(path: str) -> str:
    return settings.PORTAL_BASE_URL.rstrip("/") + path


def portal_login_link(*, user) -> str:
    """A one-time sign-in link to the portal (django-sesame; expires after `SESAME_MAX_AGE`)."""
    from sesame.utils import get_query_string

    return _portal_url(reverse("portal:magic-login")) + get_query_string(user)


def _send_portal_email(*, template: str, to: str, language: str, context: dict[str, Any]) -> None:
    with translation.override(language):
        subject = render_to_string(f"accounts/email/{template}_subject.txt", context).strip()
        body = render_to_string(f"accounts/email/{template}.txt", context)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to])


def _portal_email_enqueue(task_name: str, *args: Any) -> None:
    from . import tasks

    enqueue(getattr(tasks, task_name), *args)


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
        transaction.on_commit(lambda: _portal_email_enqueue("portal_login_link_request_task", email))


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
    _send_portal_email(template="login_link", to=user.email, language=language, context={"user": user, "link": link})
    return True


def customer_invitation_email_send(*, membership_id: int, inviter: str) -> bool:
    """Email an invited teammate their sign-in link, in the customer's language. False when the
    invitation is gone (removed meanwhile) or the account may not use the portal."""
    membership = CustomerMembership.objects.select_related("customer", "user").filter(pk=membership_id).first()
    if membership is None or not _portal_users().filter(pk=membership.user_id).exists():
        return False
    customer = membership.customer
    language = customer.preferred_language
    with translation.override(language):
        role = membership.get_role_display()
    _send_portal_email(
        template="invitation",
        to=membership.user.email,
        language=language,
        context={
            "customer": customer,
            "link": portal_login_link(user=membership.user),
            "inviter": inviter,
            "role": role,
        },
    )
    return True


def portal_password_reset_request(*, email: str, client: str, domain: str, protocol: str, language: str) -> None:
    """Someone asks (from the client address `client`) to reset the password of `email`: as for
    sign-in links, one task is queued on commit whatever the address, and the task finds who (if
    anyone) gets the email. Past the per-address limits nothing is queued (`_portal_email_within_limit`)."""
    email = email.strip()
    if email and _portal_email_within_limit(email=email, client=client, what="password reset"):
        transaction.on_commit(
            lambda: _portal_email_enqueue("portal_password_reset_request_task", email, domain, protocol, language)
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


@transaction.atomic
def customer_user_invite(*, customer_id: int, email: str, role: str, actor: Any) -> CustomerMembership:
    """An owner invites a teammate: the user (found by email, or created without a password) joins the
    customer with `role` and gets an email with a sign-in link (and may then set a password). Staff
    accounts are never invited (they keep their own sign-in)."""
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise NotFound(f"Customer {customer_id} does not exist.")
    email = email.strip().lower()
    errors: dict[str, list[str]] = {}
    try:
        validate_email(email)
    except DjangoValidationError:
        errors["email"] = [_("Enter a valid email address.")]
    if role not in CustomerMembership.Role.values:
        errors["role"] = [f"Use one of: {', '.join(CustomerMembership.Role.values)}."]
    if errors:
        raise ValidationFailed(_("The invitation is not valid."), fields=errors)
    User = get_user_model()
    user = User.objects.filter(email__iexact=email).order_by("id").first()
    if user is not None and (user.is_staff or user.is_superuser):
        raise ValidationFailed(
            _("This address belongs to a staff account."), fields={"email": [_("Staff accounts cannot be invited.")]}
        )
    if user is not None and CustomerMembership.objects.filter(customer=customer, user=user).exists():
        raise ValidationFailed(
            _("Already a member."), fields={"email": [_("This person already belongs to the team.")]}
        )
    if user is None:
        user = User(username=email[:150], email=email)
        user.set_unusable_password()
        user.save()
    membership = CustomerMembership.objects.create(customer=customer, user=user, role=role)
    inviter = getattr(actor, "email", "") or str(actor or "")
    # Sent by a task once the invitation is saved: a mail server failure is retried there and never
    # undoes (or errors) the invitation.
    transaction.on_commit(lambda: _portal_email_enqueue("customer_invitation_email_task", membership.pk, inviter))
    return membership


@transaction.atomic
def customer_membership_remove(*, customer_id: int, membership_id: int, actor: Any) -> None:
    """An owner removes a teammate. The last owner stays (a customer is never left without one), and
    nobody removes themselves this way."""
    membership = (
        CustomerMembership.objects.select_for_update().filter(pk=membership_id, customer_id=customer_id).first()
    )
    if membership is None:
        raise NotFound("No such team member.")
    if membership.user_id == getattr(actor, "pk", None):
        raise ValidationFailed(_("You cannot remove yourself."), fields={"membership": [_("Ask another owner.")]})
    if membership.role == CustomerMembership.Role.OWNER:
        owners = CustomerMembership.objects.filter(customer_id=customer_id, role=CustomerMembership.Role.OWNER)
        if owners.count() <= 1:
            raise ValidationFailed(
                _("A customer keeps at least one owner."), fields={"membership": [_("The last owner.")]}
            )
    membership.delete()


@transaction.atomic
def customer_membership_language_set(*, membership_id: int, language: str) -> CustomerMembership:
    """The portal language a user picked (for this customer); empty means the customer's."""
    if language and language not in PortalLanguage.values:
        raise ValidationFailed(
            "Unknown language.", fields={"language": [f"Use one of: {', '.join(PortalLanguage.values)}."]}
        )
    membership = CustomerMembership.objects.select_for_update().get(pk=membership_id)
    membership.language = language
    membership.save(update_fields=["language", "updated_at"])
    return membership


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
        raise NotFound("No such membership.")
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
        raise NotFound("No such token.") from None
    token = PortalToken.objects.select_for_update().filter(pk=token_pk, membership_id=membership_id).first()
    if token is None:
        raise NotFound("No such token.")
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
