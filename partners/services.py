"""Every write of the partners app: defaults, programs, partners, sign-ups, links, API keys."""

import hashlib
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Max, Min, QuerySet
from django.db.models.functions import Lower
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.text import slugify

from referral_program.db import columns, execute, insert, prepared, table

from .models import (
    DEFAULTS_FIELDS,
    LEVELS,
    NO_LOGIN_STATUSES,
    ApiKey,
    Click,
    ClickFlag,
    Coupon,
    DefaultsChange,
    Partner,
    PartnerSignup,
    PartnerStatus,
    Program,
    ProgramRate,
    ReferralDefaults,
    SignupEmail,
    SignupEmailKind,
    TrackingLink,
)
from .selectors import (
    TrackerTarget,
    partner_link,
    possible_codes,
    signup_referrer_id,
    tracker_target,
)
from .signup import ConfirmLinkExpired, confirm_token_make, confirm_token_read, signup_parent_id
from .signup_attempts import signup_attempt_record, signup_attempts_exhausted
from .tokens import decode_token

if TYPE_CHECKING:
    from .click_buffer import BufferedClick

PROGRAM_FIELDS = (
    "name",
    "notes",
    "priority",
    "unused_lead_amount",
    "unused_lead_percent",
    "unused_sale_amount",
    "unused_sale_percent",
    "hold_days",
)
RATE_FIELDS = ("lead_amount", "lead_percent", "sale_amount", "sale_percent")
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
API_KEY_PREFIX = "rp_"


# --- Referral Partner Defaults -------------------------------------------------------


@dataclass(frozen=True)
class DefaultsUpdateResult:
    changes: dict[str, dict[str, Any]]
    programs_updated: int

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def _actor(user: AbstractBaseUser | None, fallback: str) -> str:
    if user is not None and user.is_authenticated:
        return user.get_username()
    return fallback


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
    programs_updated = Program.objects.update(**defaults.structure())
    DefaultsChange.objects.create(
        at=timezone.now(),
        user=acting_user if acting_user is not None and acting_user.is_authenticated else None,
        actor=_actor(acting_user, actor),
        changes=changes,
        programs_updated=programs_updated,
    )
    return DefaultsUpdateResult(changes=changes, programs_updated=programs_updated)


def defaults_ensure() -> ReferralDefaults:
    """The singleton; made again with its first-migration values if it was ever deleted."""
    defaults, _ = ReferralDefaults.objects.get_or_create(pk=ReferralDefaults.SINGLETON_PK)
    return defaults


def programs_apply_defaults(*, programs: QuerySet[Program]) -> int:
    """Give the chosen programs the current structural fields; rates are kept."""
    defaults = ReferralDefaults.objects.get(pk=ReferralDefaults.SINGLETON_PK)
    return programs.update(**defaults.structure())


# --- Programs ----------------------------------------------------------------------------


def _rate_rows(program: Program, rates: Iterable[Mapping[str, Any]]) -> list[ProgramRate]:
    by_level = {}
    for rate in rates:
        level = rate.get("level")
        if level not in LEVELS:
            raise ValidationError({"rates": f"Level must be 1, 2 or 3 (got {level!r})."})
        if level in by_level:
            raise ValidationError({"rates": f"Level {level} is given twice."})
        by_level[level] = rate
    rows = []
    for level in LEVELS:
        given = by_level.get(level, {})
        row = ProgramRate(
            program=program, level=level, **{f: given[f] for f in RATE_FIELDS if f in given}
        )
        rows.append(row)
    return rows


@transaction.atomic
def program_create(*, data: Mapping[str, Any], rates: Iterable[Mapping[str, Any]] = ()) -> Program:
    """A new program with the defaults' structure and a rate row for each of levels 1..3."""
    defaults = ReferralDefaults.objects.get(pk=ReferralDefaults.SINGLETON_PK)
    program = Program(**{f: data[f] for f in PROGRAM_FIELDS if f in data}, **defaults.structure())
    program.full_clean()
    rows = _rate_rows(program, rates)
    for row in rows:
        row.full_clean(exclude=["program"])
    program.save()
    ProgramRate.objects.bulk_create(rows)
    return program


@transaction.atomic
def program_update(
    *, program: Program, data: Mapping[str, Any], rates: Iterable[Mapping[str, Any]] | None = None
) -> Program:
    """Change a program's name, notes, priority and rates. Its structure follows the defaults."""
    for name in PROGRAM_FIELDS:
        if name in data:
            setattr(program, name, data[name])
    program.full_clean()
    program.save()
    if rates is not None:
        existing = {rate.level: rate for rate in program.rates.all()}
        for rate in rates:
            row = existing.get(rate.get("level"))
            if row is None:
                raise ValidationError(
                    {"rates": f"Level must be 1, 2 or 3 (got {rate.get('level')!r})."}
                )
            for name in RATE_FIELDS:
                if name in rate:
                    setattr(row, name, rate[name])
            row.full_clean()
        ProgramRate.objects.bulk_update(existing.values(), RATE_FIELDS)
    return program


# --- Partners ----------------------------------------------------------------------------


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
def partner_create(*, data: Mapping[str, Any]) -> Partner:
    unknown = set(data) - set(PARTNER_FIELDS)
    if unknown:
        raise ValidationError({name: "Not a partner field." for name in unknown})
    values = dict(data)
    if not values.get("code"):
        values["code"] = partner_code_from_name(values.get("name") or "")
    partner = Partner(**values)
    partner.full_clean()
    partner.save()
    return partner


@transaction.atomic
def partner_update(*, partner: Partner, data: Mapping[str, Any]) -> Partner:
    unknown = set(data) - set(PARTNER_FIELDS)
    if unknown:
        raise ValidationError({name: "Not a partner field." for name in unknown})
    for name, value in data.items():
        setattr(partner, name, value)
    partner.full_clean()
    partner.save()
    return partner


def partners_assign_program(*, partners: QuerySet[Partner], program: Program | None) -> int:
    return partners.update(program=program)


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


@transaction.atomic
def partner_login_set_password(*, partner: Partner, password: str) -> AbstractBaseUser:
    """Set the password of the partner's Partner Center login, making the login first if
    there is none: its username is the partner code, its email the partner's.

    Refused (ValidationError on "password") when the password fails the site's password
    validators, and (on "user") when a staff login already has the partner code as its
    username: a partner login never gets staff rights by accident.
    """
    user_model = get_user_model()
    user = partner.user
    if user is None:
        user = user_model.objects.filter(username=partner.code).first()
        if user is not None and (user.is_staff or user.is_superuser):
            raise ValidationError(
                {"user": f"The staff login {partner.code} cannot become a partner's login."}
            )
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
        user.save(update_fields=["password"])
    if partner.user_id != user.pk:
        partner_set_user(partner=partner, user=user)
    return user


# --- Partner sign-up (SPEC §9) ----------------------------------------------------------


class SignupRateLimited(Exception):
    """Too many sign-ups from one IP address in the last hour (`SIGNUP_RATE_LIMIT`), for new
    and known emails alike (partners/signup_attempts.py)."""


class SignupOutcome:
    CREATED = "created"  # a new pending partner, and a confirmation email
    KNOWN = "known"  # the email is a partner's already: that partner gets an email instead


class ConfirmOutcome:
    INVALID = "invalid"
    EXPIRED = "expired"
    PENDING = "pending"  # confirmed; waiting for staff
    ACTIVE = "active"  # confirmed and approved (automatically or before)
    CLOSED = "closed"  # confirmed, but the partner was rejected or made inactive


@dataclass(frozen=True)
class SignupResult:
    outcome: str
    partner: Partner | None  # the new partner (CREATED) only


@dataclass(frozen=True)
class SignupDecision:
    """What an approval or rejection did to the chosen partners."""

    decided: int
    unconfirmed: int = 0  # pending partners whose email is not confirmed yet (not approved)
    not_pending: int = 0  # partners it does not apply to (active, inactive; or rejected)


SIGNUP_FIELDS_IN = ("name", "email", "password", "website", "promotion")
# The same sign-up email is not sent to one partner more often than this.
SIGNUP_EMAIL_REPEAT = timedelta(minutes=15)
AUTO_APPROVAL = "auto-approval"


def _username_taken(code: str) -> bool:
    return get_user_model().objects.filter(username__iexact=code).exists()


@transaction.atomic
def partner_signup(
    *,
    data: Mapping[str, Any],
    tracking_token: str | None,
    ip: str | None,
    user_agent: str,
    at: datetime,
) -> SignupResult:
    """Someone applies on the public sign-up page.

    `data`: name, email, password, and optional website and promotion (how they will
    promote). The new partner is pending, with a login that cannot be used before the
    partner is active, and gets an email with a confirmation link. The parent follows the
    defaults' `signup_parent`: nobody, the referring partner of `tracking_token` (the
    visitor's `rp_ref`), or the chosen partner.

    An email that is already a partner's makes nothing: that partner is emailed instead
    (the confirmation link again for an unconfirmed sign-up), and the outcome is KNOWN,
    which the page must not tell apart from CREATED.

    Sign-ups run one at a time (the defaults row is locked), so the rate limit and the
    email check cannot be raced. Raises SignupRateLimited, or ValidationError naming the
    field, before anything is written.
    """
    unknown = set(data) - set(SIGNUP_FIELDS_IN)
    if unknown:
        raise ValidationError({name: "Not a sign-up field." for name in unknown})
    password = data.get("password") or ""
    # Hashing is slow: done before the lock, and for a known email as well as a new one, so
    # the answer's timing does not tell them apart either.
    password_hash = make_password(password)
    defaults = ReferralDefaults.objects.select_for_update().get(pk=ReferralDefaults.SINGLETON_PK)
    if not defaults.signup_enabled:
        raise ValidationError("Partner sign-up is closed.")
    if signup_attempts_exhausted(ip=ip, at=at):
        raise SignupRateLimited

    name = (data.get("name") or "").strip()
    email = (data.get("email") or "").strip()
    code = partner_code_from_name(name, also_taken=_username_taken)
    partner = Partner(code=code, name=name, email=email, status=PartnerStatus.PENDING)
    signup = PartnerSignup(
        website=(data.get("website") or "").strip(),
        promotion=(data.get("promotion") or "").strip(),
        ip=ip,
        user_agent=user_agent[:256],
        created_at=at,
    )
    user_model = get_user_model()
    errors: dict[str, list[str]] = {}
    for row, exclude in ((partner, ["parent", "program", "user"]), (signup, ["partner"])):
        try:
            row.full_clean(exclude=exclude)
        except ValidationError as error:
            errors.update(error.message_dict)
    try:
        validate_password(password, user_model(username=code, email=email, first_name=name))
    except ValidationError as error:
        errors["password"] = error.messages
    if errors:
        raise ValidationError(errors)

    signup_attempt_record(ip=ip, at=at)  # a known email counts as much as a new one
    known = Partner.objects.filter(email__iexact=email).select_related("signup").order_by("pk")
    known = known.first()
    if known is not None:
        unconfirmed = (
            known.status == PartnerStatus.PENDING
            and hasattr(known, "signup")
            and not known.signup.email_confirmed
        )
        kind = SignupEmailKind.CONFIRM if unconfirmed else SignupEmailKind.KNOWN
        _signup_emails_queue(partner_ids=[known.pk], kind=kind, at=at, repeat=SIGNUP_EMAIL_REPEAT)
        return SignupResult(outcome=SignupOutcome.KNOWN, partner=None)

    referrer_id = signup_referrer_id(
        clicks=decode_token(tracking_token), selection=defaults.partner_selection, at=at
    )
    fixed = defaults.signup_parent_partner
    partner.parent_id = signup_parent_id(
        mode=defaults.signup_parent,
        referrer_id=referrer_id,
        fixed_id=fixed.pk if fixed else None,
        fixed_status=fixed.status if fixed else None,
    )
    partner.user = user_model.objects.create(username=code, email=email, password=password_hash)
    partner.save()
    signup.partner = partner
    signup.referred_by_id = referrer_id
    signup.save()
    _signup_emails_queue(partner_ids=[partner.pk], kind=SignupEmailKind.CONFIRM, at=at)
    return SignupResult(outcome=SignupOutcome.CREATED, partner=partner)


def partner_signup_confirm(*, token: str, at: datetime) -> str:
    """The partner opened the link of their confirmation email and confirmed it.

    With `signup_auto_approve` on, a pending partner is approved at once. Confirming again
    changes nothing. Returns a ConfirmOutcome.
    """
    max_age = timedelta(days=settings.SIGNUP_CONFIRM_DAYS)
    try:
        claim = confirm_token_read(token, max_age=max_age)
    except ConfirmLinkExpired:
        return ConfirmOutcome.EXPIRED
    if claim is None:
        return ConfirmOutcome.INVALID
    with transaction.atomic():
        signup = (
            PartnerSignup.objects.select_for_update()
            .select_related("partner")
            .filter(partner_id=claim.partner_id)
            .first()
        )
        # A link sent before the partner's email changed confirms nothing.
        if signup is None or signup.partner.email.lower() != claim.email:
            return ConfirmOutcome.INVALID
        partner = signup.partner
        if signup.email_confirmed_at is None:
            signup.email_confirmed_at = at
            signup.save(update_fields=["email_confirmed_at"])
            auto = ReferralDefaults.objects.values_list("signup_auto_approve", flat=True).get(
                pk=ReferralDefaults.SINGLETON_PK
            )
            if auto and partner.status == PartnerStatus.PENDING:
                partners_approve(
                    partners=Partner.objects.filter(pk=partner.pk), actor=AUTO_APPROVAL, at=at
                )
                partner.status = PartnerStatus.ACTIVE
    if partner.status == PartnerStatus.ACTIVE:
        return ConfirmOutcome.ACTIVE
    if partner.status == PartnerStatus.PENDING:
        return ConfirmOutcome.PENDING
    return ConfirmOutcome.CLOSED


def _lock_for_decision(partners: QuerySet[Partner]) -> tuple[list[tuple[int, str]], dict]:
    """The chosen partners' ids and statuses, locked; and which of them signed up with an
    email not confirmed yet."""
    rows = list(
        Partner.objects.select_for_update()
        .filter(pk__in=partners.values("pk"))
        .order_by("pk")
        .values_list("pk", "status")
    )
    confirmed = dict(
        PartnerSignup.objects.filter(partner_id__in=[pk for pk, _ in rows]).values_list(
            "partner_id", "email_confirmed_at"
        )
    )
    unconfirmed = {pk for pk, at in confirmed.items() if at is None}
    return rows, unconfirmed


@transaction.atomic
def partners_approve(*, partners: QuerySet[Partner], actor: str, at: datetime) -> SignupDecision:
    """Approve pending (or rejected) partners: they become active, can log in, and get an
    email. Partners who signed up are approved only once their email is confirmed."""
    rows, unconfirmed = _lock_for_decision(partners)
    open_ = [pk for pk, status in rows if status in NO_LOGIN_STATUSES]
    chosen = [pk for pk in open_ if pk not in unconfirmed]
    if chosen:
        Partner.objects.filter(pk__in=chosen).update(status=PartnerStatus.ACTIVE)
        PartnerSignup.objects.filter(partner_id__in=chosen).update(
            decided_at=at, decided_by=actor, decision_note=""
        )
        _signup_emails_queue(partner_ids=chosen, kind=SignupEmailKind.APPROVED, at=at)
    return SignupDecision(
        decided=len(chosen),
        unconfirmed=len(open_) - len(chosen),
        not_pending=len(rows) - len(open_),
    )


@transaction.atomic
def partners_reject(
    *, partners: QuerySet[Partner], actor: str, at: datetime, note: str = ""
) -> SignupDecision:
    """Turn down pending partners: they become rejected (never credited, no login). Those
    with a confirmed email (or made by staff) get an email, with `note` when given; an
    address nobody confirmed is not written to."""
    note = note.strip()
    if len(note) > 1000:
        raise ValidationError({"note": "Keep the note under 1,000 characters."})
    rows, unconfirmed = _lock_for_decision(partners)
    chosen = [pk for pk, status in rows if status == PartnerStatus.PENDING]
    if chosen:
        Partner.objects.filter(pk__in=chosen).update(status=PartnerStatus.REJECTED)
        PartnerSignup.objects.filter(partner_id__in=chosen).update(
            decided_at=at, decided_by=actor, decision_note=note
        )
        emailed = [pk for pk in chosen if pk not in unconfirmed]
        _signup_emails_queue(partner_ids=emailed, kind=SignupEmailKind.REJECTED, at=at, note=note)
    return SignupDecision(decided=len(chosen), not_pending=len(rows) - len(chosen))


def _signup_emails_queue(
    *,
    partner_ids: list[int],
    kind: str,
    at: datetime,
    note: str = "",
    repeat: timedelta | None = None,
) -> list[SignupEmail]:
    """Log one email per partner and send them by a task after the commit. With `repeat`,
    a partner who got this kind of email within that time gets none."""
    if repeat is not None:
        recent = set(
            SignupEmail.objects.filter(
                partner_id__in=partner_ids, kind=kind, created_at__gt=at - repeat
            ).values_list("partner_id", flat=True)
        )
        partner_ids = [pk for pk in partner_ids if pk not in recent]
    if not partner_ids:
        return []
    rows = SignupEmail.objects.bulk_create(
        SignupEmail(partner_id=pk, kind=kind, note=note, created_at=at) for pk in partner_ids
    )
    ids = [row.pk for row in rows]
    from .tasks import send_signup_email

    transaction.on_commit(lambda: [send_signup_email.delay(pk) for pk in ids])
    return rows


def signup_email_send(*, email_id: int) -> bool:
    """Send one queued sign-up email; a second run of the same id sends nothing."""
    with transaction.atomic():
        email = (
            SignupEmail.objects.select_for_update(of=("self",))
            .select_related("partner", "partner__signup")
            .filter(pk=email_id, sent_at__isnull=True)
            .first()
        )
        if email is None:
            return False
        context = _signup_email_context(email)
        subject = render_to_string(f"emails/signup_{email.kind}_subject.txt", context).strip()
        body = render_to_string(f"emails/signup_{email.kind}_body.txt", context)
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [email.partner.email])
        email.sent_at = timezone.now()
        email.save(update_fields=["sent_at"])
    return True


def _signup_email_context(email: SignupEmail) -> dict[str, Any]:
    partner = email.partner
    site = settings.SITE_URL
    context = {
        "partner": partner,
        "note": email.note,
        "site_url": site,
        "login_url": site + reverse("partner:login"),
        "password_reset_url": site + reverse("partner:password_reset"),
        "signup_url": site + reverse("signup:form"),
        "confirm_days": settings.SIGNUP_CONFIRM_DAYS,
    }
    if email.kind == SignupEmailKind.CONFIRM:
        token = confirm_token_make(partner_id=partner.pk, email=partner.email)
        context["confirm_url"] = site + reverse("signup:confirm", args=[token])
    if email.kind == SignupEmailKind.APPROVED:
        context["link"] = partner_link(partner)
    return context


# --- Tracking links --------------------------------------------------------------------


@transaction.atomic
def tracking_link_save(*, link: TrackingLink) -> TrackingLink:
    """Create or change a tracking link; making it the default unsets the previous one."""
    link.full_clean(validate_constraints=False)
    if link.is_default:
        TrackingLink.objects.filter(is_default=True).exclude(pk=link.pk).update(is_default=False)
    link.save()
    return link


# --- Coupons (SPEC §11) ----------------------------------------------------------------------


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


# --- API keys ------------------------------------------------------------------------------


def api_key_hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_create(*, name: str, created_by: AbstractBaseUser | None = None) -> tuple[ApiKey, str]:
    """Make a key; the raw key is returned once and only its hash is stored."""
    if not name.strip():
        raise ValidationError({"name": "Give the key a name."})
    raw_key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        name=name.strip(),
        prefix=raw_key[:10],
        key_hash=api_key_hash(raw_key),
        created_by=created_by,
    )
    return key, raw_key


def api_keys_revoke(*, keys: QuerySet[ApiKey]) -> int:
    return keys.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())


# --- Clicks ------------------------------------------------------------------------------


CLICK_COLUMNS = ("id", "partner", "tracking_link", "ad_code", "ip", "user_agent", "referrer", "at")
# A click's (or a buffered click's) values of CLICK_COLUMNS, as the model holds them.
_click_values = attrgetter(*(Click._meta.get_field(name).attname for name in CLICK_COLUMNS))


def click_record(*, click: Click, duplicate_minutes: int) -> bool:
    """Store one click unless it repeats a click of the same partner, IP address and user
    agent within `duplicate_minutes` (0: every click counts). True if stored.

    One hand-written statement (the check and the insert together): the tracker calls this
    on every click when there is no click buffer (SQLite; PostgreSQL runs `click_track`).
    """
    values = prepared(Click, CLICK_COLUMNS, _click_values(click))
    named = dict(zip(CLICK_COLUMNS, values, strict=True))
    table_name = table(Click)
    sql = (
        f"INSERT INTO {table_name} ({columns(Click, CLICK_COLUMNS)}) "
        f"SELECT {', '.join(['%s'] * len(CLICK_COLUMNS))}"
    )
    params = list(values)
    if duplicate_minutes and click.ip is not None:
        # Each value its own placeholder: a prepared statement gives a placeholder one type,
        # and the user agent is a varchar in the SELECT but text in the comparison.
        [since] = prepared(Click, ("at",), [click.at - timedelta(minutes=duplicate_minutes)])
        sql += (
            f" WHERE NOT EXISTS (SELECT 1 FROM {table_name} c WHERE c.partner_id = %s"
            " AND c.ip = %s AND c.user_agent = %s AND c.at > %s AND c.at <= %s)"
        )
        params += [named["partner"], named["ip"], named["user_agent"], since, named["at"]]
    else:
        sql += " WHERE 1 = 1"  # SQLite needs a WHERE before ON CONFLICT in INSERT ... SELECT
    sql += " ON CONFLICT (id) DO NOTHING RETURNING 1"
    return bool(execute(sql, params))


# The tracker's statement without a click buffer (PostgreSQL only: a data-modifying CTE,
# arrays, jsonb), run by `execute` (prepared once per database connection, unless the
# prepared-statements setting is off) so that a click costs no parsing or planning. Its
# parameters, with their types (each cast where it stands, so that a prepared statement
# takes them, the list of readings included):
_CLICK_TRACK_PARAMETERS = {
    "defaults_id": "integer",
    "readings": "text[]",  # possible_codes(code): the tails of the code that could be codes
    "code": "text",  # the code lower-cased
    "active": "text",
    "link_code": "text",
    "id": "uuid",
    "ad_code": "text",
    "ip": "inet",
    "user_agent": "text",
    "referrer": "text",
    "at": "timestamptz",
    "record": "boolean",
}
# `p`: of the readings naming an active partner, the one whose prefix part (the code in
# front of it) comes first in [current prefix, no prefix, earlier prefixes...]: the order
# of `code_candidates`. `stored`: the click, unless it repeats one of the same partner, IP
# address and user agent within the duplicate window (as `click_record`). Table and
# column names come from the models; every value is a parameter.
_CLICK_TRACK_BODY = """
WITH d AS (
    SELECT ARRAY[LOWER(code_prefix), '']
           || ARRAY(SELECT LOWER(e) FROM jsonb_array_elements_text(earlier_prefixes) e)
           AS known,
           duplicate_click_minutes AS minutes
      FROM {defaults_table}
     WHERE id = {defaults_id}
), p AS (
    SELECT p.id, p.cookie_days
      FROM d, {partner_table} p
     WHERE LOWER(p.code) = ANY({readings}) AND p.status = {active}
       AND array_position(d.known, LEFT({code}, LENGTH({code}) - LENGTH(p.code))) IS NOT NULL
     ORDER BY array_position(d.known, LEFT({code}, LENGTH({code}) - LENGTH(p.code)))
     LIMIT 1
), l AS (
    SELECT id, destination FROM {link_table} WHERE code = {link_code}
), stored AS (
    INSERT INTO {click_table} ({click_columns})
    SELECT {id}, p.id, (SELECT id FROM l), {ad_code}, {ip}, {user_agent}, {referrer}, {at}
      FROM p
     WHERE {record} AND NOT EXISTS (
           SELECT 1 FROM {click_table} c
            WHERE c.partner_id = p.id AND c.ip = {ip} AND c.user_agent = {user_agent}
              AND c.at > {at} - (SELECT minutes FROM d) * INTERVAL '1 minute'
              AND c.at <= {at})
        ON CONFLICT (id) DO NOTHING
    RETURNING 1
)
SELECT p.id, p.cookie_days, l.id, l.destination,
       (SELECT destination FROM {link_table} WHERE is_default LIMIT 1),
       d.minutes, EXISTS (SELECT 1 FROM stored)
  FROM d LEFT JOIN p ON TRUE LEFT JOIN l ON TRUE
"""
_CLICK_TRACK = _CLICK_TRACK_BODY.format(
    defaults_table=ReferralDefaults._meta.db_table,
    partner_table=Partner._meta.db_table,
    link_table=TrackingLink._meta.db_table,
    click_table=Click._meta.db_table,
    click_columns=", ".join(f'"{Click._meta.get_field(n).column}"' for n in CLICK_COLUMNS),
    **{name: f"%({name})s::{kind}" for name, kind in _CLICK_TRACK_PARAMETERS.items()},
)


def _click_track_portable(
    *, code: str, link_code: str | None, click: Click, record: bool
) -> TrackerTarget:
    """`click_track` on any database: `tracker_target`, then `click_record` (two round trips)."""
    target = tracker_target(code=code, link_code=link_code)
    stored = False
    if record and target.partner_id is not None:
        click.partner_id = target.partner_id
        click.tracking_link_id = target.tracking_link_id
        stored = click_record(click=click, duplicate_minutes=target.duplicate_click_minutes)
    return replace(target, click_stored=stored)


def click_track(*, code: str, link_code: str | None, click: Click, record: bool) -> TrackerTarget:
    """Resolve the code of a /go/ URL and, when `record` and it names an active partner,
    store `click` for that partner and tracking link: what the tracker does without a
    click buffer.

    `click` is the click as the tracker saw it (id, time, IP address, user agent, ad code,
    referrer); its partner and tracking link are set here from the code. It is stored as
    `click_record` would store it: not when it repeats a click of the same partner, IP
    address and user agent within the defaults' `duplicate_click_minutes`; the answer's
    `click_stored` says whether it was.

    On PostgreSQL this is ONE statement and one round trip: the defaults row, the partner
    among the code's readings that the known prefixes allow (ranked as `code_candidates`
    ranks them), the tracking link, the default destination, and the insert with its
    duplicate check, run by `execute` (prepared once per connection, unless the
    prepared-statements setting is off). Elsewhere (SQLite, the embedded default) it is
    `tracker_target` then `click_record`, two round trips.
    """
    if connection.vendor != "postgresql":
        return _click_track_portable(code=code, link_code=link_code, click=click, record=record)
    params = {
        "defaults_id": ReferralDefaults.SINGLETON_PK,
        "readings": possible_codes(code),
        "code": code.lower(),
        "active": PartnerStatus.ACTIVE.value,
        "link_code": link_code,
        "id": click.id,
        "ad_code": click.ad_code,
        "ip": click.ip,
        "user_agent": click.user_agent,
        "referrer": click.referrer,
        "at": click.at,
        "record": record,
    }
    [row] = execute(_CLICK_TRACK, params, arrays=True)
    partner_id, cookie_days, link_id, destination, default_destination, minutes, stored = row
    if partner_id is not None:
        click.partner_id, click.tracking_link_id = partner_id, link_id
    return TrackerTarget(
        partner_id=partner_id,
        cookie_days=cookie_days,
        tracking_link_id=link_id,
        destination=destination,
        default_destination=default_destination,
        duplicate_click_minutes=minutes,
        click_stored=stored,
    )


def clicks_store(*, clicks: "list[Click | BufferedClick]", duplicate_minutes: int = 0) -> int:
    """Store a batch of clicks at once: repeats (same partner, IP address and user agent
    within `duplicate_minutes`, in the batch or already stored) are left out, and a click
    whose id is already stored is skipped. Returns how many clicks were new or repeats
    considered; re-storing the same batch stores nothing twice. The clicks are model
    instances or the buffer's `BufferedClick` rows."""
    if not clicks:
        return 0
    clicks = sorted(clicks, key=lambda c: (c.at, c.id))
    if duplicate_minutes:
        window = timedelta(minutes=duplicate_minutes)
        earliest = clicks[0].at - window
        last_seen = {}
        batch = {c.id for c in clicks}
        for click_id, partner_id, ip, user_agent, at in _clicks_recent(
            since=earliest,
            partners={c.partner_id for c in clicks},
            ips={c.ip for c in clicks if c.ip is not None},
        ):
            if click_id in batch:  # stored by an earlier run of this batch
                continue
            key = (partner_id, ip, user_agent)
            last_seen[key] = max(at, last_seen.get(key, at))
        kept = []
        for click in clicks:
            key = (click.partner_id, click.ip, click.user_agent)
            seen = last_seen.get(key)
            if click.ip is not None and seen is not None and click.at - seen < window:
                continue
            last_seen[key] = click.at
            kept.append(click)
        clicks = kept
    _clicks_insert(clicks)
    return len(clicks)


def _clicks_recent(*, since: datetime, partners: set[int], ips: set[str]) -> Iterable[tuple]:
    """(id, partner, IP address, user agent, time) of the clicks stored after `since` by
    these partners from these IP addresses. On PostgreSQL the sets go as two arrays (the
    ORM's IN lists of a batch's thousands of values cost more than the rest of the drain)."""
    if connection.vendor != "postgresql":
        return Click.objects.filter(at__gt=since, partner_id__in=partners, ip__in=ips).values_list(
            "id", "partner_id", "ip", "user_agent", "at"
        )
    return execute(
        f"SELECT id, partner_id, HOST(ip), user_agent, at FROM {table(Click)} "
        "WHERE at > %s AND partner_id = ANY(%s::bigint[]) AND ip = ANY(%s::inet[])",
        [since, sorted(partners), sorted(ips)],
    )


CLICKS_INSERT_ROWS = 1000  # clicks per INSERT statement


def _clicks_insert(clicks: "list[Click | BufferedClick]") -> None:
    """INSERT … ON CONFLICT (id) DO NOTHING of the clicks, a thousand rows a statement (the
    ORM's `bulk_create` spent 21 µs of CPU per click, most of the drain's). The values are
    those the ORM sends: a blank IP address is NULL."""
    for start in range(0, len(clicks), CLICKS_INSERT_ROWS):
        chunk = clicks[start : start + CLICKS_INSERT_ROWS]
        rows = [_click_values(click) for click in chunk]
        insert(Click, CLICK_COLUMNS, rows, returning=(), suffix="ON CONFLICT (id) DO NOTHING")


def clicks_drain(*, batch_size: int = 5000, max_batches: int = 100) -> int:
    """Move buffered clicks from Redis into the database, a batch at a time.

    Each batch is read from the head of the list, stored in one transaction, and trimmed
    off the list only after the commit. One drain runs at a time (a Redis lock); if it dies
    mid-batch the batch stays and the next drain stores it, skipping clicks already stored
    (by id). Returns how many buffered clicks were taken off the list.
    """
    from .click_buffer import buffer_key, click_buffer, click_from_bytes, drain_lock_key

    buffer = click_buffer()
    if buffer is None:
        return 0
    lock = buffer.redis.lock(drain_lock_key(), timeout=300, blocking=False)
    if not lock.acquire():
        return 0
    taken = 0
    try:
        minutes = ReferralDefaults.objects.values_list("duplicate_click_minutes", flat=True).get(
            pk=ReferralDefaults.SINGLETON_PK
        )
        for _ in range(max_batches):
            raw = buffer.redis.lrange(buffer_key(), 0, batch_size - 1)
            if not raw:
                break
            clicks = [c for c in map(click_from_bytes, raw) if c is not None]
            with transaction.atomic():
                clicks_store(clicks=clicks, duplicate_minutes=minutes)
            buffer.redis.ltrim(buffer_key(), len(raw), -1)
            taken += len(raw)
            if len(raw) < batch_size:
                break
    finally:
        lock.release()
    return taken


# --- Click volume flags (SPEC §9 "Guards") ----------------------------------------------------


def click_flag_window(at: datetime) -> datetime:
    """The start of the last whole hour before `at` (UTC): 14:37 -> 13:00."""
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - ClickFlag.WINDOW


# Flag every partner whose clicks in the window exceed the defaults' click_flag_per_hour, in
# one statement: the threshold, the count per partner (over click_at_idx) and the insert.
# A partner flagged for that window already is left as it is (ON CONFLICT DO NOTHING), so
# running it again, or twice at once, flags once. Table names come from the models; every
# value is a parameter.
_CLICK_FLAGS_CREATE = f"""
INSERT INTO {ClickFlag._meta.db_table}
       (partner_id, window_start, clicks, threshold, created_at, reviewed_by, note)
SELECT c.partner_id, %(start)s, COUNT(*), d.click_flag_per_hour, %(now)s, '', ''
  FROM {Click._meta.db_table} c, {ReferralDefaults._meta.db_table} d
 WHERE d.id = %(defaults_id)s AND d.click_flag_per_hour IS NOT NULL
   AND c.at >= %(start)s AND c.at < %(end)s
 GROUP BY c.partner_id, d.click_flag_per_hour
HAVING COUNT(*) > d.click_flag_per_hour
    ON CONFLICT (partner_id, window_start) DO NOTHING
RETURNING partner_id
"""


def click_flags_create(*, at: datetime) -> int:
    """Flag, for staff review, every partner with more clicks than the defaults'
    `click_flag_per_hour` in the last whole hour before `at` (nothing when it is empty).

    Clicks are those stored (repeats within `duplicate_click_minutes` were never stored,
    bots never recorded). One statement whatever the number of clicks or partners; safe to
    run again and at once: a partner gets one flag per hour. Nothing is blocked: the
    partner's links and clicks go on as before. Returns how many flags are new.
    """
    start = click_flag_window(at)
    moment = Click._meta.get_field("at")  # times as the database stores them (also SQLite)
    params = {
        "defaults_id": ReferralDefaults.SINGLETON_PK,
        "start": moment.get_db_prep_value(start, connection),
        "end": moment.get_db_prep_value(start + ClickFlag.WINDOW, connection),
        "now": moment.get_db_prep_value(timezone.now(), connection),
    }
    return len(execute(_CLICK_FLAGS_CREATE, params))


CLICK_FLAG_NOTE_MAX = 1000


def click_flags_review(
    *, flags: QuerySet[ClickFlag], actor: str, at: datetime, note: str = ""
) -> int:
    """Mark the chosen open flags reviewed by `actor`, with an optional note (flags reviewed
    before keep their reviewer and note). Returns how many were open."""
    note = note.strip()
    if len(note) > CLICK_FLAG_NOTE_MAX:
        raise ValidationError({"note": "Keep the note under 1,000 characters."})
    return flags.filter(reviewed_at__isnull=True).update(
        reviewed_at=at, reviewed_by=actor, note=note
    )


# --- Personal data (issue 7, docs/privacy.md) ------------------------------------------------


def clicks_erase_old_ips(
    *, at: datetime, retention_days: int | None = None, batch_size: int = 10_000
) -> int:
    """Blank the raw IP address of every click made more than `retention_days` (default
    CLICK_IP_RETENTION_DAYS) before `at`. The rest of the click stays: it still counts in
    reports and through the visitor's cookie; only attribution by IP address, which never
    looks further back than IP_ATTRIBUTION_MAX_DAYS, cannot use it any more.

    A batch at a time, each its own short statement, so the tracker's inserts never wait
    long. Safe to run twice; returns how many clicks lost their address.
    """
    days = settings.CLICK_IP_RETENTION_DAYS if retention_days is None else retention_days
    old = Click.objects.filter(at__lt=at - timedelta(days=days), ip__isnull=False)
    erased = 0
    while True:
        ids = list(old.values_list("pk", flat=True)[:batch_size])
        if not ids:
            return erased
        erased += Click.objects.filter(pk__in=ids, ip__isnull=False).update(ip=None)
        if len(ids) < batch_size:
            return erased


ERASED_NAME = "Erased partner"


def partner_erased_code(partner: Partner) -> str:
    """The code an erased partner keeps: it says nothing about the person, and it is free
    (no partner code may start with a letter and hold only this id otherwise)."""
    return f"erased-{partner.pk}"


def partner_is_erased(partner: Partner) -> bool:
    return partner.code == partner_erased_code(partner) and partner.name == ERASED_NAME


def _audit(partner: Partner, acting_user: AbstractBaseUser | None, message: str) -> None:
    """A line in the partner's admin history: who did what to their personal data."""
    from django.contrib.admin.models import CHANGE, LogEntry

    if acting_user is None or not acting_user.is_authenticated:
        return
    LogEntry.objects.log_actions(
        user_id=acting_user.pk,
        queryset=[partner],
        action_flag=CHANGE,
        change_message=message,
        single_object=True,
    )


def _audit_names_erase(partner: Partner) -> None:
    """The admin history names each entry's object as it was then ("Jane Doe (jane)"):
    rename the partner's entries to what the partner is called now."""
    from django.contrib.admin.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Partner), object_id=str(partner.pk)
    ).update(object_repr=str(partner)[:200])


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def partner_export(
    *, partner: Partner, acting_user: AbstractBaseUser | None, at: datetime
) -> dict[str, Any]:
    """Everything the program holds about one partner as a person, for a data access
    request: a JSON-ready dict (money as decimal strings, times in ISO 8601).

    Their profile, login, sign-up and the number of clicks on their links here; then each
    section of settings.PARTNER_EXPORT_SECTIONS (the ledger: commissions, payments,
    notifications). Nothing about anyone else: no visitor's IP address, no customer's
    email, no other partner's name. The export is recorded in the partner's admin history.
    """
    partner = Partner.objects.select_related("parent", "program", "user").get(pk=partner.pk)
    user = partner.user
    signup = PartnerSignup.objects.filter(partner=partner).first()
    clicks = Click.objects.filter(partner=partner).aggregate(
        count=Count("pk"), first=Min("at"), last=Max("at")
    )
    data: dict[str, Any] = {
        "format": "referral-program partner export 1",
        "exported_at": at.isoformat(),
        "partner": {
            "code": partner.code,
            "name": partner.name,
            "email": partner.email,
            "status": partner.status,
            "parent": partner.parent.code if partner.parent else None,
            "program": partner.program.name if partner.program else None,
            "cookie_days": partner.cookie_days,
            "notify_lead": partner.notify_lead,
            "notify_sale": partner.notify_sale,
            "created_at": _iso(partner.created_at),
            "link": partner_link(partner),
        },
        "login": None
        if user is None
        else {
            "username": user.get_username(),
            "email": user.email,
            "date_joined": _iso(user.date_joined),
            "last_login": _iso(user.last_login),
        },
        "signup": None
        if signup is None
        else {
            "website": signup.website,
            "promotion": signup.promotion,
            "ip": signup.ip,
            "user_agent": signup.user_agent,
            "created_at": _iso(signup.created_at),
            "email_confirmed_at": _iso(signup.email_confirmed_at),
            "decided_at": _iso(signup.decided_at),
            "decision_note": signup.decision_note,
        },
        "clicks": {
            "count": clicks["count"],
            "first_at": _iso(clicks["first"]),
            "last_at": _iso(clicks["last"]),
        },
    }
    for path in settings.PARTNER_EXPORT_SECTIONS:
        data.update(import_string(path)(partner))
    _audit(partner, acting_user, "Personal data exported.")
    return data


@transaction.atomic
def partner_erase(*, partner: Partner, acting_user: AbstractBaseUser | None) -> Partner:
    """Erase a partner's personal data for good, keeping the ledger whole.

    Blanked: name (to "Erased partner"), email, the sign-up's website, promotion text, IP
    address, user agent and staff note, staff notes in sign-up emails. The code becomes
    `erased-<id>` (the code was often made from the name; links handed out under it stop
    counting). The login is deleted (its sessions end with it; a staff login is only
    unlinked) with its failed-login records. The partner is made inactive with both email
    switches off. Kept: the partner row and its place in the partner tree, every
    commission, clawback and payment (the ledger and payout CSVs now show the erased
    partner), clicks without personal data of the partner. Erasing twice changes nothing.
    """
    from axes.models import AccessAttempt

    partner = (
        Partner.objects.select_for_update(of=("self",)).select_related("user").get(pk=partner.pk)
    )
    user = partner.user
    blank = {
        "code": partner_erased_code(partner),
        "name": ERASED_NAME,
        "email": "",
        "status": PartnerStatus.INACTIVE,
        "notify_lead": False,
        "notify_sale": False,
        "user": None,
    }
    if user is None and all(getattr(partner, name) == value for name, value in blank.items()):
        return partner
    if user is not None:
        # Failed logins are counted under the login's username (partners.lockout).
        AccessAttempt.objects.filter(username=user.get_username().lower()).delete()
    Partner.objects.filter(pk=partner.pk).update(**blank)
    PartnerSignup.objects.filter(partner=partner).update(
        website="", promotion="", ip=None, user_agent="", decision_note=""
    )
    SignupEmail.objects.filter(partner=partner).update(note="")
    for hook in settings.PARTNER_ERASE_HOOKS:  # e.g. the payout details (commissions)
        import_string(hook)(partner)
    if user is not None and not (user.is_staff or user.is_superuser):
        user.delete()  # a staff login is not the partner's to lose: it is only unlinked
    partner.refresh_from_db()
    _audit_names_erase(partner)
    _audit(partner, acting_user, "Personal data erased.")
    return partner
