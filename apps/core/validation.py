"""Input checks shared by every app: model validation as field errors, and text and JSON values that
no database column could hold.

PostgreSQL refuses the NUL character in text and JSON (`\\u0000`), and text that is not valid
Unicode — in Python, a string holding an unpaired UTF-16 surrogate (`\\ud800`, which JSON's escapes
can carry) cannot even be encoded to send it. A JSON number like `1e400` becomes an infinite float,
which no column holds either. `text_problem` and `json_problem` find those before anything is stored.
"""

import math
import sys
from dataclasses import dataclass
from enum import StrEnum

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.utils.functional import Promise
from django.utils.translation import gettext, gettext_lazy

from apps.core.errors import ValidationFailed


class Flaw(StrEnum):
    """What makes a value unstorable."""

    NUL = "nul"  # text holding the NUL character
    SURROGATE = "surrogate"  # text holding an unpaired surrogate: not valid Unicode
    NOT_FINITE = "not_finite"  # a number beyond any stored (1e400 reads as infinity)
    INTEGER_TOO_LONG = "integer_too_long"  # an integer Python refuses to write out
    NOT_JSON = "not_json"  # anything that is not a JSON value (a Decimal, a tuple…)
    TOO_DEEP = "too_deep"  # objects and lists nested deeper than allowed


class Part(StrEnum):
    """Which part of the value named is unstorable."""

    VALUE = "value"  # the value itself
    KEY = "key"  # one of the keys of the object it is
    NAME = "name"  # the name of a request parameter


# Each refusal is a whole sentence: naming the value ("name contains …", the error's message), and
# without the name (the message listed under the field).
_SENTENCES: dict[tuple[Part, Flaw], tuple[Promise, Promise]] = {
    (Part.VALUE, Flaw.NUL): (
        gettext_lazy("%(name)s contains the NUL character (\\u0000), which cannot be stored."),
        gettext_lazy("Contains the NUL character (\\u0000), which cannot be stored."),
    ),
    (Part.VALUE, Flaw.SURROGATE): (
        gettext_lazy("%(name)s contains an unpaired surrogate (\\ud800 to \\udfff): it is not valid Unicode text."),
        gettext_lazy("Contains an unpaired surrogate (\\ud800 to \\udfff): it is not valid Unicode text."),
    ),
    (Part.VALUE, Flaw.NOT_FINITE): (
        gettext_lazy("%(name)s is not a finite number (e.g. 1e400 is beyond any number stored)."),
        gettext_lazy("Is not a finite number (e.g. 1e400 is beyond any number stored)."),
    ),
    (Part.VALUE, Flaw.INTEGER_TOO_LONG): (
        gettext_lazy("%(name)s is an integer too long to write as JSON."),
        gettext_lazy("Is an integer too long to write as JSON."),
    ),
    (Part.VALUE, Flaw.NOT_JSON): (
        gettext_lazy("%(name)s is not a JSON value."),
        gettext_lazy("Is not a JSON value."),
    ),
    (Part.VALUE, Flaw.TOO_DEEP): (
        gettext_lazy("%(name)s nests deeper than %(max_depth)s levels."),
        gettext_lazy("Nests deeper than %(max_depth)s levels."),
    ),
    (Part.KEY, Flaw.NUL): (
        gettext_lazy("%(name)s has a key that contains the NUL character (\\u0000), which cannot be stored."),
        gettext_lazy("Has a key that contains the NUL character (\\u0000), which cannot be stored."),
    ),
    (Part.KEY, Flaw.SURROGATE): (
        gettext_lazy(
            "%(name)s has a key that contains an unpaired surrogate (\\ud800 to \\udfff): it is not valid Unicode text."
        ),
        gettext_lazy(
            "Has a key that contains an unpaired surrogate (\\ud800 to \\udfff): it is not valid Unicode text."
        ),
    ),
    (Part.KEY, Flaw.NOT_JSON): (
        gettext_lazy("%(name)s has a key that is not a JSON value."),
        gettext_lazy("Has a key that is not a JSON value."),
    ),
    (Part.NAME, Flaw.NUL): (
        gettext_lazy("%(name)s has a name that contains the NUL character (\\u0000), which cannot be stored."),
        gettext_lazy("Has a name that contains the NUL character (\\u0000), which cannot be stored."),
    ),
    (Part.NAME, Flaw.SURROGATE): (
        gettext_lazy(
            "%(name)s has a name that contains an unpaired surrogate (\\ud800 to \\udfff): it is not valid "
            "Unicode text."
        ),
        gettext_lazy(
            "Has a name that contains an unpaired surrogate (\\ud800 to \\udfff): it is not valid Unicode text."
        ),
    ),
}


@dataclass(frozen=True)
class Unstorable:
    """Why a value cannot be stored, said in the active language: `about(name)` names the value ("name
    contains the NUL character …"), `message()` does not ("Contains the NUL character …")."""

    flaw: Flaw
    part: Part = Part.VALUE
    max_depth: int | None = None  # TOO_DEEP: the levels allowed

    def about(self, name: str) -> str:
        return str(_SENTENCES[self.part, self.flaw][0]) % {"name": name, "max_depth": self.max_depth}

    def message(self) -> str:
        return str(_SENTENCES[self.part, self.flaw][1]) % {"max_depth": self.max_depth}

    def of(self, part: Part) -> "Unstorable":
        """The same flaw, found in another part of the value (a key, a parameter's name)."""
        return Unstorable(self.flaw, part, self.max_depth)


def body_unstorable_message(problem: Unstorable) -> str:
    """The refusal of a request body that is itself unstorable (a bare string holding NUL…)."""
    return problem.about(gettext("The request body"))


def validate_instance(instance: models.Model, *, exclude: list[str] | None = None) -> None:
    """Run the model's field, uniqueness and constraint validation; raise ValidationFailed with
    field-level messages instead of Django's ValidationError."""
    try:
        instance.full_clean(exclude=exclude)
    except DjangoValidationError as exc:
        raise ValidationFailed.from_django(exc) from exc


def text_problem(text: str) -> Unstorable | None:
    """Why `text` cannot be stored, or None."""
    if "\x00" in text:
        return Unstorable(Flaw.NUL)
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            return Unstorable(Flaw.SURROGATE)
    return None


def text_storable(text: str) -> str:
    """`text` with NUL and unpaired surrogates replaced by U+FFFD (to echo refused input back)."""
    if text_problem(text) is None:
        return text
    return "".join("\ufffd" if char == "\x00" or "\ud800" <= char <= "\udfff" else char for char in text)


def json_problem(value: object, *, max_depth: int | None = None) -> tuple[tuple[str | int, ...], Unstorable] | None:
    """The first place in a parsed JSON value that cannot be stored, as (path, why), or None.

    Checks every key and string (`text_problem`), every number (finite floats; integers short enough
    for Python to write, 4,300 digits by default) and, with `max_depth`, how deep objects and lists
    nest (the value itself, if an object or list, is level 1). Anything that is not a JSON value (a
    `Decimal`, a tuple…) is refused.
    """
    stack: list[tuple[object, tuple[str | int, ...], int]] = [(value, (), 1)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return path, problem
        elif isinstance(item, dict):
            if max_depth is not None and depth > max_depth:
                return path, Unstorable(Flaw.TOO_DEEP, max_depth=max_depth)
            for key, child in item.items():
                if not isinstance(key, str):
                    return path, Unstorable(Flaw.NOT_JSON, Part.KEY)
                problem = text_problem(key)
                if problem:
                    return path, problem.of(Part.KEY)
                stack.append((child, (*path, key), depth + 1))
        elif isinstance(item, list):
            if max_depth is not None and depth > max_depth:
                return path, Unstorable(Flaw.TOO_DEEP, max_depth=max_depth)
            stack.extend((child, (*path, index), depth + 1) for index, child in enumerate(item))
        elif isinstance(item, bool) or item is None:
            pass
        elif isinstance(item, float):
            if not math.isfinite(item):
                return path, Unstorable(Flaw.NOT_FINITE)
        elif isinstance(item, int):
            if item.bit_length() > 3 * sys.get_int_max_str_digits() and not _writable(item):
                return path, Unstorable(Flaw.INTEGER_TOO_LONG)
        else:
            return path, Unstorable(Flaw.NOT_JSON)
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
