"""Enrollment (SPEC §10): the programs a partner is enrolled in, and its `program` field kept
in sync with them.

`Partner.program` stays a column (the engine's chain query, the filters, the admin and the
exports read it): it always holds the enrolled program with the lowest priority (then the
lowest id), null when the partner is enrolled in none. Every change of enrollment, and of a
program's priority, goes through here and ends with `partners_program_sync`. Writing a
partner's `program` enrolls it in exactly that program (`partner_set_programs`).
"""

from collections.abc import Iterable

from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery

from ..models import Enrollment, Partner, Program


def partners_program_sync(*, partners: QuerySet[Partner]) -> int:
    """Set each partner's `program` to its enrolled program with the lowest priority (then
    id), null when none: one UPDATE."""
    first = (
        Enrollment.objects.filter(partner_id=OuterRef("pk"))
        .order_by("program__priority", "program_id")
        .values("program_id")[:1]
    )
    return partners.update(program=Subquery(first))


@transaction.atomic
def partner_set_programs(*, partner: Partner, programs: Iterable[Program | int]) -> None:
    """Enroll the partner in exactly these programs (none: the default program pays it)."""
    wanted = {p if isinstance(p, int) else p.pk for p in programs}
    Enrollment.objects.filter(partner=partner).exclude(program_id__in=wanted).delete()
    have = set(Enrollment.objects.filter(partner=partner).values_list("program_id", flat=True))
    Enrollment.objects.bulk_create(
        [Enrollment(partner=partner, program_id=pk) for pk in sorted(wanted - have)]
    )
    partners_program_sync(partners=Partner.objects.filter(pk=partner.pk))
    partner.program_id = (
        Partner.objects.filter(pk=partner.pk).values_list("program_id", flat=True).first()
    )


@transaction.atomic
def partners_set_program(*, partners: QuerySet[Partner], program: Program | None) -> int:
    """Enroll the partners in exactly `program` (None: in none), as writing `program` does."""
    ids = list(partners.values_list("pk", flat=True))
    Enrollment.objects.filter(partner_id__in=ids).delete()
    if program is not None:
        Enrollment.objects.bulk_create(
            [Enrollment(partner_id=pk, program=program) for pk in ids], batch_size=1000
        )
    return Partner.objects.filter(pk__in=ids).update(program=program)


@transaction.atomic
def partners_enroll(*, partners: QuerySet[Partner], program: Program) -> int:
    """Enroll the partners in `program` too (those already in it are left as they are);
    how many were newly enrolled."""
    ids = set(partners.values_list("pk", flat=True))
    have = set(
        Enrollment.objects.filter(program=program, partner_id__in=ids).values_list(
            "partner_id", flat=True
        )
    )
    new = sorted(ids - have)
    Enrollment.objects.bulk_create(
        [Enrollment(partner_id=pk, program=program) for pk in new], batch_size=1000
    )
    partners_program_sync(partners=Partner.objects.filter(pk__in=new))
    return len(new)


@transaction.atomic
def partners_unenroll(*, partners: QuerySet[Partner], program: Program) -> int:
    """Remove the partners from `program`; how many were in it."""
    ids = set(partners.values_list("pk", flat=True))
    removed, _ = Enrollment.objects.filter(program=program, partner_id__in=ids).delete()
    partners_program_sync(partners=Partner.objects.filter(pk__in=ids, program=program))
    return removed


def program_partners_sync(*, program: Program) -> int:
    """After a program's priority changed: the `program` of every partner enrolled in it."""
    return partners_program_sync(partners=Partner.objects.filter(enrollments__program=program))
