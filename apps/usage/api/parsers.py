"""JSON parsers of the ingestion endpoints.

Unlike the rest of the API (`apps.core.api.parsers`), they leave text and numbers that cannot be
stored to the ingestion service, which refuses them event by event: one bad event never costs the
others of its batch. A body that is not JSON is a 400 `parse_error`, never a 500.

Python's JSON parser recurses and gives up on values nested some hundreds of levels deep. When a
batch holds such an event, the batch is read again one event at a time: the `events` array is cut
into its elements (a scan that skips strings and counts brackets), each is parsed on its own, and an
element still too deep for the parser is handed to the service as an `UnreadableEvent`, refused alone.
The fast path (the whole body at once) reads a UTF-8 body with orjson (C, and it builds fewer
intermediate objects than Python's parser). Whatever orjson does not read exactly as Python's parser
would — a body it refuses (not JSON, an unpaired surrogate, 1e400, NaN, nested beyond its limit of
1,024 levels), a charset other than UTF-8, or a body holding a run of 19 digits or more (orjson reads
integers beyond 64 bits as floats) — is read by Python's parser, as before: the same data, the same
errors. One difference remains at the edge: an event nested between Python's limit (about 900 levels
under a web server, it depends on the stack) and orjson's is now read, and refused for its properties
nesting deeper than 5 levels instead of as too deep to read (same code, `invalid`).
"""

import re
from typing import Any

import orjson
from django.utils.translation import gettext_lazy
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from apps.core.api.parsers import TOO_DEEP_MESSAGE, JSONParser, json_loads, json_text
from apps.core.errors import ValidationFailed
from apps.usage.services import UnreadableEvent

UNREADABLE_EVENT_REASON = gettext_lazy(
    "The event nests deeper than the JSON parser can read; properties nest at most 5 levels."
)

# JSON's strings (escapes included) and structural characters: enough to find the elements of the
# events array without parsing them. Possessive repeats: no backtracking on long strings.
_TOKENS = re.compile(r'"(?:[^"\\]++|\\.)*+"|[\[\]{},:]')
# 19 digits in a row: maybe an integer beyond 64 bits (or inside a string: read by Python's parser anyway).
# Found by mapping every digit to "0" and anything else to " " (two passes in C, ~20 times faster than
# a regular expression, which tries a match at every byte).
_DIGITS_AS_ZEROS = bytes(ord("0") if chr(byte).isdigit() and byte < 128 else ord(" ") for byte in range(256))
_LONG_DIGITS = b"0" * 19
_NOT_READ = object()


def _fast_loads(stream: Any, parser_context: dict[str, Any] | None) -> tuple[Any, bytes]:
    """(the body parsed by orjson, the body) or (`_NOT_READ`, the body) when Python's parser must read it."""
    body = stream.read()
    encoding = parsers.get_encoding(parser_context or {})
    if encoding.lower().replace("_", "-") not in ("utf-8", "utf8") or _LONG_DIGITS in body.translate(_DIGITS_AS_ZEROS):
        return _NOT_READ, body
    try:
        return orjson.loads(body), body
    except orjson.JSONDecodeError:
        return _NOT_READ, body


class _Body:
    """A body already read, as a stream for `json_text`."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def read(self) -> bytes:
        return self.body


class EventJSONParser(JSONParser):
    """One event: a body too deep to read is a 400 with an error on `event`."""

    def parse(self, stream, media_type=None, parser_context=None):
        data, body = _fast_loads(stream, parser_context)
        if data is not _NOT_READ:
            return data
        try:
            return json_loads(json_text(_Body(body), parser_context))
        except RecursionError as exc:
            reason = str(UNREADABLE_EVENT_REASON)
            raise ValidationFailed(reason, fields={"event": [reason]}) from exc


class EventBatchJSONParser(JSONParser):
    """A batch: an event too deep to read is refused alone (see the module's docstring)."""

    def parse(self, stream, media_type=None, parser_context=None):
        data, body = _fast_loads(stream, parser_context)
        if data is not _NOT_READ:
            return data
        text = json_text(_Body(body), parser_context)
        try:
            return json_loads(text)
        except RecursionError:
            return _batch_event_by_event(text)


def _batch_event_by_event(text: str) -> Any:
    """The batch `{"events": [...], …}` parsed with each event on its own; ParseError when the body is not
    such an object or is not JSON outside of the events too deep to read."""
    split = _events_split(text)
    if split is None:
        raise ParseError(TOO_DEEP_MESSAGE)
    envelope_text, event_texts = split
    try:
        envelope = json_loads(envelope_text)
    except RecursionError as exc:
        raise ParseError(TOO_DEEP_MESSAGE) from exc
    events: list[Any] = []
    for event_text in event_texts:
        try:
            events.append(json_loads(event_text))
        except RecursionError:
            events.append(UnreadableEvent(str(UNREADABLE_EVENT_REASON)))
    envelope["events"] = events
    return envelope


def _events_split(text: str) -> tuple[str, list[str]] | None:
    """(the body with its events array emptied, the text of each element of that array), or None when
    the body is not an object with an `events` array."""
    depth = 0
    key = ""  # the key whose value is being read, at depth 1
    last_string = ""
    events_start = -1  # inside the events array: where its content starts
    events_at: tuple[int, int] | None = None  # where its content starts and ends
    element_start = -1
    elements: list[str] = []
    for token in _TOKENS.finditer(text):
        character = token.group()[0]
        if character == '"':
            if depth == 1:
                last_string = token.group()
        elif character == ":":
            if depth == 1:
                key = last_string
        elif character in "[{":
            depth += 1
            if depth == 2 and character == "[" and events_at is None and events_start < 0 and _is_events(key):
                events_start = element_start = token.end()
        elif character in "]}":
            if depth == 2 and events_start >= 0:
                if elements or text[element_start : token.start()].strip():
                    elements.append(text[element_start : token.start()])
                events_at = (events_start, token.start())
                events_start = -1
            depth -= 1
            if depth < 0:
                return None
        elif character == ",":
            if depth == 2 and events_start >= 0:
                elements.append(text[element_start : token.start()])
                element_start = token.end()
            elif depth == 1:
                key = ""
    if depth != 0 or events_at is None:
        return None
    start, end = events_at
    return text[:start] + text[end:], elements


def _is_events(key: str) -> bool:
    if not key:
        return False
    try:
        return json_loads(key) == "events"
    except (ParseError, RecursionError):
        return False
