"""The events' OpenAPI schema, written from the rules that validate them.

Each event field is declared once, in `commissions.validation` (the API's serializers and
the bulk importer validate with it). `record_schema` turns those declarations into JSON
Schema: the type, whether it is required or may be null, its limits (lengths, bounds, the
number of items, the pattern an id or amount must match) and its description; the
`EventRecords` extension hands it to drf-spectacular for every serializer that validates by
a record (`EventRulesMixin`), and nested records (`Contact`, `Item`) become components of
their own. tests/unit/test_event_schema.py checks that the schema and the rules accept and
refuse the same values.
"""

import re
from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.settings import spectacular_settings

from . import validation as v


def _pattern(regex: re.Pattern) -> str:
    """A Python regular expression as ECMA 262 (what OpenAPI's `pattern` is) writes it."""
    text = regex.pattern.replace(r"\Z", "$")
    return re.sub(r"\\x([0-9a-fA-F]{2})", r"\\u00\1", text)


def _any_case(text: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in text)


# An amount as the rules take it: 12 digits at most before the point, 2 after, no sign.
WHOLE, PLACES = v.MONEY_DIGITS - v.MONEY_PLACES, v.MONEY_PLACES
MONEY_PATTERN = rf"^(?:\d{{1,{WHOLE}}}(?:\.\d{{0,{PLACES}}})?|\.\d{{1,{PLACES}}})$"


def _checked(check) -> dict[str, Any]:
    """What a record's check on one field (DRF's `validate_<field>`) adds to its schema."""
    if check is v.program_currency:
        return {"pattern": f"^{_any_case(settings.DEFAULT_CURRENCY)}$"}
    raise ValueError(f"No schema for the check {check!r}: say here what it accepts.")


def field_schema(field: v.Field, registry=None) -> dict[str, Any]:
    """The JSON Schema of one field, without its required-ness (the record's)."""
    schema: dict[str, Any]
    if isinstance(field, v.Record):
        ref = _component(field, registry)
        if not field.allow_null and not field.help_text:
            return ref
        schema = {"allOf": [ref]}  # a reference takes no siblings in OpenAPI 3.0
        if field.allow_null:
            schema["nullable"] = True
        if field.help_text:
            schema["description"] = field.help_text
        return schema
    if isinstance(field, v.ListOf):
        schema = {
            "type": "array",
            "items": field_schema(field.child, registry),
            "minItems": field.min_length,
            "maxItems": field.max_length,
        }
    elif isinstance(field, v.Email):
        schema = {"type": "string", "format": "email", "maxLength": field.max_length}
    elif isinstance(field, v.IP):
        schema = {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]}
    elif isinstance(field, v.Text):
        schema = {"type": "string"}
        patterns = [_pattern(p) for p in field.patterns]
        if patterns:
            (schema["pattern"],) = patterns
        elif not field.allow_blank:
            schema["pattern"] = r"\S"  # surrounding spaces are trimmed; something must stay
        if field.max_length is not None:
            schema["maxLength"] = field.max_length
        if not field.allow_blank or field.min_length:
            schema["minLength"] = max(1, field.min_length or 0)
    elif isinstance(field, v.Integer):
        schema = {"type": "integer"}
        if field.min_value is not None:
            schema["minimum"] = field.min_value
        if field.max_value is not None:
            schema["maximum"] = field.max_value
    elif isinstance(field, v.Money):
        # Where an amount may be null, a blank string is null too.
        pattern = MONEY_PATTERN.replace(")$", "|)$") if field.allow_null else MONEY_PATTERN
        schema = {"type": "string", "format": "decimal", "pattern": pattern}
    elif isinstance(field, v.When):
        schema = {"type": "string", "format": "date-time"}
    elif isinstance(field, v.PartnerCode | v.Token):
        schema = {"type": "string"}
    else:
        raise ValueError(f"No schema for {type(field).__name__}: say here what it accepts.")
    if field.allow_null:
        schema["nullable"] = True
    if field.help_text:
        schema["description"] = field.help_text
    return schema


def record_schema(record: v.Record, registry=None) -> dict[str, Any]:
    """An object with the record's fields, in their order; those required listed."""
    properties = {}
    for name, field in record.fields.items():
        properties[name] = field_schema(field, registry)
        if name in record.checks:
            properties[name].update(_checked(record.checks[name]))
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    required = [name for name, field in record.fields.items() if field.required]
    if required:
        schema["required"] = required
    if record.help_text:
        schema["description"] = record.help_text
    return schema


def component_name(record: v.Record) -> str:
    """Records describe requests: their components carry drf-spectacular's request suffix."""
    return record.name + ("Request" if spectacular_settings.COMPONENT_SPLIT_REQUEST else "")


def _component(record: v.Record, registry) -> dict[str, Any]:
    """A nested record: a component of its own, referred to (or inline without a registry)."""
    if registry is None:
        return record_schema(record)
    component = ResolvedComponent(
        name=component_name(record), type=ResolvedComponent.SCHEMA, object=record
    )
    if component not in registry:
        component.schema = record_schema(record, registry)
        registry.register(component)
    return component.ref


class EventRecords(OpenApiSerializerExtension):
    """The schema of a serializer that validates by a record (`rules`): the record's."""

    target_class = "commissions.serializers.EventRulesMixin"
    match_subclasses = True

    def get_name(self, auto_schema, direction) -> str:
        return self.target.rules.name

    def map_serializer(self, auto_schema, direction) -> dict[str, Any]:
        return record_schema(self.target.rules, auto_schema.registry)
