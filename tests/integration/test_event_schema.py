"""The events' OpenAPI schema and their rules agree (issue 15, item 3).

Each event field is declared once, in `commissions.validation`; `commissions.event_schema`
writes the schema from it. These tests read the schema the app serves and hold it against
the rules: every field of every record is in the schema and nothing else, required exactly
when the rules require it, nullable exactly when they take null; and for probes at and
around every limit (lengths, bounds, number of items, patterns, formats), the schema
accepts a value exactly when the rules do. The rules also take a few other spellings that
the schema does not list (a number for a string, surrounding spaces), like DRF's fields:
`test_the_rules_take_more_spellings_than_the_schema_lists` pins them. What no schema can
say (whether a named partner exists and is active, an order's total, the decimals of the
currency, a time at most a day ahead) is left to the rules and the 400 they answer.
"""

import copy
from typing import Any

import jsonschema_rs
import pytest
from drf_spectacular.generators import SchemaGenerator

from commissions import validation as v
from commissions.serializers import (
    NamedPartner,
    OrderEventSerializer,
    PaymentEventSerializer,
    RefundEventSerializer,
    WebFormEventSerializer,
)

pytestmark = pytest.mark.django_db

RECORDS = {
    "WebFormEventRequest": v.WEB_FORM,
    "OrderEventRequest": v.ORDER,
    "RefundEventRequest": v.REFUND,
    "PaymentEventRequest": v.PAYMENT,
    "ContactRequest": v.CONTACT,
    "ItemRequest": v.ITEM,
    "SubscriptionRequest": v.SUBSCRIPTION,
}
PARTNERS = {"jane": NamedPartner(1, "Jane", "active")}
ITEM = {"sku": "A", "quantity": 1, "unit_price": "1.00"}
VALID = {
    "WebFormEventRequest": {"event_id": "f-1", "contact": {"email": "ada@example.com"}},
    "OrderEventRequest": {
        "event_id": "o-1",
        "contact": {"email": "ada@example.com"},
        "items": [ITEM],
    },
    "RefundEventRequest": {"event_id": "r-1", "order_id": "o-1"},
    "PaymentEventRequest": {"event_id": "p-1", "order_id": "o-1", "amount": "1.00"},
    "ContactRequest": {"email": "ada@example.com"},
    "ItemRequest": ITEM,
    "SubscriptionRequest": {"id": "sub-1", "cycle": 2},
}
MISSING = object()


@pytest.fixture(scope="module")
def components(django_db_blocker) -> dict[str, Any]:
    with django_db_blocker.unblock():
        schema = SchemaGenerator().get_schema(request=None, public=True)
    return json_schema(schema["components"]["schemas"])


def json_schema(node: Any) -> Any:
    """OpenAPI 3.0's `nullable` as JSON Schema's null type, so a validator reads it."""
    if isinstance(node, list):
        return [json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: json_schema(value) for key, value in node.items()}
    if node.pop("nullable", False):
        node = {"anyOf": [node, {"type": "null"}]}
    return node


def schema_accepts(components: dict, name: str, data: dict) -> bool:
    document = {"$ref": f"#/components/schemas/{name}", "components": {"schemas": components}}
    return jsonschema_rs.validator_for(document, validate_formats=True).is_valid(data)


def rules_accept(record: v.Record, data: dict, field: str) -> bool:
    """The rules take this field's value (other fields' and whole-record errors aside)."""
    try:
        record.validate(data, PARTNERS)
    except v.Invalid as error:
        return field not in error.detail
    return True


def with_value(data: dict, field: str, value: Any) -> dict:
    data = copy.deepcopy(data)
    if value is MISSING:
        data.pop(field, None)
    else:
        data[field] = value
    return data


def probes(field: v.Field) -> list[Any]:
    """Values at and around each limit the field declares, and null and leaving it out."""
    values: list[Any] = [None, MISSING]
    if isinstance(field, v.ListOf):
        values += [[], [ITEM], [ITEM] * field.max_length, [ITEM] * (field.max_length + 1), {}]
    elif isinstance(field, v.Record):
        values += ["ada", [], {}]
    elif isinstance(field, v.Email):
        local = "a" * 64
        domain = ".".join(["b" * 60] * 4)[: field.max_length - len(local) - 5] + ".com"
        longest = f"{local}@{domain}"
        values += ["ada@example.com", "not-an-email", "", longest, "a" + longest]
    elif isinstance(field, v.IP):
        values += ["203.0.113.7", "2001:db8::1", "::ffff:203.0.113.7", "999.1.1.1", "x", ""]
    elif isinstance(field, v.Text):
        most = field.max_length or 100
        values += ["", " ", "a", "a" * most, "a" * (most + 1), "has space", "abc", "usd"]
        values += ["USD", "EUR", "US"]
        if field.min_length:
            values += ["a" * (field.min_length - 1), "a" * field.min_length]
    elif isinstance(field, v.Integer):
        values += [field.min_value - 1, field.min_value, field.max_value, field.max_value + 1]
        values += ["x", 1.5]
    elif isinstance(field, v.Money):
        values += ["0", "0.00", "12.34", ".5", "1.", "-1", "-0", "1.234", "", "abc", "1e3x"]
        values += ["999999999999.99", "1000000000000", "9999999999999.9"]
    elif isinstance(field, v.When):
        values += ["2026-01-01T00:00:00Z", "2026-01-01T00:00:00+02:00", "2026-13-01", "", "x"]
    elif isinstance(field, v.PartnerCode):
        values += ["jane", "JANE", ""]  # whether a code exists is data, not shape
    elif isinstance(field, v.Token):
        values += ["", "abc:def", "anything at all"]
    else:
        pytest.fail(f"no probes for {type(field).__name__}")
    return values


CASES = [
    pytest.param(name, field_name, id=f"{name}.{field_name}")
    for name, record in RECORDS.items()
    for field_name in record.fields
]


@pytest.mark.parametrize("name", RECORDS)
def test_the_schema_has_every_field_required_and_nullable_as_the_rules_say(components, name):
    record, component = RECORDS[name], components[name]

    assert list(component["properties"]) == list(record.fields)
    assert component.get("required", []) == [n for n, f in record.fields.items() if f.required]
    for field_name, field in record.fields.items():
        choices = component["properties"][field_name].get("anyOf", [])
        nullable = {"type": "null"} in choices
        assert nullable is field.allow_null, field_name


@pytest.mark.parametrize(("name", "field_name"), CASES)
def test_the_schema_accepts_exactly_what_the_rules_accept(components, name, field_name):
    record = RECORDS[name]
    disagree = []
    for value in probes(record.fields[field_name]):
        data = with_value(VALID[name], field_name, value)
        by_schema = schema_accepts(components, name, data)
        by_rules = rules_accept(record, data, field_name)
        if by_schema != by_rules:
            shown = "(left out)" if value is MISSING else repr(value)[:60]
            disagree.append(f"{shown}: schema {by_schema}, rules {by_rules}")

    assert not disagree, f"{name}.{field_name}: " + "; ".join(disagree)


@pytest.mark.parametrize(
    ("name", "field_name", "value"),
    [
        ("ItemRequest", "sku", 12),  # a number for a string (DRF's CharField)
        ("ItemRequest", "sku", "A" * 100 + " "),  # trimmed, then 100 characters
        ("ItemRequest", "quantity", "2"),  # an integer as a string (DRF's IntegerField)
        ("ItemRequest", "unit_price", 12.5),  # a number for an amount (DRF's DecimalField)
        ("ItemRequest", "unit_price", " 1.00 "),
        ("ItemRequest", "unit_price", "1e3"),  # an exponent (Python's Decimal)
        ("OrderEventRequest", "occurred_at", "2026-01-01"),  # a day (Python's fromisoformat)
        ("OrderEventRequest", "event_id", 1001),
        ("OrderEventRequest", "tracking_token", 5),  # never refused
    ],
    ids=str,
)
def test_the_rules_take_more_spellings_than_the_schema_lists(components, name, field_name, value):
    data = with_value(VALID[name], field_name, value)

    assert rules_accept(RECORDS[name], data, field_name)
    assert not schema_accepts(components, name, data)


def test_the_schema_describes_the_fields_from_their_declaration(components):
    order, refund = components["OrderEventRequest"], components["RefundEventRequest"]

    assert (
        order["properties"]["occurred_at"]["description"] == v.ORDER.fields["occurred_at"].help_text
    )
    assert order["properties"]["currency"]["pattern"] == "^[Uu][Ss][Dd]$"
    assert order["properties"]["items"]["items"] == {"$ref": "#/components/schemas/ItemRequest"}
    assert refund["properties"]["order_id"]["description"] == "The order's event_id."


@pytest.mark.parametrize(
    "serializer",
    [WebFormEventSerializer, OrderEventSerializer, RefundEventSerializer, PaymentEventSerializer],
)
def test_the_event_serializers_declare_no_second_copy_of_the_fields(serializer):
    assert serializer().fields == {}
    assert serializer.rules.name + "Request" in RECORDS
