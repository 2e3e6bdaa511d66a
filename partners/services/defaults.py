"""Referral Partner Defaults: the singleton's one edit path (`defaults_update`, with its
audit row), `defaults_ensure`, and copying the defaults' structure onto programs (with
the programs' next versions, SPEC §10)."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from ..models import DEFAULTS_FIELDS, DefaultsChange, Partner, Program, ReferralDefaults
from .versions import acting, programs_structure_write


@dataclass(frozen=True)
class DefaultsUpdateResult:
    changes: dict[str, dict[str, Any]]
    programs_updated: int

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def _audit_value(value: Any) -> Any:
    """How the history keeps a value: a partner by its code (JSON, and readable)."""
    return value.code if isinstance(value, Partner) else value


@transaction.atomic
def defaults_update(
    *,
    data: Mapping[str, Any],
    acting_user: AbstractBaseUser | None,
    actor: str = "system",
) -> DefaultsUpdateResult:
    """Save the defaults and copy their structure onto every program in one UPDATE.

    Only the fields in `data` are touched. Nothing is written when nothing changes.
    Raises ValidationError (naming the field) on bad input, before any write.
    """
    unknown = set(data) - set(DEFAULTS_FIELDS)
    if unknown:
        raise ValidationError({name: "Not a Referral Partner Defaults field." for name in unknown})
    defaults = ReferralDefaults.objects.select_for_update().get(pk=ReferralDefaults.SINGLETON_PK)
    changes = {}
    for name, value in data.items():
        old = getattr(defaults, name)
        if old != value:
            changes[name] = {"old": _audit_value(old), "new": _audit_value(value)}
            setattr(defaults, name, value)
    if not changes:
        return DefaultsUpdateResult(changes={}, programs_updated=0)
    defaults.full_clean(validate_constraints=False)  # the one constraint: its pk is 1
    chosen = defaults.signup_parent_partner
    if "signup_parent_partner" in changes and chosen is not None and not chosen.is_active:
        raise ValidationError(
            {"signup_parent_partner": f"{chosen.code} is not active: only active partners recruit."}
        )
    extra = []
    old_prefix = changes.get("code_prefix", {}).get("old")
    if old_prefix and old_prefix not in defaults.earlier_prefixes:
        defaults.earlier_prefixes = [*defaults.earlier_prefixes, old_prefix]
        extra.append("earlier_prefixes")
    defaults.save(update_fields=[*changes, *extra, "updated_at"])
    structure = defaults.structure()
    if changes.keys() & structure.keys():
        programs_updated = programs_structure_write(
            structure=structure, acting_user=acting_user, actor=actor
        )
    else:  # no pay term changed: the flags as they are, no version
        programs_updated = Program.objects.update(**structure)
    user, actor = acting(acting_user, actor)
    DefaultsChange.objects.create(
        at=timezone.now(),
        user=user,
        actor=actor,
        changes=changes,
        programs_updated=programs_updated,
    )
    return DefaultsUpdateResult(changes=changes, programs_updated=programs_updated)


def defaults_ensure() -> ReferralDefaults:
    """The singleton; made again with its first-migration values if it was ever deleted."""
    defaults, _ = ReferralDefaults.objects.get_or_create(pk=ReferralDefaults.SINGLETON_PK)
    return defaults


@transaction.atomic
def programs_apply_defaults(
    *,
    programs: QuerySet[Program],
    acting_user: AbstractBaseUser | None = None,
    actor: str = "system",
) -> int:
    """Give the chosen programs the current structural fields; rates are kept. Those whose
    flags change get their next version."""
    structure = ReferralDefaults.objects.get(pk=ReferralDefaults.SINGLETON_PK).structure()
    return programs_structure_write(
        structure=structure, programs=programs, acting_user=acting_user, actor=actor
    )
