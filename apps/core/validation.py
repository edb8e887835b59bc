from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models

from apps.core.errors import ValidationFailed


def validate_instance(instance: models.Model, *, exclude: list[str] | None = None) -> None:
    """Run the model's field, uniqueness and constraint validation; raise ValidationFailed with
    field-level messages instead of Django's ValidationError."""
    try:
        instance.full_clean(exclude=exclude)
    except DjangoValidationError as exc:
        raise ValidationFailed.from_django(exc) from exc
