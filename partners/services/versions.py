"""Program versions (SPEC §10 "Versions"): the one place they are made.

`program_version_record` is called by every write of a program's pay terms (the program
services: create, update, product rates) and makes the next version when the terms as
stored differ from the latest version's. `programs_version_structure` does the same for
many programs at once after the defaults' flags were copied onto them (a defaults save,
the admin's "apply the current defaults"): one INSERT … SELECT, hand-written because the
ORM has no INSERT from a SELECT, and a save of the defaults updates every program record
in one statement (SPEC §2: 100,000 programs in bench/defaults.py), so their versions are
made in one statement too, in the database, each the latest one's terms with the new flags
(measured: docs/decisions.md, "Program versions").
"""

import json
from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
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
    return ProgramVersion.objects.create(
        program_id=program.pk,
        number=latest[0] + 1 if latest else 1,
        terms=terms,
        created_at=timezone.now(),
        user=user,
        actor=actor,
    )


VERSION_WRITTEN = ("program", "number", "terms", "created_at", "user", "actor")


def programs_version_structure(
    *,
    structure: Mapping[str, Any],
    programs: QuerySet[Program] | None = None,
    acting_user: AbstractBaseUser | None = None,
    actor: str = "system",
) -> None:
    """After the flags `structure` (`ProgramStructure.structure()`) were written onto the
    programs (all of them, or those of `programs`), make the next version of each whose
    latest version's flags differ: its terms with the new flags, in one statement. Run
    after the UPDATE of the programs, whose row locks make a concurrent
    `program_version_record` of one of them wait, or be waited for."""
    user, actor = acting(acting_user, actor)
    version, program = table(ProgramVersion), table(Program)
    number, terms = quote("number"), quote("terms")
    if db().vendor == "postgresql":
        # Each program's latest version by one backward step of the (program, number)
        # index: a join over every version would read the whole history each save.
        user_type = ProgramVersion._meta.get_field("user").rel_db_type(db())
        values = f"%s::timestamptz, %s::{user_type}, %s::text"  # a prepared statement's types
        merged, differs = f"v.{terms} || %s::jsonb", f"NOT (v.{terms} @> %s::jsonb)"
        latest = f"""CROSS JOIN LATERAL (
               SELECT l.{number}, l.{terms} FROM {version} l WHERE l.program_id = p.id
                ORDER BY l.{number} DESC LIMIT 1) v"""
    else:
        values = "%s, %s, %s"
        merged = f"json_patch(v.{terms}, %s)"
        differs = f"json_patch(v.{terms}, %s) <> json(v.{terms})"
        latest = f"""JOIN {version} v ON v.program_id = p.id AND v.{number} = (
               SELECT MAX(l.{number}) FROM {version} l WHERE l.program_id = p.id)"""
    only, only_params = "", ()
    if programs is not None:
        subquery, only_params = programs.values("pk").query.sql_with_params()
        only = f"AND p.id IN ({subquery})"
    sql = f"""
        INSERT INTO {version} ({columns(ProgramVersion, VERSION_WRITTEN)})
        SELECT p.id, v.{number} + 1, {merged}, {values}
          FROM {program} p
          {latest}
         WHERE {differs} {only}
    """
    flags = json.dumps(dict(structure))
    at, user_id, actor = prepared(
        ProgramVersion, VERSION_WRITTEN[3:], [timezone.now(), user and user.pk, actor]
    )
    execute(sql, [flags, at, user_id, actor, flags, *only_params])
