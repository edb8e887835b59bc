"""What a staff user's role lets them write, beyond Django's per-model permissions.

Model permissions say who may change a customer at all; some of a customer's fields are money
actions (docs/roles.md: Support "corrects a customer's details … no money actions") and need
`accounts.change_customer_billing` too. The services check them for the actor they are given (the
API and the admin pass the signed-in staff user), so every screen is held to the same rule.
"""

from collections.abc import Iterable
from typing import Any

from django.utils.translation import gettext as _

from apps.core.errors import PermissionRefused

CUSTOMER_BILLING_PERMISSION = "accounts.change_customer_billing"

# A customer's fields that decide what it is billed and how it pays, or which usage is its own
# (the external ID usage events name): a money action to change. Its card on file is one too
# (`CUSTOMER_BILLING_PERMISSION` guards the cards API).
CUSTOMER_BILLING_FIELDS = (
    "external_id",
    "tax_exempt",
    "payment_terms_days",
    "invoice_grouping",
    "collection_method",
    "time_zone",  # the hours of peak and off-peak prices are counted in it
)


def customer_fields_refused(*, actor: Any, fields: Iterable[str]) -> list[str]:
    """The fields among `fields` that `actor` may not change on an existing customer (none for a
    system call without an actor, or a user holding the billing permission)."""
    if actor is None or actor.has_perm(CUSTOMER_BILLING_PERMISSION):
        return []
    return [name for name in fields if name in CUSTOMER_BILLING_FIELDS]


def customer_fields_check(*, actor: Any, fields: Iterable[str]) -> None:
    """Refuse (403 `permission_denied`, one error per field) a change of fields the actor's role may not
    make. Nothing is changed."""
    refused = customer_fields_refused(actor=actor, fields=fields)
    if refused:
        raise PermissionRefused(
            _("Your role may not change a customer's billing terms."),
            fields={name: [_("Changing this is a money action your role does not have.")] for name in refused},
        )
