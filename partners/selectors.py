"""Reads for the partners app."""

import json
import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from django.conf import settings
from django.db.models import Count, F, Q, QuerySet

from referral_program.db import execute

from .links import partner_url
from .models import (
    LEVELS,
    NO_LOGIN_STATUSES,
    ClickFlag,
    Coupon,
    DefaultsChange,
    Partner,
    PartnerOverride,
    PartnerStatus,
    ProductRate,
    Program,
    ProgramVersion,
    ReferralDefaults,
    SignupEmail,
    SignupEmailKind,
    TrackingLink,
)
from .signup import ReferrerState, referring_partner_id
from .terms import program_terms, terms_changes
from .tokens import TokenClick

PREFIX_MAX = 16
PARTNER_CODE = re.compile(r"[a-z][a-z0-9_-]{3,31}\Z")
# Walking up more parents than this means the data is broken; stop there.


def defaults_get() -> ReferralDefaults:
    """The singleton; the first migration made it, so it is always there."""
    return ReferralDefaults.objects.get(pk=ReferralDefaults.SINGLETON_PK)


def default_program() -> Program | None:
    return Program.objects.order_by("priority", "id").first()


def partner_link(partner: Partner, *, defaults: ReferralDefaults | None = None) -> str:
    """The partner's default URL, with the current prefix and link URL."""
    defaults = defaults or defaults_get()
    return partner_url(code=partner.code, prefix=defaults.code_prefix, link_url=defaults.link_url)


def recruit_link(partner: Partner, *, defaults: ReferralDefaults | None = None) -> str:
    """The partner's link to the sign-up page (SPEC §12 "My recruits"): through the tracker,
    so the visitor's click names the partner as the referring one (SPEC §9)."""
    signup = f"{settings.SITE_URL}/partner/signup/"
    return f"{partner_link(partner, defaults=defaults)}?to={quote(signup, safe='')}"


def partner_links(partner: Partner, *, defaults: ReferralDefaults | None = None) -> list[dict]:
    """The partner's URL for the default destination and for every tracking link."""
    defaults = defaults or defaults_get()
    links = [{"tracking_link": None, "url": partner_link(partner, defaults=defaults)}]
    for tracking_link in TrackingLink.objects.all():
        url = partner_url(
            code=partner.code,
            prefix=defaults.code_prefix,
            link_url=defaults.link_url,
            link_code=tracking_link.code,
        )
        links.append({"tracking_link": tracking_link, "url": url})
    return links


def partners_list() -> QuerySet[Partner]:
    return Partner.objects.select_related("parent", "program")


@dataclass(frozen=True)
class TrackerTarget:
    """What the /go/ tracker needs to know about one click: `tracker_target` reads it, and
    `partners.services.clicks.click_track` reads it while storing the click (`click_stored`)."""

    partner_id: int | None
    cookie_days: int | None
    tracking_link_id: int | None
    destination: str | None
    default_destination: str | None
    duplicate_click_minutes: int = 0
    click_stored: bool = False


def tracker_target(*, code: str, link_code: str | None) -> TrackerTarget:
    """Resolve `{prefix}{code}` to an active partner, and the tracking link's destination.

    The code may carry the current prefix, any earlier one, or none (SPEC §2). One round
    trip in hand-written SQL: this is the hot path, and the ORM would cost more CPU than the
    database does. Every reading of the code that could be a partner code is looked up at
    once, then `code_candidates` picks the one the known prefixes allow.
    """
    readings = possible_codes(code)
    placeholders = ", ".join(["%s"] * len(readings)) or "NULL"
    sql = f"""
        SELECT d.code_prefix, d.earlier_prefixes, d.duplicate_click_minutes,
               (SELECT l.id FROM {TrackingLink._meta.db_table} l WHERE l.code = %s),
               (SELECT l.destination FROM {TrackingLink._meta.db_table} l WHERE l.code = %s),
               (SELECT l.destination FROM {TrackingLink._meta.db_table} l
                 WHERE l.is_default LIMIT 1),
               p.id, p.cookie_days, LOWER(p.code)
          FROM {ReferralDefaults._meta.db_table} d
          LEFT JOIN {Partner._meta.db_table} p
            ON LOWER(p.code) IN ({placeholders}) AND p.status = %s
         WHERE d.id = %s
    """  # table names come from the models; every value is a parameter
    params = [link_code, link_code, *readings, PartnerStatus.ACTIVE, ReferralDefaults.SINGLETON_PK]
    rows = execute(sql, params)
    prefix, earlier, duplicate_minutes, link_id, destination, default_destination = rows[0][:6]
    if isinstance(earlier, str):  # SQLite hands JSON back as text
        earlier = json.loads(earlier)
    found = {row[8]: row for row in rows if row[6] is not None}
    chosen = next((found[c] for c in code_candidates(code, prefix, earlier) if c in found), None)
    return TrackerTarget(
        partner_id=chosen[6] if chosen else None,
        cookie_days=chosen[7] if chosen else None,
        tracking_link_id=link_id,
        destination=destination,
        default_destination=default_destination,
        duplicate_click_minutes=duplicate_minutes,
    )


def possible_codes(code: str) -> list[str]:
    """Every tail of `code` that could be a partner code after a prefix of 0-16 characters."""
    code = code.lower()
    tails = (code[n:] for n in range(min(PREFIX_MAX, len(code)) + 1))
    return [tail for tail in tails if PARTNER_CODE.match(tail)]


def code_candidates(code: str, prefix: str, earlier_prefixes: list[str]) -> list[str]:
    """The partner codes `code` may stand for, lower-cased, most likely first.

    The rule: the current prefix, then no prefix, then the earlier prefixes in order.
    `partners.services.clicks.click_track` applies the same rule in SQL (of the readings that name
    an active partner, the one whose prefix part comes first in that list wins);
    tests/integration/test_tracker_one_trip.py checks that both pick the same partner.
    """
    code = code.lower()
    candidates = []
    for known in [prefix, "", *earlier_prefixes]:
        known = known.lower()
        if code.startswith(known) and len(code) > len(known):
            stripped = code[len(known) :]
            if stripped not in candidates:
                candidates.append(stripped)
    return candidates


# --- Partner sign-up ----------------------------------------------------------------------


def signup_referrer_id(*, clicks: list[TokenClick], selection: str, at: datetime) -> int | None:
    """The referring partner of a visitor's token clicks (one query), or None."""
    ids = {click.partner_id for click in clicks}
    if not ids:
        return None
    states = {
        pk: ReferrerState(status=status, cookie_days=days)
        for pk, status, days in Partner.objects.filter(pk__in=ids).values_list(
            "id", "status", "cookie_days"
        )
    }
    return referring_partner_id(clicks, states, selection=selection, at=at)


class SignupList:
    """The tabs of the staff's Sign-ups page."""

    REVIEW = "review"  # pending, email confirmed (or made by staff): staff decide
    UNCONFIRMED = "unconfirmed"  # pending, waiting for the partner to confirm their email
    REJECTED = "rejected"
    ALL = (REVIEW, UNCONFIRMED, REJECTED)


def signups_filter(show: str) -> Q:
    if show == SignupList.UNCONFIRMED:
        return Q(
            status=PartnerStatus.PENDING,
            signup__isnull=False,
            signup__email_confirmed_at__isnull=True,
        )
    if show == SignupList.REJECTED:
        return Q(status=PartnerStatus.REJECTED)
    return Q(status=PartnerStatus.PENDING) & (
        Q(signup__isnull=True) | Q(signup__email_confirmed_at__isnull=False)
    )


def signups_list(*, show: str) -> QuerySet[Partner]:
    """The partners of one tab, oldest first, with what the page shows of them."""
    return (
        Partner.objects.filter(signups_filter(show))
        .select_related("signup", "signup__referred_by", "parent")
        .order_by("created_at", "pk")
    )


def signups_counts() -> dict[str, int]:
    """How many partners each tab lists (one query)."""
    counts = Partner.objects.filter(status__in=NO_LOGIN_STATUSES).aggregate(
        **{show: Count("pk", filter=signups_filter(show)) for show in SignupList.ALL}
    )
    return counts


# --- Click volume flags (SPEC §9 "Guards") --------------------------------------------------


class ClickFlagList:
    """The tabs of the staff's Click flags page."""

    OPEN = "open"
    REVIEWED = "reviewed"
    ALL = (OPEN, REVIEWED)


def click_flags_list(*, show: str, partner: Partner | None = None) -> QuerySet[ClickFlag]:
    """Open flags (newest hour first) or reviewed ones (latest review first), with their
    partner; optionally one partner's only."""
    flags = ClickFlag.objects.select_related("partner")
    if partner is not None:
        flags = flags.filter(partner=partner)
    if show == ClickFlagList.REVIEWED:
        return flags.filter(reviewed_at__isnull=False).order_by("-reviewed_at", "-pk")
    return flags.filter(reviewed_at__isnull=True).order_by("-window_start", "partner__code")


def click_flags_counts(*, partner: Partner | None = None) -> dict[str, int]:
    """How many flags each tab lists (one query)."""
    flags = ClickFlag.objects.all() if partner is None else partner.click_flags.all()
    return flags.aggregate(
        **{
            ClickFlagList.OPEN: Count("pk", filter=Q(reviewed_at__isnull=True)),
            ClickFlagList.REVIEWED: Count("pk", filter=Q(reviewed_at__isnull=False)),
        }
    )


def click_flags_open_count(*, partner: Partner) -> int:
    return partner.click_flags.filter(reviewed_at__isnull=True).count()


def programs_count() -> int:
    return Program.objects.count()


def programs_list() -> QuerySet[Program]:
    """The programs, each with its `partner_count` (partners enrolled in it), in priority
    order (the staff list)."""
    return Program.objects.annotate(partner_count=Count("enrollments")).order_by("priority", "id")


def programs_with_rates() -> QuerySet[Program]:
    """The programs with their rates and product rates loaded (the API)."""
    return Program.objects.prefetch_related("rates", "product_rates__rates", "renewal_rates")


def program_terms_read(program_id: int) -> dict:
    """The program's pay terms as stored, in the shape of `partners.terms` (five queries)."""
    program = programs_with_rates().get(pk=program_id)
    return program_terms(
        program=program,
        rates=program.rates.all(),
        product_rates=[(product, product.rates.all()) for product in program.product_rates.all()],
        renewal_rates=program.renewal_rates.all(),
    )


def program_versions(program_id: int) -> QuerySet[ProgramVersion]:
    """A program's versions (SPEC §10), the latest first: the API's list."""
    return ProgramVersion.objects.filter(program_id=program_id).order_by("-number")


@dataclass(frozen=True)
class VersionRow:
    """A line of a program's history: a version, and what changed from the one before."""

    version: ProgramVersion
    changes: list[str]


HISTORY_SHOWN = 50


def program_history(program_id: int, *, shown: int = HISTORY_SHOWN) -> list[VersionRow]:
    """The latest `shown` versions of a program, each with what changed in words from the
    version before (`partners.terms.terms_changes`): one query."""
    versions = list(program_versions(program_id)[: shown + 1])
    return [
        VersionRow(
            version=version,
            changes=terms_changes(
                versions[n + 1].terms if n + 1 < len(versions) else None, version.terms
            ),
        )
        for n, version in enumerate(versions[:shown])
    ]


def defaults_changes_list() -> QuerySet[DefaultsChange]:
    """The changes of the referral defaults, newest first."""
    return DefaultsChange.objects.order_by("-at", "-id")


def partner_by_code(code: str) -> QuerySet[Partner]:
    """The partner with this code (none or one), with its parent, program and login loaded:
    the staff partner pages wrap it in get_object_or_404."""
    return Partner.objects.select_related("parent", "program", "user").by_code(code)


def partner_ids_by_code(code: str) -> QuerySet[Partner]:
    """The pk of the partner with this code, as a subquery (`partner__in=`) for filters."""
    return Partner.objects.by_code(code).values("pk")


def partner_alone(partner: Partner) -> QuerySet[Partner]:
    """A queryset of this one partner (to annotate its figures)."""
    return Partner.objects.filter(pk=partner.pk)


def partner_overrides(partner: Partner) -> QuerySet[PartnerOverride]:
    """A partner's overrides (SPEC §10), with their programs, by program, level and sku
    (the one for every item first): the API and the staff partner page."""
    return (
        PartnerOverride.objects.filter(partner=partner)
        .select_related("program")
        .order_by("program__priority", "program_id", "level", F("sku").asc(nulls_first=True), "id")
    )


def coupons_list() -> QuerySet[Coupon]:
    """The coupons with their partner, by code."""
    return Coupon.objects.select_related("partner").order_by("code", "id")


def tracking_links_list() -> QuerySet[TrackingLink]:
    """The tracking links, the default first, then by code."""
    return TrackingLink.objects.order_by("-is_default", "code")


# The columns of a program's product rates as CSV (SPEC §10): the sku, each level's four
# rates, the four pay-if-unused rates.
PRODUCT_RATE_NAMES = ("lead_amount", "lead_percent", "sale_amount", "sale_percent")
PRODUCT_RATE_COLUMNS = (
    "sku",
    *(f"level_{level}_{name}" for level in LEVELS for name in PRODUCT_RATE_NAMES),
    *(f"unused_{name}" for name in PRODUCT_RATE_NAMES),
)


def program_product_rate_rows(program: Program) -> list[list[str]]:
    """A program's product rates as CSV rows in the order of PRODUCT_RATE_COLUMNS, by sku:
    two queries."""
    rows = []
    for rate in ProductRate.objects.filter(program=program).prefetch_related("rates"):
        levels = {level.level: level for level in rate.rates.all()}
        row = [rate.sku]
        for level in LEVELS:
            found = levels.get(level)
            row += [str(getattr(found, name)) if found else "0" for name in PRODUCT_RATE_NAMES]
        row += [str(getattr(rate, f"unused_{name}")) for name in PRODUCT_RATE_NAMES]
        rows.append(row)
    return rows


# --- Partner Center access (SPEC §12) ------------------------------------------------------


class AccessState:
    NONE = "none"  # no login
    INVITED = "invited"  # a login without password yet: an invitation is out
    ACTIVE = "active"  # a login with a password
    REVOKED = "revoked"  # staff revoked access (the login is inactive)
    STAFF = "staff"  # a staff login is linked to the partner (set in the admin)


@dataclass(frozen=True)
class PartnerAccess:
    """What the staff partner page says about the partner's Partner Center login."""

    state: str
    username: str
    last_login: datetime | None
    invited_at: datetime | None  # the last invitation, when staff sent it
    invite_sent_at: datetime | None  # and when its email went (None: not yet)
    can_invite: bool  # not a staff login, and the partner may log in (not a pending sign-up)

    @property
    def can_revoke(self) -> bool:
        return self.state in (AccessState.INVITED, AccessState.ACTIVE)


def partner_access(partner: Partner) -> PartnerAccess:
    """The partner's login and their last invitation (one query, the login's besides)."""
    user = partner.user
    if user is None:
        state = AccessState.NONE
    elif user.is_staff or user.is_superuser:
        state = AccessState.STAFF
    elif not user.is_active:
        state = AccessState.REVOKED
    else:
        state = AccessState.ACTIVE if user.has_usable_password() else AccessState.INVITED
    invitation = (
        SignupEmail.objects.filter(partner=partner, kind=SignupEmailKind.INVITE)
        .order_by("-created_at", "-pk")
        .values_list("created_at", "sent_at")
        .first()
    )
    return PartnerAccess(
        state=state,
        username=user.get_username() if user else "",
        last_login=user.last_login if user else None,
        invited_at=invitation[0] if invitation else None,
        invite_sent_at=invitation[1] if invitation else None,
        can_invite=state != AccessState.STAFF and partner.status not in NO_LOGIN_STATUSES,
    )
