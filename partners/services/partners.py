"""Partners: a code from a name, create and update, the bulk setters (program, status,
notifications, parent), the Partner Center login (`partner_set_user`,
`partner_login_set_password`) and the partner's own profile update."""

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils.text import slugify

from ..models import Partner, PartnerStatus, Program
from .enrollment import partner_set_programs, partners_set_program

PARTNER_FIELDS = (
    "code",
    "name",
    "email",
    "parent",
    "program",
    "status",
    "cookie_days",
    "notify_lead",
    "notify_sale",
)


def partner_code_from_name(name: str, *, also_taken: Callable[[str], bool] | None = None) -> str:
    """A free code made from the name: 'Jane O'Neil' -> 'jane-oneil', then -2, -3...

    `also_taken` refuses more candidates (a sign-up's code is also its login's username).
    """
    base = slugify(name)[:28].strip("-_") or "partner"
    if not base[0].isalpha():
        base = f"p-{base}"[:28]
    base = base.ljust(4, "0")
    candidate, n = base, 1
    while Partner.objects.code_taken(candidate) or (
        also_taken is not None and also_taken(candidate)
    ):
        n += 1
        candidate = f"{base}-{n}"
    return candidate


@transaction.atomic
def partner_create(
    *, data: Mapping[str, Any], programs: Iterable[Program | int] | None = None
) -> Partner:
    """A new partner; `programs` (SPEC §10) enrolls it in exactly those, else `program`
    (when given) in exactly that one."""
    unknown = set(data) - set(PARTNER_FIELDS)
    if unknown:
        raise ValidationError({name: "Not a partner field." for name in unknown})
    values = dict(data)
    if not values.get("code"):
        values["code"] = partner_code_from_name(values.get("name") or "")
    partner = Partner(**values)
    partner.full_clean()
    partner.save()
    if programs is not None or values.get("program"):
        partner_set_programs(
            partner=partner, programs=programs if programs is not None else [values["program"]]
        )
    return partner


@transaction.atomic
def partner_update(
    *,
    partner: Partner,
    data: Mapping[str, Any],
    programs: Iterable[Program | int] | None = None,
) -> Partner:
    """Change a partner. `programs` (SPEC §10) enrolls it in exactly those; else a `program`
    that differs from the one it has enrolls it in exactly that one (null: in none). The
    same `program` given back leaves its other programs alone (an integration that sends
    the whole resource back unchanged)."""
    unknown = set(data) - set(PARTNER_FIELDS)
    if unknown:
        raise ValidationError({name: "Not a partner field." for name in unknown})
    before = partner.program_id
    for name, value in data.items():
        setattr(partner, name, value)
    partner.full_clean()
    partner.save()
    if programs is not None:
        partner_set_programs(partner=partner, programs=programs)
    elif "program" in data and partner.program_id != before:
        program = data["program"]
        partner_set_programs(partner=partner, programs=[program] if program else [])
    return partner


def partners_assign_program(*, partners: QuerySet[Partner], program: Program | None) -> int:
    return partners_set_program(partners=partners, program=program)


def partners_set_status(*, partners: QuerySet[Partner], status: str) -> int:
    if status not in PartnerStatus.values:
        raise ValidationError({"status": f"Unknown status {status!r}."})
    return partners.update(status=status)


def partners_set_notifications(
    *, partners: QuerySet[Partner], notify_lead: bool | None = None, notify_sale: bool | None = None
) -> int:
    values = {
        name: value
        for name, value in (("notify_lead", notify_lead), ("notify_sale", notify_sale))
        if value is not None
    }
    return partners.update(**values) if values else 0


@transaction.atomic
def partners_set_parent(*, partners: QuerySet[Partner], parent: Partner | None) -> int:
    """Give the partners one parent; refused whole if that makes any of them its own ancestor."""
    ids = set(partners.values_list("pk", flat=True))
    if parent is not None:
        if parent.pk in ids:
            raise ValidationError({"parent": f"{parent.code} cannot be their own parent."})
        above = set(Partner.objects.ancestor_ids(parent.pk))
        looping = sorted(ids & above)
        if looping:
            codes = ", ".join(Partner.objects.filter(pk__in=looping).values_list("code", flat=True))
            raise ValidationError(
                {"parent": f"{parent.code} is below {codes} in the tree: that would make a cycle."}
            )
    return Partner.objects.filter(pk__in=ids).update(parent=parent)


@transaction.atomic
def partner_set_user(*, partner: Partner, user: AbstractBaseUser | None) -> Partner:
    """Link the login of the partner's Partner Center account (None unlinks it)."""
    if user is not None and Partner.objects.filter(user=user).exclude(pk=partner.pk).exists():
        raise ValidationError({"user": "This login already belongs to another partner."})
    partner.user = user
    partner.save(update_fields=["user"])
    return partner


# What a partner may change about themselves in the Partner Center.
PROFILE_FIELDS = ("name", "email", "notify_lead", "notify_sale")


@transaction.atomic
def partner_profile_update(*, partner: Partner, data: Mapping[str, Any]) -> Partner:
    """A partner changes their own name, email and notification switches.

    The email is also what they log in with, so a new email may not be another partner's
    (without regard to case). The partner's login gets the same email.
    """
    unknown = set(data) - set(PROFILE_FIELDS)
    if unknown:
        raise ValidationError({name: "You cannot change this here." for name in unknown})
    email = data.get("email")
    changes_email = email is not None and email.lower() != partner.email.lower()
    others = Partner.objects.filter(email__iexact=email).exclude(pk=partner.pk)
    if changes_email and others.exists():
        raise ValidationError({"email": "Another partner uses this email; choose another."})
    partner = partner_update(partner=partner, data=data)
    if email is not None and partner.user_id is not None and partner.user.email != email:
        partner.user.email = email
        partner.user.save(update_fields=["email"])
    return partner


def _login_of(partner: Partner) -> AbstractBaseUser | None:
    """The partner's login, else the unlinked login whose username is the partner code;
    refused (ValidationError on "user") when that is a staff login: a partner login never
    gets staff rights by accident, nor a staff login a partner's password."""
    user = partner.user
    if user is None:
        user = get_user_model().objects.filter(username=partner.code).first()
    if user is not None and (user.is_staff or user.is_superuser):
        raise ValidationError(
            {"user": f"The staff login {user.get_username()} cannot become a partner's login."}
        )
    return user


@transaction.atomic
def partner_login_set_password(*, partner: Partner, password: str) -> AbstractBaseUser:
    """Set the password of the partner's Partner Center login, making the login first if
    there is none: its username is the partner code, its email the partner's. A login
    whose access was revoked (`partner_access_revoke`) is active again.

    Refused (ValidationError on "password") when the password fails the site's password
    validators, and (on "user") when the login is a staff login (`_login_of`).
    """
    user_model = get_user_model()
    user = _login_of(partner)
    try:
        validate_password(password, user or user_model(username=partner.code, email=partner.email))
    except ValidationError as error:
        raise ValidationError({"password": error.messages}) from None
    if user is None:
        user = user_model.objects.create_user(
            username=partner.code, email=partner.email, password=password
        )
    else:
        user.set_password(password)
        user.is_active = True
        user.save(update_fields=["password", "is_active"])
    if partner.user_id != user.pk:
        partner_set_user(partner=partner, user=user)
    return user


@transaction.atomic
def partner_login_ensure(*, partner: Partner) -> AbstractBaseUser:
    """The partner's Partner Center login, active: made without a usable password when
    there is none (username the partner code, email the partner's), as an invitation needs
    (`partners.services.access`). Refused as `partner_login_set_password` is."""
    user = _login_of(partner)
    if user is None:
        user = get_user_model().objects.create_user(username=partner.code, email=partner.email)
    elif not user.is_active:
        user.is_active = True
        user.save(update_fields=["is_active"])
    if partner.user_id != user.pk:
        partner_set_user(partner=partner, user=user)
    return user
