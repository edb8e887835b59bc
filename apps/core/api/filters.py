"""The API's filter backend: django-filter, refusing values it would otherwise ignore.

django-filter skips a filter whose value it cannot read (`?is_archived=maybe`, `?issued_at_before=`),
so a typo silently returns everything. Here a boolean filter takes only `true`/`false`, a number
filter on an id only a whole number, a date and time only a real UTC offset, and a typed filter (boolean,
choice, number, date) no empty value: anything else is 400 with the filter named, like any other bad input.
"""

from datetime import datetime, timedelta

import django_filters
from django.db import models
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError

_TYPED_FILTERS = (
    django_filters.BooleanFilter,
    django_filters.ChoiceFilter,
    django_filters.NumberFilter,
    django_filters.DateFilter,
    django_filters.DateTimeFilter,
    django_filters.IsoDateTimeFilter,
)
# Real time zones are within ±14:00 (PostgreSQL refuses offsets past ±15:59 with a server error).
MAX_UTC_OFFSET = timedelta(hours=14)
_INTEGER_FIELDS = (models.IntegerField, models.AutoField, models.ForeignKey, models.ManyToManyField)


def _is_integer_filter(filter_, model) -> bool:
    if not isinstance(filter_, django_filters.NumberFilter) or model is None:
        return False
    field = model
    try:
        for name in filter_.field_name.split("__"):
            model_field = field._meta.get_field(name)
            field = model_field.related_model or field
    except Exception:  # noqa: BLE001 - not a model field path: no type to enforce
        return False
    return isinstance(model_field, _INTEGER_FIELDS) or (
        model_field.is_relation and isinstance(model_field.target_field, _INTEGER_FIELDS)
    )


class StrictFilterBackend(DjangoFilterBackend):
    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        if filterset is None:
            return None
        errors: dict[str, list[str]] = {}
        for name, filter_ in filterset.filters.items():
            if name not in request.query_params:
                continue
            value = request.query_params.get(name, "")
            if isinstance(filter_, _TYPED_FILTERS) and value == "":
                errors[name] = ["Give a value, or leave the filter out."]
            elif isinstance(filter_, django_filters.BooleanFilter) and value not in ("true", "false"):
                errors[name] = ["Give true or false."]
            elif _is_integer_filter(filter_, filterset._meta.model) and not (
                value.isascii() and value.lstrip("-").isdigit()
            ):
                errors[name] = ["Give a whole number (an id)."]
        if not errors and filterset.form.is_valid():
            for name, value in filterset.form.cleaned_data.items():
                offset = value.utcoffset() if isinstance(value, datetime) else None
                if offset is not None and abs(offset) > MAX_UTC_OFFSET:
                    errors[name] = ["Give a UTC offset between -14:00 and +14:00."]
        if errors:
            raise ValidationError(errors)
        return filterset
