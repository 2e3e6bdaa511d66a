"""Every write of the partners app: defaults, programs, partners, links, API keys."""

import hashlib
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.text import slugify

from .models import (
    DEFAULTS_FIELDS,
    LEVELS,
    ApiKey,
    Click,
    DefaultsChange,
    Partner,
    PartnerStatus,
    Program,
    ProgramRate,
    ReferralDefaults,
    TrackingLink,
)
from .selectors import partner_ancestor_ids, partner_code_taken

PROGRAM_FIELDS = (
    "name",
    "notes",
    "priority",
    "unused_lead_amount",
    "unused_lead_percent",
    "unused_sale_amount",
    "unused_sale_percent",
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
            changes[name] = {"old": old, "new": value}
            setattr(defaults, name, value)
    if not changes:
        return DefaultsUpdateResult(changes={}, programs_updated=0)
    defaults.full_clean(validate_constraints=False)  # the one constraint: its pk is 1
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


def partner_code_from_name(name: str) -> str:
    """A free code made from the name: 'Jane O'Neil' -> 'jane-oneil', then -2, -3..."""
    base = slugify(name)[:28].strip("-_") or "partner"
    if not base[0].isalpha():
        base = f"p-{base}"[:28]
    base = base.ljust(4, "0")
    candidate, n = base, 1
    while partner_code_taken(code=candidate):
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
        above = set(partner_ancestor_ids(parent.pk))
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


# --- Tracking links --------------------------------------------------------------------


@transaction.atomic
def tracking_link_save(*, link: TrackingLink) -> TrackingLink:
    """Create or change a tracking link; making it the default unsets the previous one."""
    link.full_clean(validate_constraints=False)
    if link.is_default:
        TrackingLink.objects.filter(is_default=True).exclude(pk=link.pk).update(is_default=False)
    link.save()
    return link


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


def click_record(*, click: Click, duplicate_minutes: int) -> bool:
    """Store one click unless it repeats a click of the same partner, IP address and user
    agent within `duplicate_minutes` (0: every click counts). True if stored.

    One hand-written statement (the check and the insert together): the tracker calls this
    on every click when there is no click buffer.
    """
    fields = [Click._meta.get_field(name) for name in CLICK_COLUMNS]
    values = [f.get_db_prep_save(f.pre_save(click, add=True), connection) for f in fields]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = Click._meta.db_table
    sql = f"INSERT INTO {table} ({columns}) SELECT {', '.join(['%s'] * len(fields))}"
    params = list(values)
    if duplicate_minutes and click.ip is not None:
        at = fields[-1]
        since = click.at - timedelta(minutes=duplicate_minutes)
        sql += (
            f" WHERE NOT EXISTS (SELECT 1 FROM {table} c WHERE c.partner_id = %s AND c.ip = %s"
            " AND c.user_agent = %s AND c.at > %s AND c.at <= %s)"
        )
        params += [
            values[1],
            values[4],
            values[5],
            at.get_db_prep_value(since, connection),
            values[7],
        ]
    else:
        sql += " WHERE 1 = 1"  # SQLite needs a WHERE before ON CONFLICT in INSERT ... SELECT
    sql += " ON CONFLICT (id) DO NOTHING"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount == 1


def clicks_store(*, clicks: list[Click], duplicate_minutes: int = 0) -> int:
    """Store a batch of clicks at once: repeats (same partner, IP address and user agent
    within `duplicate_minutes`, in the batch or already stored) are left out, and a click
    whose id is already stored is skipped. Returns how many clicks were new or repeats
    considered; re-storing the same batch stores nothing twice."""
    if not clicks:
        return 0
    clicks = sorted(clicks, key=lambda c: (c.at, c.id))
    if duplicate_minutes:
        window = timedelta(minutes=duplicate_minutes)
        earliest = clicks[0].at - window
        last_seen = {}
        for partner_id, ip, user_agent, at in (
            Click.objects.filter(
                at__gt=earliest,
                partner_id__in={c.partner_id for c in clicks},
                ip__in={c.ip for c in clicks if c.ip is not None},
            )
            .exclude(id__in=[c.id for c in clicks])
            .values_list("partner_id", "ip", "user_agent", "at")
        ):
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
    Click.objects.bulk_create(clicks, ignore_conflicts=True, batch_size=1000)
    return len(clicks)


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
