"""commissions.attribution: every tracking method x selection x IP x cookie x history."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from commissions.attribution import (
    NOBODY,
    Attribution,
    FirstOrder,
    PartnerState,
    Policy,
    Touch,
    attribute,
    by_subscription,
    valid_clicks,
)
from partners.tokens import TokenClick, decode_token, encode_token

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)

# Partners: cookie clicks on A (first) and B (last); history H1 (earlier) and H2 (later);
# IP clicks on I1 (earlier) and I2 (later). Every one active, 30 cookie days.
A, B, H1, H2, I1, I2, SLEEPY = 1, 2, 3, 4, 5, 6, 7
PARTNERS = {
    pid: PartnerState(id=pid, active=True, cookie_days=30) for pid in (A, B, H1, H2, I1, I2)
}
PARTNERS[SLEEPY] = PartnerState(id=SLEEPY, active=False, cookie_days=None)


def token_clicks(days_ago_a: int, days_ago_b: int) -> str:
    clicks = [
        TokenClick(click_id=uuid.UUID(int=1), partner_id=A, at=NOW - days_ago_a * DAY),
        TokenClick(click_id=uuid.UUID(int=2), partner_id=B, at=NOW - days_ago_b * DAY),
    ]
    return encode_token(clicks)


def touches_from(token: str) -> list[Touch]:
    return [
        Touch(ref=c.click_id.hex, partner_id=c.partner_id, at=c.at) for c in decode_token(token)
    ]


COOKIES = {
    "cookie-present": lambda: touches_from(token_clicks(5, 2)),
    "cookie-expired": lambda: touches_from(token_clicks(40, 31)),
    "cookie-forged": lambda: touches_from(token_clicks(5, 2)[:-3] + "abc"),
}
HISTORY = {
    "history-present": [
        Touch(ref="h1", partner_id=H1, at=NOW - 20 * DAY, expires_at=NOW + 10 * DAY),
        Touch(ref="h2", partner_id=H2, at=NOW - 10 * DAY, expires_at=None),
    ],
    "history-absent": [],
}
IP_CLICKS = [
    Touch(ref="i1", partner_id=I1, at=NOW - 3 * DAY),
    Touch(ref="i2", partner_id=I2, at=NOW - 1 * DAY),
]


def expected(method: str, rule: str, ip_on: bool, cookie: str, history: str) -> tuple:
    """SPEC §4 as a table: (partner, source) for one combination."""
    first = rule == "first"
    if cookie == "cookie-present":
        return (A if first else B, "cookie")
    if method == "history_and_cookies" and history == "history-present":
        return (H1 if first else H2, "history")
    if ip_on and method != "cookies_only":
        return (I1 if first else I2, "ip")
    return (None, None)


@pytest.mark.parametrize("history", list(HISTORY))
@pytest.mark.parametrize("cookie", list(COOKIES))
@pytest.mark.parametrize("ip_on", [False, True], ids=["ip-off", "ip-on"])
@pytest.mark.parametrize("rule", ["first", "last"])
@pytest.mark.parametrize("method", ["cookie", "history_and_cookies", "cookies_only"])
def test_every_combination(method, rule, ip_on, cookie, history):
    policy = Policy(partner_selection=rule, tracking_method=method, use_ip_address=ip_on)

    result = attribute(
        policy=policy,
        at=NOW,
        partners=PARTNERS,
        cookie_clicks=COOKIES[cookie](),
        history=HISTORY[history],
        ip_clicks=IP_CLICKS,
    )

    assert (result.partner_id, result.source) == expected(method, rule, ip_on, cookie, history)
    assert result.rule == (rule if result.source else None)


@pytest.mark.parametrize("method", ["cookie", "history_and_cookies", "cookies_only"])
def test_an_explicit_partner_wins_over_everything(method):
    result = attribute(
        policy=Policy(tracking_method=method, use_ip_address=True),
        at=NOW,
        partners=PARTNERS,
        explicit_partner_id=H2,
        cookie_clicks=touches_from(token_clicks(5, 2)),
        history=HISTORY["history-present"],
        ip_clicks=IP_CLICKS,
    )
    assert result == Attribution(partner_id=H2, source="explicit")


def test_cookie_days_are_counted_from_each_click_at_the_event_time():
    partners = {**PARTNERS, B: PartnerState(id=B, active=True, cookie_days=1)}
    clicks = touches_from(token_clicks(5, 2))  # B clicked 2 days ago, B's window is 1 day
    result = attribute(
        policy=Policy(partner_selection="last"), at=NOW, partners=partners, cookie_clicks=clicks
    )
    assert (result.partner_id, result.ref) == (A, uuid.UUID(int=1).hex)


def test_a_partner_without_cookie_days_counts_for_ever():
    partners = {**PARTNERS, A: PartnerState(id=A, active=True, cookie_days=None)}
    clicks = touches_from(token_clicks(3650, 400))
    result = attribute(policy=Policy(), at=NOW, partners=partners, cookie_clicks=clicks)
    assert result.partner_id == A


def test_inactive_partners_are_skipped_in_every_source():
    sleepy_click = [Touch(ref="s", partner_id=SLEEPY, at=NOW - DAY)]
    sleepy_history = [Touch(ref="s", partner_id=SLEEPY, at=NOW - DAY, expires_at=None)]
    policy = Policy(tracking_method="history_and_cookies", use_ip_address=True)
    result = attribute(
        policy=policy,
        at=NOW,
        partners=PARTNERS,
        cookie_clicks=sleepy_click,
        history=sleepy_history,
        ip_clicks=sleepy_click,
    )
    assert result == NOBODY


def test_expired_history_and_clicks_after_the_event_do_not_count():
    policy = Policy(tracking_method="history_and_cookies")
    expired = [Touch(ref="h", partner_id=H1, at=NOW - 20 * DAY, expires_at=NOW - DAY)]
    future_click = [Touch(ref="c", partner_id=A, at=NOW + DAY)]
    result = attribute(
        policy=policy, at=NOW, partners=PARTNERS, cookie_clicks=future_click, history=expired
    )
    assert result == NOBODY


def test_unknown_partner_ids_in_a_token_do_not_count():
    clicks = [Touch(ref="x", partner_id=999, at=NOW - DAY)]
    assert attribute(policy=Policy(), at=NOW, partners=PARTNERS, cookie_clicks=clicks) == NOBODY
    assert valid_clicks(clicks, PARTNERS, NOW) == []


def test_the_trace_names_source_rule_and_click():
    result = attribute(
        policy=Policy(partner_selection="first"),
        at=NOW,
        partners=PARTNERS,
        cookie_clicks=touches_from(token_clicks(5, 2)),
    )
    assert result.trace() == {
        "source": "cookie",
        "rule": "first",
        "ref": uuid.UUID(int=1).hex,
        "ref_at": (NOW - 5 * DAY).isoformat(),
    }


# --- Subscriptions (SPEC §10) ------------------------------------------------------------


def test_a_renewal_is_credited_to_its_first_orders_partners_ahead_of_every_source():
    first = FirstOrder(order_id="sub-1-c1", at=NOW - 30 * DAY, lead_partner_id=A, sale_partner_id=B)
    renewal = by_subscription(first, 2)

    result = attribute(
        policy=Policy(),
        at=NOW,
        partners=PARTNERS,
        explicit_partner_id=H1,
        cookie_clicks=[Touch(ref="c", partner_id=H2, at=NOW - DAY)],
        renewal=renewal,
    )

    assert result == Attribution(
        partner_id=B, source="subscription", ref="sub-1-c1", ref_at=first.at
    )
    assert renewal.lead == Attribution(
        partner_id=A, source="subscription", ref="sub-1-c1", ref_at=first.at
    )


@pytest.mark.parametrize(("cycle", "known"), [(1, True), (2, False)], ids=["first", "unknown"])
def test_a_first_payment_or_a_renewal_without_its_first_order_is_a_new_order(cycle, known):
    first = FirstOrder("sub-1-c1", NOW, A, B) if known else None

    assert by_subscription(first, cycle) is None
