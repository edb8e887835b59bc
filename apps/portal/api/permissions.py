from django.utils.translation import gettext, gettext_lazy
from rest_framework.permissions import BasePermission

from apps.accounts.constants import PORTAL_ROLE_ACTIONS
from apps.accounts.models import PortalToken
from apps.accounts.selectors import customer_membership_for_user, customer_memberships_for_user
from apps.core.errors import NotFound

CUSTOMER_HEADER = "X-Customer-Id"


class IsCustomerUser(BasePermission):
    """A signed-in (session or token) user of a customer, whose role allows the view's action.

    With a personal token (`PortalToken`), the customer is the token's (another `X-Customer-Id` is 404).
    Otherwise the customer is the one named by the `X-Customer-Id` header (404 if the user does not belong to
    it), else the one picked in the portal session, else the user's first. Sets `view.membership`.
    """

    message = gettext_lazy("This account does not belong to a customer, or its role does not allow this.")

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        wanted = request.headers.get(CUSTOMER_HEADER)
        if isinstance(request.auth, PortalToken):
            # A personal token acts for its own customer only, with the member's current role.
            membership = request.auth.membership
            if wanted is not None and str(wanted).strip() != str(membership.customer_id):
                raise NotFound(gettext("No such customer."))
        elif wanted is not None:
            membership = customer_membership_for_user(user=user, customer_id=wanted)
        else:
            from apps.portal.middleware import membership_for_request

            membership = membership_for_request(request._request) if customer_memberships_for_user(user=user) else None
        if membership is None:
            return False
        view.membership = membership
        required = getattr(view, "action_roles", {}).get(getattr(view, "action", None), "read")
        return required in PORTAL_ROLE_ACTIONS.get(membership.role, frozenset())
