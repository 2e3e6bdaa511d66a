"""Which partner a lead or sale is credited to (SPEC §4). Pure: no ORM, no clock.

The selectors load everything a decision needs into the frozen dataclasses below; `attribute`
runs the sources in order (subscription, explicit, coupon, cookie, referral history, IP
address) and stops at the first that yields a partner. The result carries its trace, kept on
every commission.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import NamedTuple

from partners.choices import PartnerSelection, TrackingMethod, click_counts_at, first_or_last

FIRST, LAST = PartnerSelection.FIRST, PartnerSelection.LAST
COOKIE = TrackingMethod.COOKIE
HISTORY_AND_COOKIES, COOKIES_ONLY = TrackingMethod.HISTORY_AND_COOKIES, TrackingMethod.COOKIES_ONLY

EXPLICIT, SOURCE_COOKIE, SOURCE_HISTORY, SOURCE_IP = "explicit", "cookie", "history", "ip"
# The source named in a trace when the contact's lead partner was fixed by an earlier event.
SOURCE_CONTACT = "contact"
SOURCE_COUPON = "coupon"
# A subscription's renewal, credited to the partners of its first order (SPEC §10).
SOURCE_SUBSCRIPTION = "subscription"


@dataclass(frozen=True)
class Policy:
    """The attribution part of the Referral Partner Defaults, as a value."""

    partner_selection: str = LAST
    tracking_method: str = COOKIE
    use_ip_address: bool = False


@dataclass(frozen=True)
class PartnerState:
    """What attribution needs to know of a partner."""

    id: int
    active: bool
    cookie_days: int | None


@dataclass(frozen=True)
class Touch:
    """A click (from the cookie or the same IP) or a referral history entry."""

    ref: str  # the click id or the history entry id
    partner_id: int
    at: datetime
    expires_at: datetime | None = None  # history entries only; clicks use cookie_days


@dataclass(frozen=True)
class Attribution:
    partner_id: int | None = None
    source: str | None = None  # explicit / cookie / history / ip, or None: nobody
    rule: str | None = None  # first / last, for the sources that chose among several
    ref: str | None = None
    ref_at: datetime | None = None
    # The event's coupon when it did not decide: {"code", "ignored": why} (SPEC §11).
    coupon: Mapping | None = None

    def trace(self) -> dict:
        trace = {
            "source": self.source,
            "rule": self.rule,
            "ref": self.ref,
            "ref_at": self.ref_at.isoformat() if self.ref_at else None,
        }
        if self.coupon:
            trace["coupon"] = dict(self.coupon)
        return trace


NOBODY = Attribution()


@dataclass(frozen=True)
class CouponState:
    """A stored coupon as attribution needs it (SPEC §11)."""

    code: str  # as stored
    partner_id: int
    active: bool
    partner: PartnerState


COUPON_UNKNOWN = "unknown coupon"
COUPON_INACTIVE = "inactive coupon"
COUPON_PARTNER_INACTIVE = "the coupon's partner is inactive"


def by_coupon(code: str | None, coupon: CouponState | None, at: datetime) -> Attribution | None:
    """The attribution an event's coupon gives: its partner (source `coupon`, the stored
    code as ref) when the coupon and its partner are active; else None with nothing to
    credit, or an Attribution of nobody whose `coupon` says why it was ignored."""
    if not code:
        return None
    if coupon is None:
        return Attribution(coupon={"code": code, "ignored": COUPON_UNKNOWN})
    if not coupon.active:
        return Attribution(coupon={"code": code, "ignored": COUPON_INACTIVE})
    if not coupon.partner.active:
        return Attribution(coupon={"code": code, "ignored": COUPON_PARTNER_INACTIVE})
    return Attribution(
        partner_id=coupon.partner_id, source=SOURCE_COUPON, ref=coupon.code, ref_at=at
    )


@dataclass(frozen=True)
class FirstOrder:
    """A subscription's first order (cycle 1) as attribution needs it (SPEC §10)."""

    order_id: str  # its event id
    at: datetime
    lead_partner_id: int | None
    sale_partner_id: int | None


class Renewal(NamedTuple):
    """The lead and sale attributions of a renewal: its first order's partners."""

    lead: Attribution
    sale: Attribution


def by_subscription(first: FirstOrder | None, cycle: int) -> Renewal | None:
    """A renewal (cycle 2 and on) whose subscription's first order was received is credited
    to that order's lead and sale partners (source `subscription`, the first order as ref),
    whatever the renewal names or carries, nobody where the first order credited nobody.
    None for a first payment, or a renewal whose first order never came: attributed as a
    new order."""
    if cycle < 2 or first is None:
        return None
    lead, sale = (
        Attribution(partner_id=pk, source=SOURCE_SUBSCRIPTION, ref=first.order_id, ref_at=first.at)
        for pk in (first.lead_partner_id, first.sale_partner_id)
    )
    return Renewal(lead, sale)


def click_counts(touch: Touch, partner: PartnerState | None, at: datetime) -> bool:
    """A click counts while its partner is active and within the partner's cookie days (the
    rule of `partners.choices`, which the sign-up's referring partner follows too)."""
    if partner is None:
        return False
    return click_counts_at(
        clicked_at=touch.at, active=partner.active, cookie_days=partner.cookie_days, at=at
    )


def history_counts(touch: Touch, partner: PartnerState | None, at: datetime) -> bool:
    """A history entry counts while its partner is active and it has not expired."""
    if partner is None or not partner.active or touch.at > at:
        return False
    return touch.expires_at is None or touch.expires_at > at


def pick(touches: Iterable[Touch], rule: str) -> Touch | None:
    """The first or the last touch by time, ties by click id (`partners.choices`)."""
    return first_or_last(touches, rule, key=lambda t: (t.at, t.ref))


def attribute(
    *,
    policy: Policy,
    at: datetime,
    partners: Mapping[int, PartnerState],
    explicit_partner_id: int | None = None,
    cookie_clicks: Iterable[Touch] = (),
    history: Iterable[Touch] = (),
    ip_clicks: Iterable[Touch] = (),
    coupon: Attribution | None = None,
    renewal: Renewal | None = None,
) -> Attribution:
    """The credited partner and how it was found, or NOBODY. `coupon`: what `by_coupon`
    made of the event's coupon; one it ignored is named in the trace of what decided.
    `renewal`: what `by_subscription` made of the event's subscription, which decides
    first (the sale partner of its first order)."""
    if renewal is not None:
        return renewal.sale
    if explicit_partner_id is not None:
        return Attribution(partner_id=explicit_partner_id, source=EXPLICIT)
    if coupon is not None and coupon.partner_id is not None:
        return coupon
    ignored = coupon.coupon if coupon is not None else None
    found = _by_touches(policy, at, partners, cookie_clicks, history, ip_clicks)
    return replace(found, coupon=ignored) if ignored else found


def _by_touches(
    policy: Policy,
    at: datetime,
    partners: Mapping[int, PartnerState],
    cookie_clicks: Iterable[Touch],
    history: Iterable[Touch],
    ip_clicks: Iterable[Touch],
) -> Attribution:
    """Cookie, referral history, IP address: the first that yields a partner."""
    rule = policy.partner_selection
    sources = [(SOURCE_COOKIE, cookie_clicks, click_counts)]
    if policy.tracking_method == HISTORY_AND_COOKIES:
        sources.append((SOURCE_HISTORY, history, history_counts))
    if policy.use_ip_address and policy.tracking_method != COOKIES_ONLY:
        sources.append((SOURCE_IP, ip_clicks, click_counts))
    for source, touches, counts in sources:
        chosen = pick((t for t in touches if counts(t, partners.get(t.partner_id), at)), rule)
        if chosen is not None:
            return Attribution(
                partner_id=chosen.partner_id,
                source=source,
                rule=rule,
                ref=chosen.ref,
                ref_at=chosen.at,
            )
    return NOBODY


def valid_clicks(
    clicks: Iterable[Touch], partners: Mapping[int, PartnerState], at: datetime
) -> list[Touch]:
    """The clicks that count at `at`: they are added to the contact's referral history."""
    return [t for t in clicks if click_counts(t, partners.get(t.partner_id), at)]


# --- Guards (SPEC §9) ---------------------------------------------------------------------

# The guard named in a trace when a partner's own purchase pays them nothing.
GUARD_SELF_REFERRAL = "self_referral"


def is_self_referral(buyer_email: str, partner_emails: Iterable[str]) -> bool:
    """True when the buyer is the credited partner: the buyer's email is one of the
    partner's own (partner email, login email), compared without case or outer spaces."""
    buyer = buyer_email.strip().lower()
    return bool(buyer) and buyer in {email.strip().lower() for email in partner_emails if email}


# --- History and the contact's lead partner ---------------------------------------------


def expiry(at: datetime, cookie_days: int | None) -> datetime | None:
    """When a history entry of a click at `at` stops counting: the partner's cookie days
    after the click (None: never)."""
    return at + timedelta(days=cookie_days) if cookie_days else None


def history_pick(entries: Sequence[tuple[Touch, PartnerState]], rule: str):
    """The one history entry the rule picks among `entries` that count (the earliest or
    the latest, ties by entry id, as the selectors' SQL orders them), with its partner; or
    None. For entries not stored yet (an import batch's), with the stored one read for the
    same event."""
    return first_or_last(entries, rule, key=lambda pair: (pair[0].at, int(pair[0].ref)))


class ContactLead(NamedTuple):
    """A contact's lead partner, when it was fixed and how (SPEC §4), as the rules see it."""

    partner_id: int | None = None
    set_at: datetime | None = None
    trace: dict | None = None


def lead_trace(attribution: Attribution, at: datetime) -> dict:
    """The trace a contact keeps of how its lead partner was fixed, and when."""
    return {**attribution.trace(), "fixed_at": at.isoformat()}


def contact_lead(
    current: ContactLead, attribution: Attribution, at: datetime
) -> tuple[ContactLead | None, int | None, dict]:
    """The lead partner an event of this contact gets, with its trace, and the contact's
    new lead when this event fixes it: the first attribution fixes it; later events get the
    fixed one (source "contact")."""
    if current.partner_id is None:
        if attribution.partner_id is None:
            return None, None, NOBODY.trace()
        trace = lead_trace(attribution, at)
        return ContactLead(attribution.partner_id, at, trace), attribution.partner_id, trace
    first = current.trace or {}
    return (
        None,
        current.partner_id,
        {**first, "source": SOURCE_CONTACT, "first_source": first.get("source")},
    )
