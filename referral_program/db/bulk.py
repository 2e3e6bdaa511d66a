"""Writing many rows at once: one INSERT of every row (`insert`), the rows of several
tables in one statement (`insert_together`), and COPY (`copy_data`, `copy_send`, with ids
taken beforehand by `ids_reserve`), for the importer. Fields left out get their model
defaults, so a field added later with a default needs no change here."""

import io
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import cache, lru_cache
from typing import Any, NamedTuple

from django.db.models import Field, Model

from .rows import columns, converted_rows, db, fields, json_text, prepared, quote, table
from .statements import execute


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
        # The driver's own, for COPY, in 1 MB reads of the text as bytes: given a str it
        # holds the interpreter for each read, and the import's other thread, which works
        # the next batch out meanwhile, ran at 0.78 of its speed (0.91 with bytes), and the
        # COPY itself took a tenth longer (bench/copy_threads.py).
        text = io.BytesIO(data.text.encode())
        cursor.cursor.copy_expert(data.sql, text, size=1 << 20)
    if connection.queries_logged:
        connection.queries_log.append(
            {
                "sql": f"{data.sql} -- {data.rows} rows",
                "time": f"{time.monotonic() - started:.3f}",
            }
        )
    return data.rows


def plans_renewed() -> None:
    """This connection's cached plans made again when next used, for the tables as they are
    then (PostgreSQL's `DISCARD PLANS`; prepared statements stay prepared). PostgreSQL
    plans each foreign-key check once per connection: planned while a table analyzed when
    nearly empty holds a few hundred rows (a few pages), a check scans the whole table for
    every row written after (a bulk writer's thousands of rows a second then slow down as the table
    grows: bench/import.py's 50,000 orders in batches of 250 took 90.6 s, 18.2 s with the
    plans made again after each batch). Not through `execute`: PostgreSQL prepares no
    DISCARD."""
    with db().cursor() as cursor:
        cursor.execute("DISCARD PLANS")


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
