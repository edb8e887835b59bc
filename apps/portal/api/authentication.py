"""Customer users' personal tokens for the customer API: `Authorization: Bearer bpc_…`.

Made and revoked by the signed-in user in the portal (API tokens page) or through `/api/v1/portal/tokens`
with the portal's session, never with a token (403 `session_required`). A
token authenticates its user for the customer API only (the staff API does not accept it), and acts for
the token's customer only (see `IsCustomerUser`).
"""

from django.utils.translation import gettext
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from apps.accounts.credentials import PORTAL_TOKEN_PREFIX, portal_token_authenticate


class PortalTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace").split()
        if len(header) != 2 or header[0] != self.keyword or not header[1].startswith(PORTAL_TOKEN_PREFIX):
            return None  # not ours: other authentications may try
        token = portal_token_authenticate(header[1])
        if token is None:
            raise exceptions.AuthenticationFailed(gettext("Unknown or revoked token."))
        return token.membership.user, token

    def authenticate_header(self, request) -> str:
        return self.keyword


class PortalTokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "apps.portal.api.authentication.PortalTokenAuthentication"
    name = "customerToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "A customer user's personal token (bpc_…), made in the portal: acts for its customer only. "
                "It cannot make or revoke tokens (that needs the portal's session)."
            ),
        }
