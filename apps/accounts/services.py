import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext as _

from apps.core import clock
from apps.core.errors import NotFound, ValidationFailed
from apps.core.queue import enqueue
from apps.core.validation import validate_instance

from .constants import CollectionMethod, PortalLanguage
from .models import BillingContact, Customer, CustomerMembership, SimulatedClock, StaffPreference
from .permissions import customer_fields_check
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
    "time_zone",
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
    time_zone: str = "UTC",
    test_clock: SimulatedClock | None = None,
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
        time_zone=time_zone,
    )
    tax_id_errors = _customer_tax_id_apply(customer, tax_id=tax_id, tax_id_type=tax_id_type)
    _customer_validate(customer, tax_id_errors=tax_id_errors)
    customer.save()
    if billing_contacts:
        customer_billing_contacts_replace(customer=customer, contacts=billing_contacts)
    return customer


@transaction.atomic
def customer_update(*, customer_id: int, actor: Any = None, **changes) -> Customer:
    """Change a customer's details. The billing currency is fixed once the customer exists. The tax
    ID is checked again when it, its kind or the country changes. `billing_contacts`, when given,
    replaces the whole list (see `customer_billing_contacts_replace`). A staff `actor` may change the
    billing terms only with the billing permission (`apps.accounts.permissions`); sending a field's
    current value back is no change."""
    customer = Customer.objects.select_for_update().filter(pk=customer_id).first()
    if customer is None:
        raise NotFound(gettext("Customer %(customer_id)s does not exist.") % {"customer_id": customer_id})
    billing_contacts = changes.pop("billing_contacts", None)
    customer_fields_check(
        actor=actor,
        fields=[name for name, value in changes.items() if getattr(customer, name, object()) != value],
    )
    if changes.get("currency", customer.currency) == customer.currency:
        changes.pop("currency", None)  # sending the unchanged currency back is fine
    unknown = set(changes) - set(CUSTOMER_EDITABLE_FIELDS)
    if "currency" in unknown:
        raise ValidationFailed(
            gettext("The billing currency cannot be changed."),
            fields={"currency": [gettext("The billing currency cannot be changed once the customer exists.")]},
        )
    if unknown:
        raise ValidationFailed(gettext("Unknown fields: %(unknown)s.") % {"unknown": ", ".join(sorted(unknown))})
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
def simulated_clock_create(*, name: str, frozen_at: datetime | None = None) -> SimulatedClock:
    """A test clock starting at `frozen_at` (default: now)."""
    test_clock = SimulatedClock(name=name, frozen_at=clock.ensure_aware(frozen_at or clock.now()))
    validate_instance(test_clock)
    test_clock.save()
    return test_clock


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
        raise ValidationFailed(gettext("Unknown fields: %(unknown)s.") % {"unknown": ", ".join(sorted(unknown))})
    contacts = None
    if billing_emails is not None:
        customer = Customer.objects.filter(pk=customer_id).first()
        if customer is None:
            raise NotFound(gettext("Customer %(customer_id)s does not exist.") % {"customer_id": customer_id})
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


def portal_url(path: str) -> str:
    """An absolute address in the portal, for links in emails."""
    return settings.PORTAL_BASE_URL.rstrip("/") + path


def portal_email_send(*, template: str, to: str, language: str, context: dict[str, Any]) -> None:
    with translation.override(language):
        subject = render_to_string(f"accounts/email/{template}_subject.txt", context).strip()
        body = render_to_string(f"accounts/email/{template}.txt", context)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to])


def portal_email_enqueue(task: Any, *args: Any) -> None:
    """Queue a portal email task (the `email` queue), whatever the app that defines it."""
    enqueue(task, *args)


@transaction.atomic
def customer_membership_remove(*, customer_id: int, membership_id: int, actor: Any) -> None:
    """An owner removes a teammate. The last owner stays (a customer is never left without one), and
    nobody removes themselves this way."""
    membership = (
        CustomerMembership.objects.select_for_update().filter(pk=membership_id, customer_id=customer_id).first()
    )
    if membership is None:
        raise NotFound(gettext("No such team member."))
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
            gettext("Unknown language."),
            fields={"language": [gettext("Use one of: %(values)s.") % {"values": ", ".join(PortalLanguage.values)}]},
        )
    membership = CustomerMembership.objects.select_for_update().get(pk=membership_id)
    membership.language = language
    membership.save(update_fields=["language", "updated_at"])
    return membership


@transaction.atomic
def staff_language_set(*, user: Any, language: str) -> StaffPreference:
    """The language the admin speaks to a staff user (English or Simplified Chinese), whatever their
    browser asks for."""
    if not getattr(user, "is_staff", False):
        raise ValidationFailed(_("Only staff users choose the admin's language."), fields={})
    if language not in PortalLanguage.values:
        raise ValidationFailed(
            _("Unknown language."),
            fields={"language": [_("Use one of: %(languages)s.") % {"languages": ", ".join(PortalLanguage.values)}]},
        )
    preference, _created = StaffPreference.objects.update_or_create(user=user, defaults={"language": language})
    return preference
