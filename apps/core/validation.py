"""Input checks shared by every app: model validation as field errors, and text and JSON values that
no database column could hold.

PostgreSQL refuses the NUL character in text and JSON (`\\u0000`), and text that is not valid
Unicode — in Python, a string holding an unpaired UTF-16 surrogate (`\\ud800`, which JSON's escapes
can carry) cannot even be encoded to send it. A JSON number like `1e400` becomes an infinite float,
which no column holds either. `text_problem` and `json_problem` find those before anything is stored.
"""

import math
import sys

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models

from apps.core.errors import ValidationFailed

NUL_MESSAGE = "contains the NUL character (\\u0000), which cannot be stored."
SURROGATE_MESSAGE = "contains an unpaired surrogate (\\ud800 to \\udfff): it is not valid Unicode text."
NUMBER_NOT_FINITE_MESSAGE = "is not a finite number (e.g. 1e400 is beyond any number stored)."
INTEGER_TOO_LONG_MESSAGE = "is an integer too long to write as JSON."
NOT_JSON_MESSAGE = "is not a JSON value."


def validate_instance(instance: models.Model, *, exclude: list[str] | None = None) -> None:
    """Run the model's field, uniqueness and constraint validation; raise ValidationFailed with
    field-level messages instead of Django's ValidationError."""
    try:
        instance.full_clean(exclude=exclude)
    except DjangoValidationError as exc:
        raise ValidationFailed.from_django(exc) from exc


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored (to follow the field's name: "name contains …"), or None."""
    if "\x00" in text:
        return NUL_MESSAGE
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            return SURROGATE_MESSAGE
    return None


def text_storable(text: str) -> str:
    """`text` with NUL and unpaired surrogates replaced by U+FFFD (to echo refused input back)."""
    if text_problem(text) is None:
        return text
    return "".join("\ufffd" if char == "\x00" or "\ud800" <= char <= "\udfff" else char for char in text)


def json_problem(value: object, *, max_depth: int | None = None) -> tuple[tuple[str | int, ...], str] | None:
    """The first place in a parsed JSON value that cannot be stored, as (path, message), or None.

    Checks every key and string (`text_problem`), every number (finite floats; integers short enough
    for Python to write, 4,300 digits by default) and, with `max_depth`, how deep objects and lists
    nest (the value itself, if an object or list, is level 1). Anything that is not a JSON value (a
    `Decimal`, a tuple…) is refused.
    """
    stack: list[tuple[object, tuple[str | int, ...], int]] = [(value, (), 1)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            message = text_problem(item)
            if message:
                return path, message
        elif isinstance(item, dict):
            if max_depth is not None and depth > max_depth:
                return path, f"nests deeper than {max_depth} levels."
            for key, child in item.items():
                if not isinstance(key, str):
                    return path, f"has a key that {NOT_JSON_MESSAGE}"
                message = text_problem(key)
                if message:
                    return path, f"has a key that {message}"
                stack.append((child, (*path, key), depth + 1))
        elif isinstance(item, list):
            if max_depth is not None and depth > max_depth:
                return path, f"nests deeper than {max_depth} levels."
            stack.extend((child, (*path, index), depth + 1) for index, child in enumerate(item))
        elif isinstance(item, bool) or item is None:
            pass
        elif isinstance(item, float):
            if not math.isfinite(item):
                return path, NUMBER_NOT_FINITE_MESSAGE
        elif isinstance(item, int):
            if item.bit_length() > 3 * sys.get_int_max_str_digits() and not _writable(item):
                return path, INTEGER_TOO_LONG_MESSAGE
        else:
            return path, NOT_JSON_MESSAGE
    return None


def _writable(number: int) -> bool:
    try:
        str(number)
    except ValueError:
        return False
    return True


def json_path(path: tuple[str | int, ...], *, prefix: str = "") -> str:
    """("a", 0, "b") → "a.0.b" (the API's field names for nested values), after `prefix`."""
    return ".".join([prefix, *map(str, path)] if prefix else map(str, path))
