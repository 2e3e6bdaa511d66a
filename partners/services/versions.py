"""Program versions (SPEC §10 "Versions"): the one place they are made.

`program_version_record` is called by every write of a program's pay terms (the program
services: create, update, product rates) and makes the next version when the terms as
stored differ from the latest version's. `programs_structure_write` writes the defaults'
flags onto many programs at once (a defaults save, the admin's "apply the current
defaults") and makes the next version of each whose flags change. Both point the program at
its new version (`Program.current_version`, which the engine reads). The second is one
statement on PostgreSQL, hand-written because the ORM has no INSERT from a SELECT nor an
UPDATE joined to it: a save of the defaults updates every program record (SPEC §2: 100,000
programs in bench/defaults.py), so their versions are made, and the programs pointed at
them, in the same statement, in the database, each the latest one's terms with the new
flags (measured: docs/decisions.md, "Program versions").
"""

import json
from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from referral_program.db import columns, db, execute, prepared, quote, table

from ..models import Program, ProgramVersion
from ..selectors import program_terms_read


def acting(user: AbstractBaseUser | None, actor: str) -> tuple[AbstractBaseUser | None, str]:
    """Who acts, as a history row keeps it: the logged-in user and their username, or no
    user and `actor` (an API key's "api key NAME", a command's name)."""
    if user is not None and user.is_authenticated:
        return user, user.get_username()
    return None, actor


@transaction.atomic
def program_version_record(
    *, program: Program, acting_user: AbstractBaseUser | None = None, actor: str = "system"
) -> ProgramVersion | None:
    """Make the program's next version when its pay terms as stored differ from its latest
    version's (or it has none); None when nothing changed. The program's row is locked
    first, so two writers number their versions one after the other."""
    list(Program.objects.select_for_update().filter(pk=program.pk).values_list("pk"))
    terms = program_terms_read(program.pk)
    latest = (
        ProgramVersion.objects.filter(program_id=program.pk)
        .order_by("-number")
        .values_list("number", "terms")
        .first()
    )
    if latest is not None and latest[1] == terms:
        return None
    user, actor = acting(acting_user, actor)
    version = ProgramVersion.objects.create(
        program_id=program.pk,
        number=latest[0] + 1 if latest else 1,
        terms=terms,
        created_at=timezone.now(),
        user=user,
        actor=actor,
    )
    Program.objects.filter(pk=program.pk).update(current_version=version)
    program.current_version_id = version.pk
    return version


VERSION_WRITTEN = ("program", "number", "terms", "created_at", "user", "actor")


def programs_structure_write(
    *,
    structure: Mapping[str, Any],
    programs: QuerySet[Program] | None = None,
    acting_user: AbstractBaseUser | None = None,
    actor: str = "system",
) -> int:
    """Write the flags `structure` (`ProgramStructure.structure()`) onto the programs (all
    of them, or those of `programs`), make the next version of each whose latest version's
    flags differ (its terms with the new flags) and point it at that version; the number of
    programs written. On PostgreSQL one statement: the INSERT of the versions, and the
    UPDATE of the programs joined to what it made. A `program_version_record` of one of
    them at the same time waits for the save's row lock, or, committed after the statement
    began, makes it fail on the (program, number) key: the statement is undone (a
    savepoint) and run once more, and then sees that version (docs/decisions.md, "Program
    versions")."""
    user, actor = acting(acting_user, actor)
    version, program = table(ProgramVersion), table(Program)
    number, terms = quote("number"), quote("terms")
    names = tuple(structure)
    sets = ", ".join(f"{columns(Program, (name,))} = %s" for name in names)
    pointer = columns(Program, ("current_version",))
    only, only_params = "", ()
    if programs is not None:
        subquery, only_params = programs.values("pk").query.sql_with_params()
        only = f"AND p.id IN ({subquery})"
    flags = json.dumps(dict(structure))
    at, user_id, actor = prepared(
        ProgramVersion, VERSION_WRITTEN[3:], [timezone.now(), user and user.pk, actor]
    )
    values = prepared(Program, names, [structure[name] for name in names])
    if db().vendor == "postgresql":
        # Each program's latest version by one backward step of the (program, number)
        # index: a join over every version would read the whole history each save.
        user_type = ProgramVersion._meta.get_field("user").rel_db_type(db())
        sql = f"""
            WITH made AS (
                INSERT INTO {version} ({columns(ProgramVersion, VERSION_WRITTEN)})
                SELECT p.id, v.{number} + 1, v.{terms} || %s::jsonb,
                       %s::timestamptz, %s::{user_type}, %s::text
                  FROM {program} p
                 CROSS JOIN LATERAL (
                       SELECT l.{number}, l.{terms} FROM {version} l WHERE l.program_id = p.id
                        ORDER BY l.{number} DESC LIMIT 1) v
                 WHERE NOT (v.{terms} @> %s::jsonb) {only}
                RETURNING id, program_id
            ), written AS (
                UPDATE {program} p SET {sets}, {pointer} = COALESCE(m.id, p.{pointer})
                  FROM {program} q LEFT JOIN made m ON m.program_id = q.id
                 WHERE q.id = p.id {only}
                RETURNING 1
            )
            SELECT COUNT(*) FROM written
        """
        params = [flags, at, user_id, actor, flags, *only_params, *values, *only_params]
        for attempt in (1, 2):
            try:
                with transaction.atomic():  # a savepoint: a lost race is undone alone
                    [(written,)] = execute(sql, params)
                return written
            except IntegrityError as error:
                if attempt == 2 or not _numbered_twice(error):
                    raise
    # Elsewhere (SQLite): the UPDATE, the versions, then the programs pointed at their
    # latest, in three statements.
    written = (programs if programs is not None else Program.objects.all()).update(**structure)
    latest = f"""JOIN {version} v ON v.program_id = p.id AND v.{number} = (
           SELECT MAX(l.{number}) FROM {version} l WHERE l.program_id = p.id)"""
    execute(
        f"""
        INSERT INTO {version} ({columns(ProgramVersion, VERSION_WRITTEN)})
        SELECT p.id, v.{number} + 1, json_patch(v.{terms}, %s), %s, %s, %s
          FROM {program} p
          {latest}
         WHERE json_patch(v.{terms}, %s) <> json(v.{terms}) {only}
        """,
        [flags, at, user_id, actor, flags, *only_params],
    )
    execute(
        f"""
        UPDATE {program} SET {pointer} = (
               SELECT v.id FROM {version} v WHERE v.program_id = {program}.id
                ORDER BY v.{number} DESC LIMIT 1)
         WHERE {pointer} IS NOT (
               SELECT v.id FROM {version} v WHERE v.program_id = {program}.id
                ORDER BY v.{number} DESC LIMIT 1)
        """
    )
    return written


def _numbered_twice(error: IntegrityError) -> bool:
    """Whether the error is a version number taken by another writer meanwhile."""
    diagnostics = getattr(error.__cause__, "diag", None)
    return getattr(diagnostics, "constraint_name", None) == "program_version_number_unique"
