"""Hand-written statements for the event intake, the engine's hot path (issue 4).

The ORM compiles every statement anew, and on the intake that compilation cost more CPU than
PostgreSQL spent running the statements. These helpers keep hand-written SQL honest: table
and column names come from the models, every value is a parameter, values go in through the
model fields' own `get_db_prep_save`, and rows come out through the backend's and the
fields' converters, as the ORM's would. So the same statements run on PostgreSQL and on
SQLite (the development default); where the two differ, the caller says so.
"""

import io
import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import cache, lru_cache
from typing import Any, NamedTuple

import orjson
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


# The converters of a field tuple, by the tuple's id: hashing a tuple of fields hashes
# every field (Python code), which cost more than converting a row. Each entry holds its
# tuple, so no other tuple can take its id while it is there.
_converters_by_id: dict[int, tuple[tuple, str, tuple]] = {}


def converted(field_list: tuple[Field, ...], row: Sequence) -> list:
    """A row of these fields' columns as the ORM would read it (JSON parsed; on SQLite also
    decimals, booleans and datetimes)."""
    connection = db()
    entry = _converters_by_id.get(id(field_list))
    if entry is None or entry[0] is not field_list or entry[1] != connection.vendor:
        if len(_converters_by_id) > 1000:
            _converters_by_id.clear()
        entry = (field_list, connection.vendor, _converters(field_list, connection.vendor))
        _converters_by_id[id(field_list)] = entry
    row = list(row)
    for position, column, functions in entry[2]:
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


# --- Bulk writes (the importer, commissions.importing; PostgreSQL only) ----------------------

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NULL = "\\N"


def _text(value: Any) -> str:
    if value is None:
        return _NULL
    value = str(value)
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_COPY_ESCAPES)
    return value


def _json(value: Any) -> str:
    if value is None:
        return _NULL  # SQL NULL, as the ORM stores None in a JSON field
    try:
        # The same JSON value as the ORM's `json.dumps` (jsonb keeps no spacing), 15 times
        # faster; what orjson will not write (a dict with keys other than strings) is
        # written as the ORM writes it.
        text = orjson.dumps(value).decode()
    except TypeError:
        text = json.dumps(value)
    return text.translate(_COPY_ESCAPES) if "\\" in text else text


# Times written so far (rows of one event, and of one batch, share them), by value: equal
# times are the same instant, whatever their offset, and PostgreSQL stores the instant.
_written_times: dict[datetime, str] = {}


def _when(value: datetime | None) -> str:
    if value is None:
        return _NULL
    text = _written_times.get(value)
    if text is None:
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the database stores aware times")
        if len(_written_times) > 50_000:
            _written_times.clear()
        text = _written_times[value] = value.isoformat()
    return text


# How a column's value is written, by the field's internal type: numbers as they print,
# booleans as t/f, times in ISO 8601 with their offset, JSON dumped, anything else as
# escaped text.
_AS_NUMBER = {
    "AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField",
    "SmallIntegerField", "PositiveIntegerField", "PositiveBigIntegerField",
    "PositiveSmallIntegerField", "DecimalField", "UUIDField",
}  # fmt: skip


def _column_code(field: Field, name: str) -> str:
    kind = (field.target_field if field.is_relation else field).get_internal_type()
    if kind == "JSONField":
        return f"_json({name})"
    if kind == "DateTimeField":
        return f"_when({name})"
    if kind == "BooleanField":
        return f"('t' if {name} else 'f')"
    if kind in _AS_NUMBER:
        return f"(_NULL if {name} is None else {name})" if field.null else name
    if field.null:
        return f"_text({name})"
    # Letters and digits only (most codes and choices): nothing to escape.
    return f"({name} if type({name}) is str and {name}.isalnum() else _text({name}))"


@cache
def copy_formatter(model: type[Model], names: tuple[str, ...]) -> Callable[[Sequence], str]:
    """A function writing one row (values in the order of `names`, as the model fields hold
    them) as a line of COPY's text format, made once per model and fields: one f-string,
    each column written by its field's type (PostgreSQL reads every value back as the ORM
    would have sent it)."""
    variables = [f"v{n}" for n in range(len(names))]
    parts = [
        _column_code(field, variable)
        for field, variable in zip(fields(model, names), variables, strict=True)
    ]
    source = (
        f"def line(row):\n    {', '.join(variables)}, = row\n"
        f'    return f"{"\\t".join("{" + part + "}" for part in parts)}\\n"\n'
    )
    namespace = {"_json": _json, "_when": _when, "_text": _text, "_NULL": _NULL}
    exec(compile(source, f"<copy {model._meta.label} {len(names)}>", "exec"), namespace)
    return namespace["line"]


class CopyData(NamedTuple):
    """A COPY statement and its rows, made ready to send (`copy_send`)."""

    sql: str
    text: str
    rows: int


def copy_data(
    model: type[Model], names: tuple[str, ...], rows: Sequence[Sequence[Any]]
) -> CopyData | None:
    """The COPY of the rows (values in the order of `names`, as the model fields hold them:
    None, str, bool, int, Decimal, UUID, aware datetime, dict or list for JSON) into the
    model's table; fields left out get their model default, as `insert` gives them. None
    when there are no rows."""
    if not rows:
        return None
    text = "".join(map(copy_formatter(model, names), rows))
    if others := defaulted(model, names):
        defaults = tuple(f.get_default() for f in fields(model, others))
        tail = copy_formatter(model, others)(defaults)
        text = text.replace("\n", "\t" + tail)  # every line ends with the defaults
        names = names + others
    return CopyData(f"COPY {table(model)} ({columns(model, names)}) FROM STDIN", text, len(rows))


def copy_send(data: CopyData | None) -> int:
    """Run a COPY made by `copy_data`; logged like the other statements (query counts see
    it). The rows written."""
    if data is None:
        return 0
    connection = db()
    started = time.monotonic()
    with connection.cursor() as cursor, connection.wrap_database_errors:
        # the driver's own, for COPY; 1 MB reads of the text
        cursor.cursor.copy_expert(data.sql, io.StringIO(data.text), size=1 << 20)
    if connection.queries_logged:
        connection.queries_log.append(
            {
                "sql": f"{data.sql} -- {data.rows} rows",
                "time": f"{time.monotonic() - started:.3f}",
            }
        )
    return data.rows


def copy(model: type[Model], names: tuple[str, ...], rows: Sequence[Sequence[Any]]) -> int:
    """COPY the rows into the model's table in one statement (see `copy_data`)."""
    return copy_send(copy_data(model, names, rows))


# The sequence of each table's id, by database and table, found once per process: nextval
# of a sequence named in the statement is ten times faster than of one found per row.
_sequences: dict[tuple[str, str], str] = {}


def _sequence(model: type[Model]) -> str:
    connection = db()
    key = (connection.settings_dict["NAME"], model._meta.db_table)
    if key not in _sequences:
        [[name]] = execute("SELECT pg_get_serial_sequence(%s, %s)", [key[1], "id"])
        _sequences[key] = name
    return _sequences[key]


def ids_reserve(counts: Mapping[type[Model], int]) -> dict[type[Model], list[int]]:
    """`count` new primary keys of each model's table, taken from its sequence in one query,
    ascending: rows written with them by COPY can be referred to before they exist."""
    wanted = [(model, count) for model, count in counts.items() if count > 0]
    result: dict[type[Model], list[int]] = {model: [] for model in counts}
    if not wanted:
        return result
    parts = ", ".join(
        "(SELECT array_agg(nextval(%s::regclass)) FROM generate_series(1, %s))" for _ in wanted
    )
    params = [value for model, count in wanted for value in (_sequence(model), count)]
    [found] = execute(f"SELECT {parts}", params)
    for (model, _), ids in zip(wanted, found, strict=True):
        result[model] = sorted(ids)
    return result
