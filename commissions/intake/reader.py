"""What an event's rules read, behind one interface for the API and the importer."""

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from partners.models import Partner
from partners.tokens import decode_token

from ..attribution import EXPLICIT, Attribution, CouponState, FirstOrder, PartnerState, Touch
from ..selectors import (
    Chain,
    EngineSettings,
    coupons_by_code,
    engine_with_chains,
    first_orders,
    history_picks,
    ip_clicks,
    partner_chains,
)


def cookie_clicks(token: str) -> list[Touch]:
    """The clicks a tracking token carries (none for an empty or unreadable token)."""
    return [
        Touch(ref=c.click_id.hex, partner_id=c.partner_id, at=c.at) for c in decode_token(token)
    ]


def explicit(partner: Partner | None) -> Attribution | None:
    """The attribution of a partner the event names (`lead_partner`, `sale_partner`)."""
    return Attribution(partner_id=partner.pk, source=EXPLICIT) if partner else None


class Reader(Protocol):
    """Where `track` reads the sources other than the explicit partner: a renewal's first
    order, the coupon the event names, then (each only when the sources before it found
    nothing, as `attribute` would not look at it) the history and the IP address's clicks."""

    def first_order(self, subscription_id: str) -> FirstOrder | None:
        """The first order (cycle 1) of the subscription, as recorded before this event;
        None: never received (SPEC §10)."""
        ...

    def coupon(self, code: str) -> CouponState | None:
        """The stored coupon of `code` (any case) with its partner's state; None: unknown."""
        ...

    def history(
        self, *, email: str, at: datetime, rule: str, chains: dict[int, Chain]
    ) -> tuple[list[Touch], dict[int, PartnerState]]:
        """The history entry of the contact (by normalised email) the rule picks at `at`,
        with its partner; its partner's chain added to `chains`."""
        ...

    def ip_clicks(self, *, ip: str, at: datetime) -> tuple[list[Touch], dict[int, PartnerState]]:
        """The recent clicks of active partners from `ip`, with their partners."""
        ...

    def chains(self, partner_ids: Iterable[int | None], chains: dict[int, Chain]) -> None:
        """Add to `chains` those of the partners `partner_ids` it lacks (the partners an
        event credits, found by its plan)."""
        ...


class DatabaseReader:
    """The API's reader: one event, read as a batch of one by the selectors."""

    def engine_and_chains(
        self, partner_ids: Iterable[int | None]
    ) -> tuple[EngineSettings, dict[int, Chain]]:
        return engine_with_chains(partner_ids)

    def first_order(self, subscription_id: str) -> FirstOrder | None:
        return first_orders([subscription_id]).get(subscription_id)

    def coupon(self, code: str) -> CouponState | None:
        return coupons_by_code([code]).get(code.lower())

    def history(
        self, *, email: str, at: datetime, rule: str, chains: dict[int, Chain]
    ) -> tuple[list[Touch], dict[int, PartnerState]]:
        found = history_picks([(0, email, at)], rule=rule).get(0)
        if found is None:
            return [], {}
        touch, chain = found
        chains[touch.partner_id] = chain
        return [touch], {touch.partner_id: chain.partner.state()}

    def ip_clicks(self, *, ip: str, at: datetime) -> tuple[list[Touch], dict[int, PartnerState]]:
        return ip_clicks([(0, ip, at)])[0]

    def chains(self, partner_ids: Iterable[int | None], chains: dict[int, Chain]) -> None:
        missing = {pk for pk in partner_ids if pk is not None and pk not in chains}
        if missing:  # one query
            chains.update(partner_chains(missing))
