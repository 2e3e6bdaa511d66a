"""Attribution of one event by subscription, coupon, cookie, history and IP address, over
what a `Reader` reads."""

from dataclasses import dataclass, field
from datetime import datetime

from ..attribution import (
    COOKIES_ONLY,
    HISTORY_AND_COOKIES,
    SOURCE_IP,
    Attribution,
    PartnerState,
    Policy,
    Renewal,
    Touch,
    attribute,
    by_coupon,
    by_subscription,
    valid_clicks,
)
from ..selectors import Chain
from .reader import Reader


@dataclass(frozen=True)
class Tracked:
    attribution: Attribution
    partners: dict[int, PartnerState]  # for everything looked at
    cookie: list[Touch] = field(default_factory=list)  # the cookie clicks that count
    ip: list[Touch] = field(default_factory=list)  # the click of the same IP that decided
    coupon: list[Touch] = field(default_factory=list)  # the coupon that decided (SPEC §11)
    # A renewal of a subscription whose first order was received: its partners (SPEC §10).
    renewal: Renewal | None = None


def needs_history(policy: Policy, *, counted: bool, by_ip: bool, credits: bool) -> bool:
    """Whether attribution reads the contact's history: with `history_and_cookies`, when no
    cookie click counts. When the event names every partner it credits (`credits` false),
    the history still matters if the IP address could decide: the click that decides is
    added to the history."""
    return not counted and policy.tracking_method == HISTORY_AND_COOKIES and (credits or by_ip)


def looks_by_ip(policy: Policy, ip: str | None) -> bool:
    """Whether attribution may look at the clicks of the event's IP address."""
    return bool(ip and policy.use_ip_address and policy.tracking_method != COOKIES_ONLY)


def track(
    *,
    reader: Reader,
    policy: Policy,
    chains: dict[int, Chain],
    email: str,
    at: datetime,
    clicks: list[Touch],
    ip: str | None,
    credits: bool = True,
    coupon_code: str | None = None,
    subscription: dict | None = None,
) -> Tracked:
    """Attribution by coupon, cookie, history and IP (not explicit) of an event of the
    contact `email` (normalised); `chains` holds the clicked partners and gets the
    history's. A source is read only when those before it found nothing, as `attribute`
    would not look at it; the history before the event writes the contact. The coupon is
    always read when the event names one: an ignored coupon is traced. A renewal
    (`subscription` {id, cycle}, cycle 2 and on) reads its first order: when it was
    received, its partners decide and nothing after the cookie is read."""
    partners = {
        t.partner_id: chains[t.partner_id].partner.state() for t in clicks if t.partner_id in chains
    }
    counted = valid_clicks(clicks, partners, at)
    renewal = None
    if subscription and subscription["cycle"] >= 2:
        renewal = by_subscription(reader.first_order(subscription["id"]), subscription["cycle"])
    couponed, coupon_touches = None, []
    if coupon_code and renewal is None:
        coupon = reader.coupon(coupon_code)
        couponed = by_coupon(coupon_code, coupon, at)
        if couponed.partner_id is not None:
            partners[coupon.partner_id] = coupon.partner
            coupon_touches = [Touch(ref=coupon.code, partner_id=coupon.partner_id, at=at)]
    history, ip_found = [], []
    by_ip = looks_by_ip(policy, ip)
    decided = bool(counted or coupon_touches or renewal)
    if needs_history(policy, counted=decided, by_ip=by_ip, credits=credits):
        history, found = reader.history(
            email=email, at=at, rule=policy.partner_selection, chains=chains
        )
        partners.update(found)
    if not decided and not history and by_ip:
        ip_found, found = reader.ip_clicks(ip=ip, at=at)
        partners.update(found)
    result = attribute(
        policy=policy,
        at=at,
        partners=partners,
        cookie_clicks=counted,
        history=history,
        ip_clicks=ip_found,
        coupon=couponed,
        renewal=renewal,
    )
    chosen = [t for t in ip_found if t.ref == result.ref] if result.source == SOURCE_IP else []
    return Tracked(
        attribution=result,
        partners=partners,
        cookie=counted,
        ip=chosen,
        coupon=coupon_touches,
        renewal=renewal,
    )
