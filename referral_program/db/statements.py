"""Running a hand-written statement: `execute`, the one way every raw statement of both apps
is sent, prepared on PostgreSQL unless `settings.PREPARED_STATEMENTS` is off.

PostgreSQL parses, analyses and plans every statement it is sent; for the intake's and the
tracker's statements that cost more of its CPU than running them (docs/decisions.md). So
`execute` prepares each statement once per database connection: the first run sends
`PREPARE name AS …; EXECUTE name (…)` in one round trip, later runs `EXECUTE name (…)`.
A prepared statement keeps the plan PostgreSQL settles on after five runs, made from the
table sizes of that moment (a click table nearly empty on a new install, a benchmark's
truncated tables), so each is prepared again every PREPARE_EVERY runs. Only statements of
at most PREPARED_MAX_PARAMETERS values are prepared (the importer's batches are not: each
batch size would be a statement of its own), and at most PREPARED_MAX_STATEMENTS per
connection. `settings.PREPARED_STATEMENTS = False` turns this off for every statement
(behind a pooler in transaction mode, where prepared statements do not follow the client).
"""

import itertools
import re
import weakref
from collections.abc import Mapping, Sequence
from functools import lru_cache

from django.conf import settings
from django.db import DatabaseError
from django.db.backends.base.base import BaseDatabaseWrapper

from .rows import db

PREPARE_EVERY = 1000
PREPARED_MAX_PARAMETERS = 400
PREPARED_MAX_STATEMENTS = 500
# `%s`, `%(name)s` and `%%` (which stays, for the driver to unescape in the one execute
# that also runs the statement).
_PLACEHOLDER = re.compile(r"%s|%\((\w+)\)s|%%")
_LISTS = frozenset((list, tuple))
# The errors after which a statement is prepared again (outside a transaction, at once):
# one is missing (`DISCARD ALL`, `DEALLOCATE ALL`, a pooler's other server connection), or
# a migration changed the type of a column it returns ("cached plan must not change result
# type"), or its name is taken on the server (a pooler's connection another process used).
_PREPARED_MISSING = "26000"
_PREPARED_CHANGED = "0A000"
_PREPARED_NAME_TAKEN = "42P05"

Params = Sequence | Mapping[str, object]


def execute(sql: str, params: Params = (), *, arrays: bool = False) -> list[tuple]:
    """Run one statement and return its rows. Values are `%s` placeholders with a sequence
    of values, or `%(name)s` ones with a mapping (a name may stand more than once). On
    PostgreSQL it runs as a prepared statement of this connection; when the connection
    lost it (or its result type changed), it is prepared again at once outside a
    transaction, and inside one the error goes up (the transaction is aborted; see
    `prepared_lost`).

    A list value is sent as an array whose type the driver picks from its items (`text[]`
    for strings), which a prepared statement will not take where it wants a `uuid[]`;
    unprepared, the array literal takes its type from where it stands. So a statement with
    list values is prepared only with `arrays=True`: the caller's SQL casts each of them to
    its type (`%s::text[]`)."""
    connection = db()
    with connection.cursor() as cursor:
        if not _preparable(connection, params, arrays):
            cursor.execute(sql, params)
        else:
            for attempt in (1, 2):
                sent, preparing = _prepared(connection, sql, params)
                try:
                    cursor.execute(sent, params)
                    break
                except DatabaseError as error:
                    code = _pgcode(error)
                    if code == _PREPARED_MISSING:  # all of this connection's are gone
                        _prepared_by_connection.pop(connection.connection, None)
                    elif preparing or code in (_PREPARED_CHANGED, _PREPARED_NAME_TAKEN):
                        _prepared_forget(connection, sql)
                    if attempt == 1 and not connection.in_atomic_block and code in _AGAIN:
                        continue
                    raise
        return cursor.fetchall() if cursor.description else []


_AGAIN = frozenset((_PREPARED_MISSING, _PREPARED_CHANGED, _PREPARED_NAME_TAKEN))


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

    def __init__(self, name: str, params: Params):
        self.name = name
        if isinstance(params, Mapping):
            values = ", ".join(f"%({key})s" for key in params)
        else:
            values = ", ".join(["%s"] * len(params))
        self.execute = f"EXECUTE {name}" + (f" ({values})" if values else "")
        self.runs = 0


# By DB-API connection (PREPARE lasts as long as it, and a rollback does not undo it):
# its prepared statements by SQL text.
_prepared_by_connection: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# Names are never used twice in a process, so a statement whose PREPARE may or may not
# have run before an error is prepared under a new name next time.
_prepared_names = itertools.count(1)


def _preparable(connection: BaseDatabaseWrapper, params: Params, arrays: bool) -> bool:
    """Whether to prepare a statement with these values: on PostgreSQL when the setting
    allows, not too many values, and lists only where the statement casts them."""
    if connection.vendor != "postgresql" or not settings.PREPARED_STATEMENTS:
        return False
    values = params.values() if isinstance(params, Mapping) else params
    return len(params) <= PREPARED_MAX_PARAMETERS and (
        arrays or _LISTS.isdisjoint(map(type, values))
    )


@lru_cache(maxsize=1024)
def _numbered(sql: str, names: tuple[str, ...] | None = None) -> str:
    """The statement with `$1, $2, …` for its placeholders: `%s` in turn, `%(name)s` by the
    name's place in `names` (the mapping's keys)."""
    numbers = itertools.count(1)
    positions = {name: n for n, name in enumerate(names or (), start=1)}

    def number(match: re.Match) -> str:
        if match[0] == "%%":
            return match[0]
        if match[1] is not None:
            return f"${positions[match[1]]}"
        return f"${next(numbers)}"

    return _PLACEHOLDER.sub(number, sql)


def _prepared(connection: BaseDatabaseWrapper, sql: str, params: Params) -> tuple[str, bool]:
    """What to send for `sql` on this connection: `EXECUTE …`, preceded by its `PREPARE`
    the first time and every PREPARE_EVERY runs (and by `DEALLOCATE` of the old one); and
    whether it prepares."""
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
    made = statements[sql] = _Prepared(f"rp_{next(_prepared_names)}", params)
    made.runs = 1
    prefix = f"DEALLOCATE {found.name}; " if found is not None else ""
    names = tuple(params) if isinstance(params, Mapping) else None
    return f"{prefix}PREPARE {made.name} AS {_numbered(sql, names)}; {made.execute}", True


def _prepared_forget(connection: BaseDatabaseWrapper, sql: str) -> None:
    """After an error: prepare `sql` again (under a new name) next time, in case it was its
    PREPARE that failed, or its result type changed."""
    statements = _prepared_by_connection.get(connection.connection)
    if statements is not None:
        statements.pop(sql, None)
