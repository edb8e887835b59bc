"""Dates in the admin's own templates, in the staff user's language: "2026-12-07 14:05" in English,
"2026年12月7日 14:05" in Chinese (UTC, as every admin page says)."""

from datetime import UTC, date, datetime

from django import template

from apps.core.admin import staff_date as _staff_date
from apps.core.admin import staff_datetime as _staff_datetime

register = template.Library()


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo is not None else value


@register.filter
def staff_datetime(value: datetime | None) -> str:
    return _staff_datetime(_utc(value)) if isinstance(value, datetime) else ""


@register.filter
def staff_date(value: date | datetime | None) -> str:
    if isinstance(value, datetime):
        return _staff_date(_utc(value))
    return _staff_date(value) if isinstance(value, date) else ""
