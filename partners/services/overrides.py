"""Partner overrides (SPEC §10): one partner's own rates for a program at one level, for
one sku or every item. Saved and deleted one at a time (the API), or as the staff
partner page's table (`partner_overrides_save`: its rows saved and deleted together)."""

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from ..models import PartnerOverride

TAKEN = "This partner already has an override for this program, sku and level."


def _taken(override: PartnerOverride) -> bool:
    same = PartnerOverride.objects.filter(
        partner_id=override.partner_id,
        program_id=override.program_id,
        level=override.level,
        sku=override.sku,  # None matches the overrides for every item
    )
    return same.exclude(pk=override.pk).exists() if override.pk else same.exists()


def partner_override_save(*, override: PartnerOverride) -> PartnerOverride:
    """Create or change an override. A blank sku is none (every item); unique per
    (partner, program, sku, level), refused naming `sku`."""
    override.sku = (override.sku or "").strip() or None
    override.full_clean(validate_constraints=False)
    if _taken(override):
        raise ValidationError({"sku": TAKEN})
    try:
        with transaction.atomic():
            override.save()
    except IntegrityError:  # the same override saved meanwhile by another request
        raise ValidationError({"sku": TAKEN}) from None
    return override


def partner_override_delete(*, override: PartnerOverride) -> None:
    """Commissions already recorded keep the rates they were paid at (in their trace)."""
    override.delete()


@transaction.atomic
def partner_overrides_save(
    *, save: Iterable[PartnerOverride], delete: Iterable[PartnerOverride]
) -> None:
    """The staff table's change, all or nothing: the rows removed first (so a row may
    take the place of one removed), then those added or changed."""
    for override in delete:
        partner_override_delete(override=override)
    for override in save:
        partner_override_save(override=override)
