"""The JSON API's one parser (SPEC §6, issue 7 "hostile input").

DRF's JSON parser already refuses invalid UTF-8 and the literals `NaN` and `Infinity`. This
one also answers 400, naming the field, for what would otherwise fail deep inside the
database and answer 500: a NUL character (PostgreSQL text and jsonb cannot hold one), an
unpaired surrogate (not encodable as UTF-8) in any string or field name, or a number too
large for a float (`1e309` reads as infinity, which jsonb cannot hold) — including fields
the serializers ignore, since events keep their whole payload — and nesting deeper than
any event needs (or deep enough to exhaust Python's recursion).
"""

import math
from collections.abc import Mapping
from typing import Any

from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser

# Events are 4 levels deep (order > items > item > field); this leaves room for extras.
MAX_DEPTH = 16
NUL_MESSAGE = "NUL characters are not allowed."
SURROGATE_MESSAGE = "Unpaired surrogate characters are not allowed (the text is not Unicode)."
HUGE_NUMBER_MESSAGE = "This number is too large to be read (write amounts as decimal strings)."


# The field of an event that carries the visitor's rp_ref value, and the most of it an event
# keeps (a real token is about 200 characters).
TOKEN_FIELD = "tracking_token"
TOKEN_KEPT_LENGTH = 4096


def token_kept(value: Any) -> str:
    """The tracking token as an event keeps it. A shop passes the visitor's cookie on as it
    is, and a garbage cookie must never cost the merchant the event (SPEC §4: a forged value
    counts as no cookie): text is cut to TOKEN_KEPT_LENGTH characters, with what a database
    cannot hold (NUL, unpaired surrogates) replaced; anything that is not text is no token.
    Such a value never decodes to a click, so attribution goes on to its next source."""
    if not isinstance(value, str):
        return ""
    kept = value[:TOKEN_KEPT_LENGTH].replace("\x00", "\ufffd")
    return kept.encode("utf-8", "replace").decode("utf-8").strip()


def with_token_kept(data: Any) -> Any:
    """An event document with its tracking token as `token_kept` keeps it."""
    if isinstance(data, Mapping) and TOKEN_FIELD in data:
        value = data[TOKEN_FIELD]
        kept = token_kept(value)
        if kept != value:
            return {**data, TOKEN_FIELD: kept}
    return data


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return NUL_MESSAGE
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATE_MESSAGE
    return None


def _printable(name: str) -> str:
    """A field name that can be shown and logged whatever it holds."""
    return name.encode("unicode_escape").decode("ascii")


def _put(errors: dict, path: tuple[str, ...], message: str) -> None:
    node = errors
    for name in path[:-1]:
        child = node.setdefault(name, {})
        if not isinstance(child, dict):  # a message is already there; keep the first
            return
        node = child
    node.setdefault(path[-1], [message])


def document_errors(data: Any) -> dict | str | None:
    """Where the document breaks the rules above: field errors shaped like a serializer's
    (list positions as "0", "1"...), a message for nesting, or None."""
    errors: dict = {}
    stack: list[tuple[Any, tuple[str, ...], int]] = [(data, (), 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, dict | list) and depth > MAX_DEPTH:
            return f"JSON nested more than {MAX_DEPTH} levels deep."
        if isinstance(value, dict):
            for key, item in value.items():
                problem = _text_problem(key)
                if problem:
                    _put(errors, (*path, _printable(key)), f"In this field's name: {problem}")
                    continue
                stack.append((item, (*path, key), depth + 1))
        elif isinstance(value, list):
            for position, item in enumerate(value):
                stack.append((item, (*path, str(position)), depth + 1))
        elif isinstance(value, str):
            problem = _text_problem(value)
            if problem:
                _put(errors, path or ("non_field_errors",), problem)
        elif isinstance(value, float) and not math.isfinite(value):  # 1e309 reads as inf
            _put(errors, path or ("non_field_errors",), HUGE_NUMBER_MESSAGE)
    return errors or None


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON nested more than {MAX_DEPTH} levels deep.") from None
        data = with_token_kept(data)
        errors = document_errors(data)
        if isinstance(errors, str):
            raise ParseError(errors)
        if errors:
            raise ValidationError(errors)
        return data
