"""Names, values and rows of hand-written SQL: table and column names come from the models,
values go in as the model fields' `get_db_prep_save` makes them (as the ORM sends them), and
rows come out through the backend's and the fields' converters (as the ORM reads them). So
the same statements run on PostgreSQL and on SQLite (the development default)."""

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

import orjson
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.postgresql.psycopg_any import Jsonb
from django.db.models import Field, Model


def db() -> BaseDatabaseWrapper:
    """This thread's connection itself: `django.db.connection` is a proxy that looks it up
    again on every attribute, which the field methods below would pay per value."""
    return connections[DEFAULT_DB_ALIAS]


def quote(name: str) -> str:
    return db().ops.quote_name(name)


def table(model: type[Model]) -> str:
    return quote(model._meta.db_table)


@cache
def fields(model: type[Model], names: tuple[str, ...]) -> tuple[Field, ...]:
    return tuple(model._meta.get_field(name) for name in names)


def columns(model: type[Model], names: tuple[str, ...], prefix: str = "") -> str:
    """`a.col1, a.col2` for the fields `names` (a foreign key by its field name)."""
    quote_name = db().ops.quote_name
    return ", ".join(prefix + quote_name(field.column) for field in fields(model, names))


# The value types that a field's `get_db_prep_save` hands to PostgreSQL unchanged, by the
# field's (or a foreign key's target's) internal type: `prepared` passes them as they are,
# which is what the ORM sends, without its calls (two to five per value).
_UNCHANGED_ON_POSTGRESQL = {
    "CharField": (str, type(None)),
    "TextField": (str, type(None)),
    "BooleanField": (bool, type(None)),
    "UUIDField": (uuid.UUID, type(None)),
    "DateTimeField": (datetime, type(None)),  # aware ones: naive ones are made aware
    # A Decimal: the ORM makes it a Decimal again (`to_python`, the same digits and
    # exponent) and PostgreSQL's `adapt_decimalfield_value` hands it on as it is.
    "DecimalField": (Decimal, type(None)),
    **dict.fromkeys(
        ("AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField",
         "SmallIntegerField", "PositiveIntegerField", "PositiveBigIntegerField",
         "PositiveSmallIntegerField"),
        (int, type(None)),
    ),
}  # fmt: skip


_TEXT = frozenset(("CharField", "TextField"))


@cache
def _preparation(
    model: type[Model], names: tuple[str, ...], vendor: str
) -> tuple[tuple[Field, tuple, str, bool], ...]:
    """Per field: the field, the value types it sends unchanged, its internal type, and
    whether its JSON is written by `json_text` (PostgreSQL, no encoder of its own)."""
    result = []
    for field in fields(model, names):
        kind = (field.target_field if field.is_relation else field).get_internal_type()
        postgresql = vendor == "postgresql"
        unchanged = _UNCHANGED_ON_POSTGRESQL.get(kind, ()) if postgresql else ()
        fast_json = postgresql and kind == "JSONField" and field.encoder is None
        result.append((field, unchanged, kind, fast_json))
    return tuple(result)


def prepared(
    model: type[Model],
    names: tuple[str, ...],
    values: Sequence[Any],
    connection: BaseDatabaseWrapper | None = None,
) -> list:
    """The values as the ORM would send them for these fields (on `connection`, by
    default this thread's). On PostgreSQL a JSON value is written by `json_text`, as the
    importer writes it, rather than the ORM's `json.dumps`: the same jsonb value."""
    connection = connection or db()
    result = []
    for (field, unchanged, kind, fast_json), value in zip(
        _preparation(model, names, connection.vendor), values, strict=True
    ):
        if type(value) in unchanged and not (
            kind == "DateTimeField" and value is not None and value.tzinfo is None
        ):
            result.append(value)
        elif unchanged and kind in _TEXT and isinstance(value, str):
            result.append(value)  # a choice's enum member: the ORM sends it as it is too
        elif fast_json and value is not None:
            result.append(Jsonb(value, dumps=json_text))
        else:
            result.append(field.get_db_prep_save(value, connection))
    return result


@cache
def _converters(field_list: tuple[Field, ...], vendor: str) -> tuple:
    connection = db()
    result = []
    for position, field in enumerate(field_list):
        column = field.cached_col
        found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if found:
            result.append((position, column, tuple(found)))
    return tuple(result)


# The converters of a field tuple, by the tuple's id: hashing a tuple of fields hashes
# every field (Python code), which cost more than converting a row. Each entry holds its
# tuple, so no other tuple can take its id while it is there.
_converters_by_id: dict[int, tuple[tuple, str, tuple]] = {}


def converted(field_list: tuple[Field, ...], row: Sequence) -> list:
    """A row of these fields' columns as the ORM would read it (JSON parsed; on SQLite also
    decimals, booleans and datetimes)."""
    return converted_rows(field_list, [row])[0]


def converted_rows(field_list: tuple[Field, ...], rows: Iterable[Sequence]) -> list[list]:
    """`converted` of each row."""
    connection = db()
    entry = _converters_by_id.get(id(field_list))
    if entry is None or entry[0] is not field_list or entry[1] != connection.vendor:
        if len(_converters_by_id) > 1000:
            _converters_by_id.clear()
        entry = (field_list, connection.vendor, _converters(field_list, connection.vendor))
        _converters_by_id[id(field_list)] = entry
    result = []
    for row in rows:
        row = list(row)
        for position, column, functions in entry[2]:
            value = row[position]
            for function in functions:
                value = function(value, column, connection)
            row[position] = value
        result.append(row)
    return result


def json_text(value: Any) -> str:
    """The same JSON value as the ORM's `json.dumps` (jsonb keeps no spacing), 15 times
    faster; what orjson will not write (a dict with keys other than strings, a Decimal) is
    written as the ORM writes it."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)
