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


# --- The answers every operation can give, besides its own (issue 15) ---------------------
#
# drf-spectacular documents the success answers only. A client generated from the schema
# should know the rest, so each operation also declares, with the JSON body each has:
# 400 (bad input: the errors per field, or `detail`; any operation, since a NUL character
# in the address is refused everywhere), 401 (no valid key), 403 (a session without the
# right), 404 (an operation with a path parameter: no such object), 413 and 415 (an
# operation with a body: too large, not JSON) and 503 (the database is away: send again).
# Found by `schemathesis run --checks all` (docs/reliability.md).
#
# And 414 on every operation: a request line over gunicorn's `limit_request_line` (4094
# bytes: a long query string or path) is answered by gunicorn before the app, with its own
# HTML page; the app never sees it, but a client can get it, so it is declared as it is.

ERRORS = {
    "type": "object",
    "description": "The errors per field (a list of messages, or the errors of a nested "
    "object), or `detail` for the request as a whole.",
    "additionalProperties": True,
}
DETAIL = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": True,
}
ANSWERS = {
    "400": ("Bad input: nothing was written.", "Errors"),
    "401": ("No valid API key (or session).", "Detail"),
    "403": ("The session lacks the right to do this.", "Detail"),
    "404": ("No such object.", "Errors"),
    "413": ("The body is larger than the limit (4 MiB).", "Detail"),
    "415": ("The body is not JSON.", "Detail"),
    "503": ("The database is unavailable: send the same request again shortly.", "Detail"),
}
TOO_LONG = {
    "description": "The address is longer than the server reads (4094 bytes for the "
    "request line): the web server's HTML page, sent before the API sees the request.",
    "content": {"text/html": {"schema": {"type": "string"}}},
}
# The address may hold anything but a NUL character (refused with a 400 everywhere).
NO_NUL = "^[^\\u0000]*$"
BIGINT = 2**63 - 1  # ids are PostgreSQL bigints


def _answers_of(path: str, operation: dict) -> list[str]:
    codes = ["400", "401", "403"]
    if "{" in path:
        codes.append("404")
    if "requestBody" in operation:
        codes += ["413", "415"]
    return [*codes, "503"]


def error_answers(result: dict, generator, request, public) -> dict:
    """Declares the error answers of every operation (above), and of the parameters given
    in the address: none may hold a NUL character, an empty choice is no filter (as
    django-filter reads it), an id is a bigint (and positive in a path)."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Errors", ERRORS)
    schemas.setdefault("Detail", DETAIL)
    for path, methods in result.get("paths", {}).items():
        for operation in methods.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            # Also an error a view declares without its body (the refund's 404).
            declared = [
                c for c in responses if c in ANSWERS and c not in _answers_of(path, operation)
            ]
            for code in [*_answers_of(path, operation), *declared]:
                if "content" in responses.get(code, {}):
                    continue
                description, component = ANSWERS[code]
                given = responses.get(code, {}).get("description", "")
                responses[code] = {
                    "description": given if given and given != "No response body" else description,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": f"#/components/schemas/{component}"}
                        }
                    },
                }
            responses.setdefault("414", TOO_LONG)
            for parameter in operation.get("parameters", []):
                _parameter(parameter, parameter.get("schema", {}))
    return result


def _parameter(parameter: dict, schema: dict) -> None:
    if schema.get("type") == "string":
        if "enum" in schema:
            if parameter.get("in") == "query" and "" not in schema["enum"]:
                schema["enum"] = [*schema["enum"], ""]
        elif "pattern" not in schema and "format" not in schema and "anyOf" not in schema:
            schema["pattern"] = NO_NUL
    elif schema.get("type") == "integer" and parameter.get("name") not in {"limit", "offset"}:
        if parameter.get("in") == "path":
            schema.setdefault("minimum", 1)
        schema.setdefault("maximum", BIGINT)
