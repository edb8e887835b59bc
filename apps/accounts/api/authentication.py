"""API-key authentication for the seller's own systems (usage ingestion): `Authorization: Bearer bp_…`."""

from django.contrib.auth.models import AnonymousUser
from django.utils.translation import gettext, gettext_lazy
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.permissions import BasePermission

from apps.accounts.credentials import API_KEY_PREFIX, PORTAL_TOKEN_PREFIX, api_key_authenticate, user_token_authenticate
from apps.accounts.models import ApiKey


class ApiKeyClient(AnonymousUser):
    """The caller behind an API key: not a person, never staff."""

    def __init__(self, api_key: ApiKey) -> None:
        super().__init__()
        self.api_key = api_key

    @property
    def is_authenticated(self) -> bool:  # type: ignore[override]
        return True

    def __str__(self) -> str:
        return str(self.api_key)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace").split()
        if len(header) != 2 or header[0] != self.keyword or not header[1].startswith(API_KEY_PREFIX):
            return None  # not ours: other authentications may try
        api_key = api_key_authenticate(header[1])
        if api_key is None:
            raise exceptions.AuthenticationFailed(gettext("Unknown or revoked API key."))
        return ApiKeyClient(api_key), api_key

    def authenticate_header(self, request) -> str:
        return self.keyword


class HasApiKey(BasePermission):
    message = gettext_lazy("Send an API key: Authorization: Bearer bp_…")

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, ApiKey)


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "apps.accounts.api.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An API key made in the admin (bp_…)."}


class MisplacedCredentialAuthentication(authentication.BaseAuthentication):
    """Last of the staff API's authentications: a credential that is valid somewhere else (an API key,
    a customer API token) or a scheme the staff API does not take gets a 401 that says where it works,
    instead of "credentials were not provided". Another API says what it takes by overriding `refusal`."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace").split()
        if not header:
            return None
        message = self.refusal(header[0], header[1] if len(header) > 1 else "")
        if message:
            raise exceptions.AuthenticationFailed(message)
        return None

    def refusal(self, scheme: str, value: str) -> str | None:
        """Why this credential is refused here (it is valid elsewhere, or its scheme is not taken); None
        lets the request go on unauthenticated (it is then refused for want of credentials, if it must)."""
        if scheme == "Bearer" and value.startswith(API_KEY_PREFIX):
            return gettext(
                "An API key (Bearer bp_…) is for sending usage events (/api/v1/events…); this endpoint takes "
                "a staff user's token: Authorization: Token …"
            )
        if scheme == "Bearer" and value.startswith(PORTAL_TOKEN_PREFIX):
            return gettext(
                "A customer API token (Bearer bpc_…) works only under /api/v1/portal/; this endpoint takes "
                "a staff user's token: Authorization: Token …"
            )
        if scheme not in ("Token", "Bearer"):
            return gettext(
                "The %(scheme)s scheme is not accepted: send Authorization: Token … (a staff user's token)."
            ) % {"scheme": repr(scheme[:20])}
        return None


class MisplacedCredentialAuthenticationScheme(OpenApiAuthenticationExtension):
    """It authenticates nobody (it only explains a refusal): no security scheme in the schema."""

    target_class = "apps.accounts.api.authentication.MisplacedCredentialAuthentication"
    name: list[str] = []

    def get_security_requirement(self, auto_schema):
        return None

    def get_security_definition(self, auto_schema):
        return []


class UserTokenAuthentication(authentication.BaseAuthentication):
    """A user's API token (`Authorization: Token bpu_…`), stored hashed (`UserToken`). It takes the
    place of DRF's own tokens, which were stored in plain text."""

    keyword = "Token"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None  # not ours: other authentications may try
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(gettext("Invalid token header: give one token after Token."))
        token = user_token_authenticate(header[1].decode(errors="replace"))
        if token is None:
            raise exceptions.AuthenticationFailed(gettext("Invalid token."))
        return token.user, token

    def authenticate_header(self, request) -> str:
        return self.keyword


class UserTokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "apps.accounts.api.authentication.UserTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": 'A user\'s API token, made in the admin, after the prefix "Token": '
            "`Authorization: Token bpu_…`.",
        }
