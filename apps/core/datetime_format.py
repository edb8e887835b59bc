"""How staff screens and event details write a moment (no screen of its own, imports no app)."""

from django.utils.translation import get_language


def staff_datetime(value, *, seconds: bool = False) -> str:
    """A moment as the admin writes it in messages (UTC): "2026-12-07 14:00" in English,
    "2026年12月7日 14:00" in Chinese (the portal's date style)."""
    time = f"{value:%H:%M:%S}" if seconds else f"{value:%H:%M}"
    if (get_language() or "").lower().startswith("zh"):
        return f"{value.year}年{value.month}月{value.day}日 {time}"
    return f"{value:%Y-%m-%d} {time}"
