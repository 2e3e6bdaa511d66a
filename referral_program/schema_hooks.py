"""drf-spectacular post-processing of the OpenAPI schema (SPECTACULAR_SETTINGS).

`blank_strings_any_of`: drf-spectacular describes a string field that may be blank and has
a pattern (or format, or minimum length) as `oneOf: [{…pattern…}, {maxLength: 0}]`. When
the pattern itself accepts the empty string (the code prefix: `^[A-Za-z0-9_-]{0,16}$`), an
empty value matches both branches, and `oneOf` (exactly one) calls it invalid: a client that
validates answers would refuse `"code_prefix": ""`, which the API sends by default. Either
branch is what is meant, so these pairs become `anyOf`. Found by the API fuzzing
(tests/integration/test_api_fuzz.py).
"""

from typing import Any

BLANK = {"type": "string", "maxLength": 0}


def _fix(node: Any) -> None:
    if isinstance(node, dict):
        choices = node.get("oneOf")
        if isinstance(choices, list) and len(choices) == 2 and choices[1] == BLANK:
            node["anyOf"] = node.pop("oneOf")
        for value in node.values():
            _fix(value)
    elif isinstance(node, list):
        for value in node:
            _fix(value)


def blank_strings_any_of(result: dict, generator, request, public) -> dict:
    _fix(result)
    return result
