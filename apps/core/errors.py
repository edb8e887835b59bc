"""The application error tree. Services raise these; the API and the admin turn them into a
`{"code", "message", "fields"}` response or a form error."""

from django.core.exceptions import ValidationError as DjangoValidationError


class ApplicationError(Exception):
    code = "application_error"
    http_status = 400

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        if code:
            self.code = code

    @classmethod
    def from_django(cls, exc: DjangoValidationError, message: str = "Invalid input.") -> "ApplicationError":
        if hasattr(exc, "error_dict"):
            fields = {name: [str(m) for m in msgs] for name, msgs in exc.message_dict.items()}
            non_field = fields.pop("__all__", [])
            return cls(" ".join(non_field) or message, fields=fields)
        return cls(" ".join(str(m) for m in exc.messages) or message)


class ValidationFailed(ApplicationError):
    code = "invalid"
    http_status = 400


class NotFound(ApplicationError):
    code = "not_found"
    http_status = 404


class PermissionRefused(ApplicationError):
    """The actor's role does not allow this (e.g. a field of a write it may otherwise make)."""

    code = "permission_denied"
    http_status = 403


class InvalidTransition(ApplicationError):
    code = "invalid_transition"
    http_status = 409


class NotEditable(ApplicationError):
    code = "not_editable"
    http_status = 409


class Conflict(ApplicationError):
    code = "conflict"
    http_status = 409
