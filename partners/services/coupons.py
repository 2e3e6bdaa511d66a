"""Coupons (SPEC §11): save, delete, and the CSV import."""

from collections.abc import Iterable, Mapping

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower

from ..models import Coupon, Partner


def coupon_save(*, coupon: Coupon) -> Coupon:
    """Create or change a coupon; its code is unique without regard to case."""
    coupon.code = (coupon.code or "").strip()
    coupon.full_clean()
    try:
        with transaction.atomic():
            coupon.save()
    except IntegrityError:  # the same code saved meanwhile by another request
        raise ValidationError(
            {"code": "A coupon with this code already exists (codes ignore case)."}
        ) from None
    return coupon


def coupon_delete(*, coupon: Coupon) -> None:
    """Orders credited through the coupon keep their commissions and trace (the code)."""
    coupon.delete()


def coupons_import(*, rows: Iterable[Mapping[str, str]]) -> tuple[int, int]:
    """Coupons from a CSV's rows (columns `code`, `partner`: the partner's code; `active`
    optional, true unless "false", "0" or "no"): each code added, or changed when it exists
    (any case). All or nothing: a row in error refuses the whole file, naming its line.
    Answers (added, changed)."""
    added = changed = 0
    errors = []
    with transaction.atomic():
        for number, row in enumerate(rows, start=2):  # line 1 is the header
            code = (row.get("code") or "").strip()
            partner = Partner.objects.by_code((row.get("partner") or "").strip()).first()
            if partner is None:
                errors.append(f"Line {number}: no partner has the code {row.get('partner')!r}.")
                continue
            active = (row.get("active") or "true").strip().lower() not in {"false", "0", "no"}
            coupon = Coupon.objects.alias(code_lower=Lower("code")).filter(
                code_lower=code.lower()
            ).first() or Coupon(code=code)
            made = coupon.pk is None
            coupon.partner, coupon.active = partner, active
            try:
                coupon_save(coupon=coupon)
            except ValidationError as error:
                messages = "; ".join(m for ms in error.message_dict.values() for m in ms)
                errors.append(f"Line {number}: {messages}")
                continue
            added, changed = added + made, changed + (not made)
        if errors:
            transaction.set_rollback(True)
    if errors:
        raise ValidationError({"file": errors})
    return added, changed
