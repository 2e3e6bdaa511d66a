"""Reads for the commissions engine: load what a decision needs into frozen values."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q

from partners.models import Click, Partner, PartnerStatus, Program, ReferralDefaults

from .attribution import FIRST, PartnerState, Policy, Touch
from .calculation import LEAD, SALE, ChainMember, Rate, Terms
from .models import Contact, Referral

# How many clicks from one IP address attribution looks at (the latest ones).
IP_CLICKS_LIMIT = 100


@dataclass(frozen=True)
class EngineSettings:
    policy: Policy
    skip_notifications: bool


def engine_settings() -> EngineSettings:
    row = ReferralDefaults.objects.values(
        "partner_selection", "tracking_method", "use_ip_address", "skip_notifications"
    ).get(pk=ReferralDefaults.SINGLETON_PK)
    return EngineSettings(
        policy=Policy(
            partner_selection=row["partner_selection"],
            tracking_method=row["tracking_method"],
            use_ip_address=row["use_ip_address"],
        ),
        skip_notifications=row["skip_notifications"],
    )


def partner_states(ids: Iterable[int]) -> dict[int, PartnerState]:
    ids = set(ids)
    if not ids:
        return {}
    rows = Partner.objects.filter(pk__in=ids).values_list("id", "status", "cookie_days")
    return {
        pk: PartnerState(id=pk, active=status == PartnerStatus.ACTIVE, cookie_days=days)
        for pk, status, days in rows
    }


def history_touches(*, contact: Contact, at: datetime, rule: str) -> tuple[list[Touch], dict]:
    """The one history entry the rule would pick among those that count, with its partner."""
    entries = (
        Referral.objects.filter(
            contact=contact, set_at__lte=at, partner__status=PartnerStatus.ACTIVE
        )
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=at))
        .order_by(*(("set_at", "id") if rule == FIRST else ("-set_at", "-id")))
        .values_list("id", "partner_id", "set_at", "expires_at", "partner__cookie_days")[:1]
    )
    touches, partners = [], {}
    for pk, partner_id, set_at, expires_at, cookie_days in entries:
        touches.append(Touch(ref=str(pk), partner_id=partner_id, at=set_at, expires_at=expires_at))
        partners[partner_id] = PartnerState(id=partner_id, active=True, cookie_days=cookie_days)
    return touches, partners


def ip_touches(*, ip: str, at: datetime) -> tuple[list[Touch], dict]:
    """Recent clicks of active partners from one IP address, with their partners."""
    since = at - timedelta(days=settings.IP_ATTRIBUTION_MAX_DAYS)
    clicks = (
        Click.objects.filter(ip=ip, at__lte=at, at__gte=since, partner__status=PartnerStatus.ACTIVE)
        .order_by("-at")
        .values_list("id", "partner_id", "at", "partner__cookie_days")[:IP_CLICKS_LIMIT]
    )
    touches, partners = [], {}
    for pk, partner_id, click_at, cookie_days in clicks:
        touches.append(Touch(ref=pk.hex, partner_id=partner_id, at=click_at))
        partners[partner_id] = PartnerState(id=partner_id, active=True, cookie_days=cookie_days)
    return touches, partners


@dataclass(frozen=True)
class Chain:
    """The credited partner and up to two above it, and the program that pays them."""

    members: tuple[ChainMember, ...]
    has_parent: bool
    program_id: int | None


def partner_chain(partner_id: int) -> Chain:
    """One query: the partner, its parent and grandparent (SPEC levels 1..3)."""
    partner = Partner.objects.select_related("parent__parent").get(pk=partner_id)
    members, level, current = [], 1, partner
    while current is not None and level <= 3:
        members.append(ChainMember(current.pk, level, current.status == PartnerStatus.ACTIVE))
        current, level = current.parent, level + 1
    return Chain(
        members=tuple(members),
        has_parent=partner.parent_id is not None,
        program_id=partner.program_id,
    )


def program_terms(program_id: int | None) -> Terms | None:
    """The program (or the default one: lowest priority) with its rates, in one query."""
    programs = Program.objects.prefetch_related("rates")
    program = (
        programs.filter(pk=program_id).first() if program_id is not None else None
    ) or programs.order_by("priority", "id").first()
    if program is None:
        return None
    levels = {rate.level: rate for rate in program.rates.all()}
    return Terms(
        program_id=program.pk,
        name=program.name,
        levels=program.levels,
        payout_on_lead=program.payout_on_lead,
        payout_on_sale=program.payout_on_sale,
        payout_amount=program.payout_amount,
        payout_percent=program.payout_percent,
        pay_if_unused=program.pay_if_unused,
        rates={
            LEAD: {n: Rate(r.lead_amount, r.lead_percent) for n, r in levels.items()},
            SALE: {n: Rate(r.sale_amount, r.sale_percent) for n, r in levels.items()},
        },
        unused={
            LEAD: Rate(program.unused_lead_amount, program.unused_lead_percent),
            SALE: Rate(program.unused_sale_amount, program.unused_sale_percent),
        },
    )
