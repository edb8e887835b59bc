"""OpenAPI generation: drf-spectacular's AutoSchema plus what every endpoint of ours shares."""

from drf_spectacular import openapi
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from apps.core.idempotency import HEADER

IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    name=HEADER,
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "A unique key (1–255 characters) per logical request. Retrying with the same key returns the "
        "first successful response (header `Idempotent-Replayed: true`) without doing the work again; "
        "the same key with a different request is refused with 409 `idempotency_key_reused`."
    ),
)


class AutoSchema(openapi.AutoSchema):
    """Documents the `Idempotency-Key` header on every view method marked `@idempotent`, and the error
    responses every endpoint can give (authentication, permission, limits, an unreachable database)
    where the view does not document them itself."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        from apps.core.api.serializers import ErrorOutputSerializer

        for code in self._implicit_error_statuses():
            if str(code) not in responses:
                response = OpenApiResponse(ErrorOutputSerializer, description=_ERROR_DESCRIPTIONS[code])
                responses[str(code)] = self._get_response_for_code(response, str(code), direction=direction)
        for code in ("429", "503"):
            if code in responses:
                responses[code].setdefault("headers", {})["Retry-After"] = {
                    "schema": {"type": "integer"},
                    "description": "Seconds to wait before retrying.",
                }
        return responses

    def _implicit_error_statuses(self) -> list[int]:
        has_body = self.method in ("POST", "PUT", "PATCH")
        # Every request can be refused with 400: a path or query parameter holding a NUL character or
        # an unpaired surrogate is (apps.core.middleware.UnstorableTextMiddleware), besides bad input.
        statuses = [400]
        if self.get_auth():
            statuses += [401, 403]
        # A path with an id, or a view acting for a customer chosen by a header (the portal API's
        # `X-Customer-Id`), can answer 404.
        if "{" in self.path or getattr(self.view, "answers_not_found", False):
            statuses.append(404)
        if getattr(self._view_handler(), "idempotent", False):
            statuses.append(409)
        if has_body:
            statuses.append(413)
        return [*statuses, 429, 503]

    def get_override_parameters(self):
        parameters = super().get_override_parameters()
        if getattr(self._view_handler(), "idempotent", False):
            parameters = [*parameters, IDEMPOTENCY_KEY_PARAMETER]
        return parameters

    def _view_handler(self):
        action = getattr(self.view, "action", None)
        return getattr(self.view, action or self.method.lower(), None)


_ERROR_DESCRIPTIONS = {
    400: "Invalid input (`invalid`), with messages per field; also any parameter or field holding a NUL character "
    "or an unpaired surrogate, or a body that is not JSON (`parse_error`).",
    401: "Not authenticated.",
    403: "Not staff, or missing the model permission.",
    404: "Not found.",
    409: "Conflict: `invalid_transition`, `not_editable` or `idempotency_key_reused`.",
    402: "The card was declined (`card_declined`, or Stripe's decline code).",
    413: "`request_too_large`: the body is over `API_MAX_REQUEST_BYTES`.",
    429: "`throttled`: over the rate limit; the `Retry-After` header gives the seconds to wait.",
    503: "`service_unavailable`: the database is briefly unreachable (retry after `Retry-After` seconds), or "
    "`stripe_unavailable`: Stripe could not be reached (safe to retry with the same `Idempotency-Key`).",
}


def error_responses(*statuses: int) -> dict:
    """`responses=` entries documenting the error shape for the given statuses."""
    from apps.core.api.serializers import ErrorOutputSerializer

    return {
        status: OpenApiResponse(ErrorOutputSerializer, description=_ERROR_DESCRIPTIONS[status]) for status in statuses
    }
