from datetime import datetime

from django.db.models import F, QuerySet
from django.utils.translation import gettext

from apps.core import clock
from apps.core.errors import NotFound

from .models import Customer, CustomerMembership, PortalToken, SimulatedClock, StaffPreference


def customer_list() -> QuerySet[Customer]:
    """Every customer (staff scope), with its billing contacts."""
    return Customer.objects.prefetch_related("billing_contacts")


def customer_invoice_recipients(customer: Customer) -> list[str]:
    """Where the customer's bills are emailed: its own email, then each billing contact that receives
    invoices, in the order they were added, each address once (compared without case)."""
    contacts = customer.billing_contacts.filter(receives_invoices=True).order_by("id")
    recipients: list[str] = []
    for email in [customer.email, *(contact.email for contact in contacts)]:
        if email and email.lower() not in {known.lower() for known in recipients}:
            recipients.append(email)
    return recipients


def customer_now(customer: Customer) -> datetime:
    """The current time for a customer: its test clock's time if it has one, else the real clock's."""
    if customer.test_clock_id is not None:
        return SimulatedClock.objects.values_list("frozen_at", flat=True).get(pk=customer.test_clock_id)
    return clock.now()


def simulated_clock_list():
    return SimulatedClock.objects.all()


def customer_memberships_for_user(*, user) -> QuerySet[CustomerMembership]:
    """The customers a portal user may act for (none for an anonymous user), by customer name."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return CustomerMembership.objects.none()
    return CustomerMembership.objects.filter(user=user).select_related("customer").order_by("customer__name", "id")


def customer_membership_for_user(*, user, customer_id: int | str | None) -> CustomerMembership:
    """The user's membership of that customer; `NotFound` (never a hint that the customer exists) when
    the user does not belong to it."""
    try:
        customer_pk = int(customer_id)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise NotFound(gettext("No such customer.")) from None
    if not 0 < customer_pk < 2**63:  # no row has it; SQLite cannot even bind a larger number
        raise NotFound(gettext("No such customer."))
    membership = customer_memberships_for_user(user=user).filter(customer_id=customer_pk).first()
    if membership is None:
        raise NotFound(gettext("No such customer."))
    return membership


def customer_team_list(*, customer_id: int) -> QuerySet[CustomerMembership]:
    """The portal users of one customer, owners first."""
    return (
        CustomerMembership.objects.filter(customer_id=customer_id)
        .select_related("user")
        .order_by("role", "user__email", "id")
    )


def portal_token_list_for_membership(*, membership_id: int) -> QuerySet[PortalToken]:
    """A member's own customer API tokens for that customer (active ones first, then the revoked)."""
    return PortalToken.objects.filter(membership_id=membership_id).order_by(
        F("revoked_at").asc(nulls_first=True), "-created_at", "-id"
    )


def staff_language_for_user(*, user) -> str | None:
    """The admin language a staff user chose, or None when they have not chosen (their browser's then)."""
    if not getattr(user, "is_staff", False):
        return None
    return StaffPreference.objects.filter(user=user).values_list("language", flat=True).first()
