"""Pure rules of the partner sign-up (SPEC §9): referring partner, parent, confirm token."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core import signing

from commissions.attribution import PartnerState, Policy, Touch, attribute
from partners.signup import (
    CONFIRM_SALT,
    ConfirmClaim,
    ConfirmLinkExpired,
    ReferrerState,
    confirm_token_make,
    confirm_token_read,
    referring_partner_id,
    signup_parent_id,
)
from partners.tokens import TokenClick

AT = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
ACTIVE = ReferrerState(status="active", cookie_days=None)


def click(partner_id: int, days_ago: float) -> TokenClick:
    return TokenClick(
        click_id=uuid.uuid4(), partner_id=partner_id, at=AT - timedelta(days=days_ago)
    )


@pytest.mark.parametrize(
    ("selection", "expected"),
    [pytest.param("last", 2, id="last-click"), pytest.param("first", 1, id="first-click")],
)
def test_the_selection_rule_picks_the_first_or_last_click(selection, expected):
    clicks = [click(1, 5), click(2, 1)]

    chosen = referring_partner_id(clicks, {1: ACTIVE, 2: ACTIVE}, selection=selection, at=AT)

    assert chosen == expected


@pytest.mark.parametrize(
    ("state", "days_ago"),
    [
        pytest.param(ReferrerState("inactive", None), 1, id="inactive"),
        pytest.param(ReferrerState("pending", None), 1, id="pending"),
        pytest.param(ReferrerState("rejected", None), 1, id="rejected"),
        pytest.param(ReferrerState("active", 30), 30.01, id="past-cookie-days"),
        pytest.param(ACTIVE, -0.01, id="click-after-the-sign-up"),
        pytest.param(None, 1, id="unknown-partner"),
    ],
)
def test_a_click_that_would_not_count_in_attribution_names_nobody(state, days_ago):
    partners = {} if state is None else {7: state}

    assert referring_partner_id([click(7, days_ago)], partners, selection="last", at=AT) is None


def test_a_click_that_does_not_count_leaves_the_other_one():
    clicks = [click(1, 5), click(2, 1)]
    partners = {1: ACTIVE, 2: ReferrerState("pending", None)}

    assert referring_partner_id(clicks, partners, selection="last", at=AT) == 1


@pytest.mark.parametrize("selection", ["first", "last"])
def test_clicks_of_the_same_instant_are_picked_as_attribution_picks_them(selection):
    """The tie-break of attribution (click id), not the order of the clicks in the token."""
    low = TokenClick(click_id=uuid.UUID(int=1), partner_id=1, at=AT - timedelta(days=1))
    high = TokenClick(click_id=uuid.UUID(int=2), partner_id=2, at=low.at)
    touches = [Touch(ref=c.click_id.hex, partner_id=c.partner_id, at=c.at) for c in (high, low)]
    states = {pk: PartnerState(id=pk, active=True, cookie_days=None) for pk in (1, 2)}
    expected = attribute(
        policy=Policy(partner_selection=selection), at=AT, partners=states, cookie_clicks=touches
    ).partner_id

    for order in ([low, high], [high, low]):
        chosen = referring_partner_id(order, {1: ACTIVE, 2: ACTIVE}, selection=selection, at=AT)
        assert chosen == expected == (1 if selection == "first" else 2)


def test_a_click_on_the_last_cookie_day_still_counts():
    partners = {3: ReferrerState("active", 30)}

    assert referring_partner_id([click(3, 30)], partners, selection="last", at=AT) == 3


@pytest.mark.parametrize(
    ("mode", "fixed_status", "expected"),
    [
        pytest.param("none", "active", None, id="none"),
        pytest.param("referring", "active", 11, id="referring"),
        pytest.param("fixed", "active", 22, id="fixed-active"),
        pytest.param("fixed", "inactive", None, id="fixed-inactive"),
        pytest.param("fixed", "pending", None, id="fixed-pending"),
        pytest.param("fixed", None, None, id="fixed-missing"),
    ],
)
def test_the_parent_follows_the_setting(mode, fixed_status, expected):
    parent = signup_parent_id(mode=mode, referrer_id=11, fixed_id=22, fixed_status=fixed_status)

    assert parent == expected


def test_the_referring_mode_without_a_referrer_gives_no_parent():
    parent = signup_parent_id(
        mode="referring", referrer_id=None, fixed_id=22, fixed_status="active"
    )

    assert parent is None


def test_a_confirm_token_names_the_partner_and_the_lowercased_email():
    token = confirm_token_make(partner_id=42, email="Ada@Example.COM")

    claim = confirm_token_read(token, max_age=timedelta(days=7))

    assert claim == ConfirmClaim(partner_id=42, email="ada@example.com")


@pytest.mark.parametrize(
    "make",
    [  # made when the test runs, at the test's clock (not when the tests are collected)
        pytest.param(lambda: "", id="empty"),
        pytest.param(lambda: "not-a-token", id="garbage"),
        pytest.param(
            lambda: signing.dumps({"p": 42, "e": "a@example.com"}, salt="another-salt"),
            id="other-salt",
        ),
        pytest.param(
            lambda: signing.dumps({"p": "42", "e": "a@example.com"}, salt=CONFIRM_SALT), id="id"
        ),
        pytest.param(
            lambda: signing.dumps([42, "a@example.com"], salt=CONFIRM_SALT), id="not-a-dict"
        ),
        pytest.param(lambda: "x" * 600, id="too-long"),
    ],
)
def test_anything_but_a_genuine_token_names_nobody(make):
    assert confirm_token_read(make(), max_age=timedelta(days=7)) is None


def test_a_tampered_token_names_nobody():
    token = confirm_token_make(partner_id=42, email="ada@example.com")
    head, _, signature = token.rpartition(":")
    forged = f"{head}:{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"

    assert confirm_token_read(forged, max_age=timedelta(days=7)) is None


def test_an_old_token_is_expired():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(signing.time, "time", lambda: AT.timestamp() - 8 * 86400)
        token = confirm_token_make(partner_id=42, email="ada@example.com")

    with pytest.raises(ConfirmLinkExpired):
        confirm_token_read(token, max_age=timedelta(days=7))
