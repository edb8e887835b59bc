from datetime import datetime

from django.db import transaction

from apps.core import clock
from apps.core.errors import NotFound, ValidationFailed
from apps.core.validation import validate_instance

from .models import Customer, CustomerMembership, TestClock

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
    "payment_terms_days",
)


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
    payment_terms_days: int | None = None,
    test_clock: TestClock | None = None,
) -> Customer:
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
        tax_id=tax_id,
        payment_terms_days=payment_terms_days,
    )
    validate_instance(customer)
    customer.save()
    return customer


@transaction.atomic
def customer_update(*, customer_id: int, **changes) -> Customer:
    """Change a customer's details. The billing currency is fixed once the customer exists."""
    customer = Customer.objects.select_for_update().filter(pk=customer_id).first()
    if customer is None:
        raise NotFound(f"Customer {customer_id} does not exist.")
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
    for name, value in changes.items():
        setattr(customer, name, value)
    validate_instance(customer)
    customer.save(update_fields=[*changes, "updated_at"])
    return customer


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
