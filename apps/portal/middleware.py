"""Finds the customer a portal request acts for and speaks that customer user's language.

For `/portal/` and `/api/v1/portal/`, `request.portal_membership` is the signed-in user's membership of
the customer picked in this session (`portal_customer_id`), or of their only customer; None when they
belong to none, or on the portal's pages when they belong to several and have not chosen (the pages
send them to the chooser; the customer API takes the first, or `X-Customer-Id`). The portal's
language is the user's choice for that customer, else the customer's. Other paths (the admin, the
staff API) are left to `LocaleMiddleware`: the staff user's language.
"""

from django.utils import translation

from apps.accounts.selectors import customer_memberships_for_user

SESSION_KEY = "portal_customer_id"
PORTAL_PREFIXES = ("/portal/", "/api/v1/portal/")


def membership_for_request(request, customer_id=None, *, first_of_several=True):
    """The membership the request acts for: of `customer_id`, else of the customer picked in this
    session, else the user's only one. For a user of several customers who has picked none: the
    first (the customer API's documented default), or None with `first_of_several=False` (the
    portal's pages, which send the user to choose)."""
    memberships = customer_memberships_for_user(user=request.user)
    wanted = customer_id if customer_id is not None else request.session.get(SESSION_KEY)
    membership = None
    if wanted is not None:
        try:
            membership = memberships.filter(customer_id=int(wanted)).first()
        except (TypeError, ValueError):
            membership = None
    if membership is not None or first_of_several:
        return membership or memberships.first()
    first_two = list(memberships[:2])
    return first_two[0] if len(first_two) == 1 else None


class PortalMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.portal_membership = None
        if request.path.startswith(PORTAL_PREFIXES) and request.user.is_authenticated:
            # A user of several customers chooses on the portal's pages (never the first by name).
            membership = membership_for_request(request, first_of_several=not request.path.startswith("/portal/"))
            request.portal_membership = membership
            if membership is not None:
                language = membership.portal_language
                translation.activate(language)
                request.LANGUAGE_CODE = translation.get_language()
        response = self.get_response(request)
        if request.portal_membership is not None:
            response.headers.setdefault("Content-Language", request.LANGUAGE_CODE)
        return response
