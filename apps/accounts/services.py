import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from apps.core import clock
from apps.core.errors import NotFound, ValidationFailed
from apps.core.validation import validate_instance

from .constants import CollectionMethod
from .models import ApiKey, BillingContact, Customer, CustomerMembership, TestClock
from .tax_ids import InvalidTaxId, tax_id_check, tax_id_type_fits_country

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
        raise ValidationFailed("The tax ID is not valid.", fields=tax_id_errors)


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
            errors[f"billing_contacts.{index}.email"] = ["This field is required."]
        elif email.lower() in seen:
            errors[f"billing_contacts.{index}.email"] = [f"Already listed (contact {seen[email.lower()]})."]
        else:
            seen[email.lower()] = index
    if errors:
        raise ValidationFailed("Some billing contacts are invalid.", fields=errors)
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
                "Some billing contacts are invalid.",
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
    membership, _ = CustomerMembership.objects.update_or_create(customer=customer, user=user, defaults={"role": role})
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
    now = now or clock.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > timedelta(minutes=1):
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    return api_key
