"""Attribution of one event by cookie, history and IP address, over what a `Reader` reads."""

from dataclasses import dataclass, field
from datetime import datetime

from ..attribution import (
    COOKIES_ONLY,
    HISTORY_AND_COOKIES,
    SOURCE_IP,
    Attribution,
    PartnerState,
    Policy,
    Touch,
    attribute,
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
) -> Tracked:
    """Attribution by cookie, history and IP (not explicit) of an event of the contact
    `email` (normalised); `chains` holds the clicked partners and gets the history's. A
    source is read only when those before it found nothing, as `attribute` would not look
    at it; the history before the event writes the contact."""
    partners = {
        t.partner_id: chains[t.partner_id].partner.state() for t in clicks if t.partner_id in chains
    }
    counted = valid_clicks(clicks, partners, at)
    history, ip_found = [], []
    by_ip = looks_by_ip(policy, ip)
    if needs_history(policy, counted=bool(counted), by_ip=by_ip, credits=credits):
        history, found = reader.history(
            email=email, at=at, rule=policy.partner_selection, chains=chains
        )
        partners.update(found)
    if not counted and not history and by_ip:
        ip_found, found = reader.ip_clicks(ip=ip, at=at)
        partners.update(found)
    result = attribute(
        policy=policy,
        at=at,
        partners=partners,
        cookie_clicks=counted,
        history=history,
        ip_clicks=ip_found,
    )
    chosen = [t for t in ip_found if t.ref == result.ref] if result.source == SOURCE_IP else []
    return Tracked(attribution=result, partners=partners, cookie=counted, ip=chosen)
