"""The API's JSON parser: DRF's, made safe for the database (docs/security.md, "Text and numbers no
database can hold").

- A body nested deeper than Python's JSON parser can go (it recurses) is a 400 `parse_error`, like
  any body that is not JSON, instead of a server error.
- Text that PostgreSQL cannot store — the NUL character, unpaired surrogates (`"\\ud800"`) — and
  numbers no column holds (`1e400` reads as infinity) are refused with a 400 naming the field
  (`{"fields": {"billing_contacts.0.name": [...]}}`), wherever they are in the body, before any
  serializer or query sees them.

The usage ingestion endpoints parse with their own parsers (`apps/usage/api/parsers.py`): they refuse
such values event by event instead of the whole batch.
"""

import json
from typing import Any

from django.utils.translation import gettext, gettext_lazy
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils.json import strict_constant

from apps.core.errors import ValidationFailed
from apps.core.validation import body_unstorable_message, json_path, json_problem

TOO_DEEP_MESSAGE = gettext_lazy("JSON parse error - the body nests deeper than the parser can read.")


def json_text(stream: Any, parser_context: dict[str, Any] | None) -> str:
    """The request body as text, in the request's charset (DRF's rules)."""
    encoding = parsers.get_encoding(parser_context or {})
    try:
        return stream.read().decode(encoding)
    except UnicodeDecodeError as exc:
        raise ParseError(gettext("JSON parse error - %(detail)s") % {"detail": exc}) from exc


def json_loads(text: str) -> Any:
    """`text` parsed as strict JSON (no NaN or Infinity literals); RecursionError when it nests deeper
    than the parser can read, ParseError when it is not JSON."""
    try:
        return json.loads(text, parse_constant=strict_constant)
    except RecursionError:
        raise
    except ValueError as exc:
        raise ParseError(gettext("JSON parse error - %(detail)s") % {"detail": exc}) from exc


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = json_loads(json_text(stream, parser_context))
        except RecursionError as exc:
            raise ParseError(TOO_DEEP_MESSAGE) from exc
        found = json_problem(data)
        if found is not None:
            path, problem = found
            if not path:
                raise ValidationFailed(body_unstorable_message(problem))
            field = json_path(path)
            raise ValidationFailed(problem.about(field), fields={field: [problem.message()]})
        return data
