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
    """Documents the `Idempotency-Key` header on every view method marked `@idempotent`."""

    def get_override_parameters(self):
        parameters = super().get_override_parameters()
        if getattr(self._view_handler(), "idempotent", False):
            parameters = [*parameters, IDEMPOTENCY_KEY_PARAMETER]
        return parameters

    def _view_handler(self):
        action = getattr(self.view, "action", None)
        return getattr(self.view, action or self.method.lower(), None)


_ERROR_DESCRIPTIONS = {
    400: "Invalid input (`invalid`), with messages per field.",
    401: "Not authenticated.",
    403: "Not staff, or missing the model permission.",
    404: "Not found.",
    409: "Conflict: `invalid_transition`, `not_editable` or `idempotency_key_reused`.",
    402: "The card was declined (`card_declined`, or Stripe's decline code).",
    503: "Stripe could not be reached (`stripe_unavailable`): safe to retry with the same `Idempotency-Key`.",
}


def error_responses(*statuses: int) -> dict:
    """`responses=` entries documenting the error shape for the given statuses."""
    from apps.core.api.serializers import ErrorOutputSerializer

    return {
        status: OpenApiResponse(ErrorOutputSerializer, description=_ERROR_DESCRIPTIONS[status]) for status in statuses
    }
