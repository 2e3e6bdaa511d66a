"""Hand-written statements for the event intake, the engine's hot path (issue 4).

The ORM compiles every statement anew, and on the intake that compilation cost more CPU than
PostgreSQL spent running the statements. These helpers keep hand-written SQL honest: table
and column names come from the models, every value is a parameter, values go in through the
model fields' own `get_db_prep_save`, and rows come out through the backend's and the
fields' converters, as the ORM's would. So the same statements run on PostgreSQL and on
SQLite (the development default); where the two differ, the caller says so.
"""

import io
import itertools
import json
import re
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from functools import cache, lru_cache
from typing import Any, NamedTuple

import orjson
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
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


def execute(sql: str, params: Sequence) -> list[tuple]:
    """Run one statement (`%s` placeholders) and return its rows. On PostgreSQL it runs as
    a prepared statement of this connection (`_prepared`); when the connection lost its
    prepared statements, it is prepared again at once outside a transaction, and inside
    one the error goes up (the transaction is aborted; see `prepared_lost`)."""
    connection = db()
    with connection.cursor() as cursor:
        if not _preparable(connection, params):
            cursor.execute(sql, params)
        else:
            for attempt in (1, 2):
                sent, preparing = _prepared(connection, sql, len(params))
                try:
                    cursor.execute(sent, params)
                    break
                except DatabaseError as error:
                    if prepared_lost(error):  # `DISCARD ALL`, `DEALLOCATE ALL`: all gone
                        _prepared_by_connection.pop(connection.connection, None)
                        if attempt == 1 and not connection.in_atomic_block:
                            continue
                    elif preparing or _pgcode(error) == _PREPARED_CHANGED:
                        _prepared_forget(connection, sql)
                    raise
        return cursor.fetchall() if cursor.description else []


# --- Prepared statements (PostgreSQL) ----------------------------------------------------
# PostgreSQL parses, analyses and plans every statement it is sent; for the intake's
# statements that cost more of its CPU than running them (docs/decisions.md). So `execute`
# prepares each statement once per database connection: the first run sends
# `PREPARE name AS …; EXECUTE name (…)` in one round trip, later runs `EXECUTE name (…)`.
# A prepared statement keeps the plan PostgreSQL settles on after five runs, made from the
# table sizes of that moment, so each is prepared again every PREPARE_EVERY runs. Only
# statements of at most PREPARED_MAX_PARAMETERS values are prepared (the importer's
# batches are not: each batch size would be a statement of its own), and at most
# PREPARED_MAX_STATEMENTS per connection. `settings.PREPARED_STATEMENTS = False` turns
# this off (behind a pooler in transaction mode, where they do not follow the client).
PREPARE_EVERY = 1000
PREPARED_MAX_PARAMETERS = 400
PREPARED_MAX_STATEMENTS = 500
_PLACEHOLDER = re.compile(r"%s|%%")
_NO_LISTS = frozenset((list, tuple))
# The errors after which statements are prepared again: one is missing (`DISCARD ALL`),
# or a migration changed the type of a column it returns ("cached plan must not change
# result type").
_PREPARED_MISSING = "26000"
_PREPARED_CHANGED = "0A000"


def _pgcode(error: BaseException) -> str | None:
    return getattr(error.__cause__, "pgcode", None) or getattr(error, "pgcode", None)


def prepared_lost(error: BaseException) -> bool:
    """Whether `error` says a prepared statement was missing on its connection. This
    connection's statements are then forgotten: a new transaction prepares them again
    (the failed one is aborted; `commissions.services` runs an event's once more)."""
    return _pgcode(error) == _PREPARED_MISSING


class _Prepared:
    """A statement prepared on one connection: its name, what runs it, and its runs."""

    __slots__ = ("execute", "name", "runs")

    def __init__(self, name: str, parameters: int):
        self.name = name
        self.execute = f"EXECUTE {name}" + (
            f" ({', '.join(['%s'] * parameters)})" if parameters else ""
        )
        self.runs = 0


# By DB-API connection (PREPARE lasts as long as it, and a rollback does not undo it):
# its prepared statements by SQL text.
_prepared_by_connection: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# Names are never used twice in a process, so a statement whose PREPARE may or may not
# have run before an error is prepared under a new name next time.
_prepared_names = itertools.count(1)


def _preparable(connection: BaseDatabaseWrapper, params: Sequence) -> bool:
    """Whether to prepare a statement with these values: on PostgreSQL, not too many, and
    no lists (the driver sends a list as an array of its items' type, `text[]` for
    strings, which a prepared statement will not take for a `uuid[]`; unprepared, the
    array literal takes its type from where it stands)."""
    return (
        connection.vendor == "postgresql"
        and len(params) <= PREPARED_MAX_PARAMETERS
        and _NO_LISTS.isdisjoint(map(type, params))
    )


@lru_cache(maxsize=1024)
def _numbered(sql: str) -> str:
    """The statement with `$1, $2, …` for its `%s` placeholders (`%%` stays, for the driver
    to unescape in the one execute that also runs it)."""
    numbers = itertools.count(1)
    return _PLACEHOLDER.sub(lambda m: f"${next(numbers)}" if m[0] == "%s" else m[0], sql)


def _prepared(connection: BaseDatabaseWrapper, sql: str, parameters: int) -> tuple[str, bool]:
    """What to send for `sql` on this connection: `EXECUTE …`, preceded by its `PREPARE`
    the first time and every PREPARE_EVERY runs (and by `DEALLOCATE` of the old one); and
    whether it prepares."""
    if not settings.PREPARED_STATEMENTS:
        return sql, False
    raw = connection.connection
    statements = _prepared_by_connection.get(raw)
    if statements is None:
        statements = _prepared_by_connection[raw] = {}
    found = statements.get(sql)
    if found is not None and found.runs < PREPARE_EVERY:
        found.runs += 1
        return found.execute, False
    if found is None and len(statements) >= PREPARED_MAX_STATEMENTS:
        return sql, False
    made = statements[sql] = _Prepared(f"rp_{next(_prepared_names)}", parameters)
    made.runs = 1
    prefix = f"DEALLOCATE {found.name}; " if found is not None else ""
    return f"{prefix}PREPARE {made.name} AS {_numbered(sql)}; {made.execute}", True


def _prepared_forget(connection: BaseDatabaseWrapper, sql: str) -> None:
    """After an error: prepare `sql` again (under a new name) next time, in case it was its
    PREPARE that failed, or its result type changed."""
    statements = _prepared_by_connection.get(connection.connection)
    if statements is not None:
        statements.pop(sql, None)


@cache
def defaulted(model: type[Model], names: tuple[str, ...]) -> tuple[str, ...]:
    """The concrete fields an insert of `names` leaves out and gives their defaults: not
    the primary key, nor a nullable field with no default, which is left out of the
    statement too (the database makes it NULL, as the ORM would: one value less to send
    and read for each refund, clawback and payment column of a commission line)."""
    return tuple(
        f.name
        for f in model._meta.concrete_fields
        if f.name not in names
        and not f.primary_key
        and not (f.null and not f.has_default() and not f.has_db_default())
    )


def _with_defaults(
    model: type[Model], names: tuple[str, ...], rows: Sequence[Sequence[Any]]
) -> tuple[tuple[str, ...], Sequence[Sequence[Any]]]:
    """The fields and rows with the model defaults of the fields left out."""
    if others := defaulted(model, names):
        defaults = fields(model, others)
        rows = [(*row, *(f.get_default() for f in defaults)) for row in rows]
        names = names + others
    return names, rows


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
    names, rows = _with_defaults(model, names, rows)
    sql = _insert_sql(model, names, len(rows), suffix, returning)
    connection = db()
    params = [value for row in rows for value in prepared(model, names, row, connection)]
    return converted_rows(fields(model, returning), execute(sql, params))


class Returned(NamedTuple):
    """A value in a row of `insert_together`: the id of the row an earlier part writes
    (a part of one row, such as an order for its commission lines)."""

    part: int


class InsertPart(NamedTuple):
    """The rows of one model that `insert_together` writes (values in the order of
    `names`)."""

    model: type[Model]
    names: tuple[str, ...]
    rows: Sequence[Sequence[Any]]


@lru_cache(maxsize=256)
def _insert_together_sql(shape: tuple[tuple[type[Model], tuple[str, ...], tuple], ...]) -> str:
    """One INSERT per part with rows, each a data-modifying CTE, and the ids they return
    with the part's number. `shape`: per part, the model, the fields, and per row the part
    each value is the id of (None: a parameter)."""
    parts, ids = [], []
    for n, (model, names, rows) in enumerate(shape):
        if not rows:
            continue
        pk = quote(model._meta.pk.column)
        values = ", ".join(
            "("
            + ", ".join("%s" if part is None else f"(SELECT {pk} FROM i{part})" for part in row)
            + ")"
            for row in rows
        )
        parts.append(
            f"i{n} AS (INSERT INTO {table(model)} ({columns(model, names)}) VALUES {values} "
            f"RETURNING {pk})"
        )
        ids.append(f"SELECT {n}, {pk} FROM i{n}")
    return f"WITH {', '.join(parts)} {' UNION ALL '.join(ids)}"


def insert_together(parts: Sequence[InsertPart]) -> list[list[int]]:
    """INSERT the rows of every part in one statement and one round trip (PostgreSQL); the
    ids of each part's rows, in the order of its rows. A value `Returned(n)` is the id of
    part n's row (one row, written before). Fields left out get their model defaults, as
    with `insert`. Elsewhere (SQLite has no data-modifying CTEs) one `insert` per part."""
    if db().vendor != "postgresql":
        written: list[list[int]] = []
        for model, names, rows in parts:
            rows = [[written[v.part][0] if type(v) is Returned else v for v in row] for row in rows]
            written.append([pk for [pk] in insert(model, names, rows)])
        return written
    connection = db()
    shape, params = [], []
    for model, names, rows in parts:
        names, rows = _with_defaults(model, names, rows)
        refs = []
        for row in rows:
            marked = {n: v.part for n, v in enumerate(row) if type(v) is Returned}
            if not marked:
                refs.append((None,) * len(row))
                params += prepared(model, names, row, connection)
                continue
            values = prepared(
                model, names, [None if n in marked else v for n, v in enumerate(row)], connection
            )
            refs.append(tuple(marked.get(n) for n in range(len(row))))
            params += [v for n, v in enumerate(values) if n not in marked]
        shape.append((model, names, tuple(refs)))
    written = [[] for _ in parts]
    if any(rows for _, _, rows in shape):
        for n, pk in execute(_insert_together_sql(tuple(shape)), params):
            written[n].append(pk)
    return written


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


def json_text(value: Any) -> str:
    """The same JSON value as the ORM's `json.dumps` (jsonb keeps no spacing), 15 times
    faster; what orjson will not write (a dict with keys other than strings, a Decimal) is
    written as the ORM writes it."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


def _json(value: Any) -> str:
    if value is None:
        return _NULL  # SQL NULL, as the ORM stores None in a JSON field
    text = json_text(value)
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
