"""Hand-written statements for the event intake, the engine's hot path (issue 4).

The ORM compiles every statement anew, and on the intake that compilation cost more CPU than
PostgreSQL spent running the statements. These helpers keep hand-written SQL honest: table
and column names come from the models, every value is a parameter, values go in through the
model fields' own `get_db_prep_save`, and rows come out through the backend's and the
fields' converters, as the ORM's would. So the same statements run on PostgreSQL and on
SQLite (the development default); where the two differ, the caller says so.
"""

from collections.abc import Sequence
from functools import cache, lru_cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
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


def prepared(model: type[Model], names: tuple[str, ...], values: Sequence[Any]) -> list:
    """The values as the ORM would send them for these fields."""
    connection = db()
    return [
        field.get_db_prep_save(value, connection)
        for field, value in zip(fields(model, names), values, strict=True)
    ]


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


def converted(field_list: tuple[Field, ...], row: Sequence) -> list:
    """A row of these fields' columns as the ORM would read it (JSON parsed; on SQLite also
    decimals, booleans and datetimes)."""
    connection = db()
    row = list(row)
    for position, column, functions in _converters(field_list, connection.vendor):
        value = row[position]
        for function in functions:
            value = function(value, column, connection)
        row[position] = value
    return row


def execute(sql: str, params: Sequence) -> list[tuple]:
    with db().cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


@cache
def defaulted(model: type[Model], names: tuple[str, ...]) -> tuple[str, ...]:
    """The concrete fields an insert of `names` leaves out, but the primary key."""
    return tuple(
        f.name for f in model._meta.concrete_fields if f.name not in names and not f.primary_key
    )


@lru_cache(maxsize=256)
def _insert_sql(
    model: type[Model], names: tuple[str, ...], count: int, suffix: str, returning: tuple
) -> str:
    one = "(" + ", ".join(["%s"] * len(names)) + ")"
    sql = f"INSERT INTO {table(model)} ({columns(model, names)}) VALUES {', '.join([one] * count)}"
    sql += f" {suffix}" if suffix else ""
    return sql + (f" RETURNING {columns(model, returning)}" if returning else "")


def insert(
    model: type[Model],
    names: tuple[str, ...],
    rows: Sequence[Sequence[Any]],
    *,
    returning: tuple[str, ...] = ("id",),
    suffix: str = "",
) -> list[list]:
    """INSERT every row (values in the order of `names`) in one statement; the `returning`
    columns of each row, converted, in the order of the rows (as `bulk_create` relies on).
    Fields left out get their model default, so a field added later with a default needs no
    change here. `suffix` goes before RETURNING, e.g. an ON CONFLICT clause."""
    if not rows:
        return []
    if others := defaulted(model, names):
        defaults = fields(model, others)
        rows = [(*row, *(f.get_default() for f in defaults)) for row in rows]
        names = names + others
    sql = _insert_sql(model, names, len(rows), suffix, returning)
    params = [value for row in rows for value in prepared(model, names, row)]
    found = fields(model, returning)
    return [converted(found, row) for row in execute(sql, params)]
