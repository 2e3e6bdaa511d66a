"""defaults_update: exactly the fields sent, an audit row, one bulk UPDATE of programs."""

from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.utils import timezone

from partners.models import DefaultsChange, Program, ProgramRate, ProgramVersion, ReferralDefaults
from partners.selectors import defaults_get
from partners.services.defaults import defaults_update
from partners.services.programs import program_create
from tests.factories import ProgramFactory, StaffFactory

pytestmark = pytest.mark.django_db

NEW_STRUCTURE = {
    "levels": 3,
    "payout_on_lead": True,
    "payout_on_sale": True,
    "payout_amount": False,
    "payout_percent": True,
    "pay_if_unused": True,
}


def snapshot():
    defaults = defaults_get()
    return (
        {
            f.name: getattr(defaults, f.name)
            for f in ReferralDefaults._meta.fields
            if f.name != "updated_at"
        },
        DefaultsChange.objects.count(),
        list(Program.objects.order_by("id").values()),
    )


def test_the_singleton_exists_after_migrate_and_cannot_be_doubled():
    assert ReferralDefaults.objects.count() == 1
    assert defaults_get().levels == 2
    with pytest.raises(ValidationError):
        ReferralDefaults(id=2).full_clean()


def test_save_changes_exactly_the_fields_sent():
    user = StaffFactory()
    before = defaults_get()

    result = defaults_update(data={"partner_selection": "first"}, acting_user=user)

    after = defaults_get()
    assert result.changes == {"partner_selection": {"old": "last", "new": "first"}}
    for field in ReferralDefaults._meta.fields:
        if field.name not in ("partner_selection", "updated_at"):
            assert getattr(after, field.name) == getattr(before, field.name), field.name
    change = DefaultsChange.objects.get()
    assert change.user == user
    assert change.actor == user.username
    assert change.changes == {"partner_selection": {"old": "last", "new": "first"}}


def test_save_that_changes_nothing_writes_nothing(django_assert_num_queries):
    ProgramFactory()
    defaults = defaults_get()
    same = {"levels": defaults.levels, "code_prefix": defaults.code_prefix}
    user = StaffFactory()
    before = snapshot()

    # savepoint, the locking read, release: no write
    with django_assert_num_queries(3):
        result = defaults_update(data=same, acting_user=user)

    assert result.programs_updated == 0
    assert not result.changed
    assert snapshot() == before


def test_programs_take_the_structure_and_keep_their_rates():
    program = program_create(
        data={"name": "Gold", "priority": 1, "unused_sale_percent": Decimal("25")},
        rates=[
            {"level": 1, "sale_percent": Decimal("20"), "sale_amount": Decimal("5.00")},
            {"level": 2, "sale_percent": Decimal("10")},
        ],
    )

    result = defaults_update(data=NEW_STRUCTURE, acting_user=None, actor="test")

    program.refresh_from_db()
    assert result.programs_updated == 1
    assert program.structure() == NEW_STRUCTURE
    assert program.unused_sale_percent == Decimal("25.0000")
    rates = {
        r.level: (r.sale_amount, r.sale_percent)
        for r in ProgramRate.objects.filter(program=program)
    }
    assert rates == {
        1: (Decimal("5.00"), Decimal("20.0000")),
        2: (Decimal("0.00"), Decimal("10.0000")),
        3: (Decimal("0.00"), Decimal("0.0000")),
    }


def test_switching_percent_off_and_on_restores_the_rates():
    program = ProgramFactory(rates={1: {"sale_percent": Decimal("12.5")}})
    defaults_update(data={"payout_percent": True}, acting_user=None)
    defaults_update(data={"payout_percent": False}, acting_user=None)
    defaults_update(data={"payout_percent": True}, acting_user=None)

    assert Program.objects.get(pk=program.pk).payout_percent is True
    assert ProgramRate.objects.get(program=program, level=1).sale_percent == Decimal("12.5")
    assert DefaultsChange.objects.count() == 3


@pytest.mark.parametrize("programs", [1, 1000], ids=["1-program", "1000-programs"])
def test_query_count_does_not_grow_with_programs(programs, django_assert_num_queries):
    made = Program.objects.bulk_create(Program(name=f"P{n}", priority=n) for n in range(programs))
    ProgramVersion.objects.bulk_create(
        ProgramVersion(
            program=program, number=1, terms={"levels": 2}, created_at=timezone.now(), actor="t"
        )
        for program in made
    )
    user = StaffFactory()

    # savepoint, lock, update defaults, the programs' flags and versions (PostgreSQL: one
    # statement in a savepoint of its own, the INSERT of the versions and the UPDATE of the
    # programs pointed at them; SQLite: the UPDATE, the INSERT, the pointers), audit row,
    # release
    with django_assert_num_queries(8):
        result = defaults_update(data=NEW_STRUCTURE, acting_user=user)

    assert result.programs_updated == programs
    assert Program.objects.exclude(**NEW_STRUCTURE).count() == 0
    assert ProgramVersion.objects.filter(number=2, actor=user.username).count() == programs
    made = ProgramVersion.objects.filter(number=2).values_list("program_id", "pk")
    assert dict(Program.objects.values_list("pk", "current_version")) == dict(made)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"code_prefix": "vip -"}, "code_prefix"),
        ({"code_prefix": "x" * 17}, "code_prefix"),
        ({"levels": 0}, "levels"),
        ({"levels": 4}, "levels"),
        ({"link_url": "javascript:alert(1)"}, "link_url"),
        ({"link_url": "ftp://files.example"}, "link_url"),
        ({"tracking_method": "telepathy"}, "tracking_method"),
        ({"partner_selection": "middle"}, "partner_selection"),
        ({"no_such_field": 1}, "no_such_field"),
    ],
    ids=[
        "prefix-with-space",
        "prefix-too-long",
        "levels-0",
        "levels-4",
        "link-url-javascript",
        "link-url-ftp",
        "unknown-tracking-method",
        "unknown-selection",
        "unknown-field",
    ],
)
def test_invalid_values_name_the_field_and_change_nothing(data, field):
    ProgramFactory()
    before = snapshot()

    with pytest.raises(ValidationError) as error:
        defaults_update(data=data, acting_user=None)

    assert field in error.value.message_dict
    assert snapshot() == before


def _race_lost_once(monkeypatch, constraint: str) -> list:
    """`execute` of the defaults save's statement fails once as it does when another
    writer took one of the version numbers after the statement began."""
    from partners.services import versions

    calls, real = [], versions.execute

    def racing(sql, params=(), **kwargs):
        calls.append(sql)
        if len(calls) == 1:
            cause = Exception("duplicate key value")  # the driver's, with its diagnostics
            cause.diag = SimpleNamespace(constraint_name=constraint)
            raise IntegrityError(str(cause)) from cause
        return real(sql, params, **kwargs)

    monkeypatch.setattr(versions, "execute", racing)
    return calls


@pytest.mark.postgresql("the save is one statement in a savepoint there")
def test_a_save_that_lost_a_version_number_to_another_writer_runs_again(monkeypatch):
    program = ProgramFactory()
    calls = _race_lost_once(monkeypatch, "program_version_number_unique")

    result = defaults_update(data=NEW_STRUCTURE, acting_user=None)

    assert len(calls) == 2
    assert result.programs_updated == 1
    assert Program.objects.get(pk=program.pk).current_version == (
        ProgramVersion.objects.get(program=program, number=2)
    )


@pytest.mark.postgresql("the save is one statement in a savepoint there")
def test_any_other_refusal_of_the_save_goes_up_and_writes_nothing(monkeypatch):
    program = ProgramFactory()
    _race_lost_once(monkeypatch, "some_other_constraint")

    with pytest.raises(IntegrityError):
        defaults_update(data=NEW_STRUCTURE, acting_user=None)

    assert DefaultsChange.objects.count() == 0
    assert list(program.versions.values_list("number", flat=True)) == [1]
