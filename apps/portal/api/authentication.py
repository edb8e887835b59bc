"""Customer users' personal tokens for the customer API: `Authorization: Bearer bpc_…`.

Made and revoked by the signed-in user in the portal (API tokens page) or through `/api/v1/portal/tokens`
with the portal's session, never with a token (403 `session_required`). A
token authenticates its user for the customer API only (the staff API does not accept it), and acts for
the token's customer only (see `IsCustomerUser`).
"""

from django.utils.translation import gettext
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from apps.accounts.api.authentication import MisplacedCredentialAuthentication
from apps.accounts.credentials import API_KEY_PREFIX, PORTAL_TOKEN_PREFIX, portal_token_authenticate


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


class PortalMisplacedCredentialAuthentication(MisplacedCredentialAuthentication):
    """Last of the customer API's authentications: an API key (valid for usage events only) or a scheme
    the customer API does not take gets a 401 that says what it takes, instead of "credentials were not
    provided" (as on the staff API)."""

    def refusal(self, scheme: str, value: str) -> str | None:
        if scheme == "Bearer" and value.startswith(API_KEY_PREFIX):
            return gettext(
                "An API key (Bearer bp_…) is for sending usage events (/api/v1/events…); this endpoint takes "
                "a customer user's token: Authorization: Bearer bpc_…"
            )
        if scheme not in ("Token", "Bearer"):
            return gettext(
                "The %(scheme)s scheme is not accepted: send Authorization: Bearer bpc_… (a customer user's token)."
            ) % {"scheme": repr(scheme[:20])}
        return None


class PortalMisplacedCredentialAuthenticationScheme(OpenApiAuthenticationExtension):
    """It authenticates nobody (it only explains a refusal): no security scheme in the schema."""

    target_class = "apps.portal.api.authentication.PortalMisplacedCredentialAuthentication"
    name: list[str] = []

    def get_security_requirement(self, auto_schema):
        return None

    def get_security_definition(self, auto_schema):
        return []
