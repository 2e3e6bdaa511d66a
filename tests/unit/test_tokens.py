"""The rp_ref token decoder: valid clicks, or none for anything else. No database."""

import base64
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core import signing

from partners.tokens import (
    TOKEN_MAX_AGE,
    TOKEN_SALT,
    TokenClick,
    cookie_max_age,
    decode_token,
    encode_token,
    new_click_id,
    token_after_click,
)

AT = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
A = TokenClick(click_id=uuid.UUID(int=1), partner_id=11, at=AT)
B = TokenClick(click_id=uuid.UUID(int=2), partner_id=22, at=AT + timedelta(hours=1))
C = TokenClick(click_id=uuid.UUID(int=3), partner_id=33, at=AT + timedelta(hours=2))


def test_round_trip():
    assert decode_token(encode_token([A, B])) == [A, B]


def test_a_click_carries_the_end_of_its_window():
    a = TokenClick(click_id=A.click_id, partner_id=11, at=AT, until=AT + timedelta(days=30))
    assert decode_token(encode_token([a, B])) == [a, B]


def test_a_token_made_before_windows_were_carried_still_decodes():
    old = signing.dumps({"v": 1, "c": [[A.click_id.hex, 11, int(AT.timestamp())]]}, salt=TOKEN_SALT)
    assert decode_token(old) == [A]


@pytest.mark.parametrize(
    ("windows", "expected"),
    [
        pytest.param([30, 7], 29, id="the-longer-earlier-window"),
        pytest.param([7, 30], 29, id="the-longer-later-window"),
        pytest.param([30, None], None, id="no-limit-wins"),
        pytest.param([None], None, id="a-click-without-a-known-window"),
        pytest.param([1], 0, id="a-window-already-over"),
    ],
)
def test_the_cookie_lives_as_long_as_the_longest_remaining_window(windows, expected):
    clicks = [
        TokenClick(
            click_id=A.click_id,
            partner_id=11,
            at=AT,
            until=AT + timedelta(days=days) if days else None,
        )
        for days in windows
    ]
    at = AT + timedelta(days=1)
    max_age = cookie_max_age(clicks, at=at)
    assert max_age == (TOKEN_MAX_AGE if expected is None else expected * 24 * 3600)


def test_a_new_click_keeps_the_first_and_replaces_the_last():
    clicks = token_after_click([], A)
    clicks = token_after_click(clicks, B)
    assert clicks == [A, B]
    assert token_after_click(clicks, C) == [A, C]


def _flip_one_byte(token: str) -> str:
    middle = len(token) // 2
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]


@pytest.mark.parametrize(
    "make",
    [
        _flip_one_byte,
        lambda t: signing.dumps(
            {"v": 1, "c": [[A.click_id.hex, 11, 1]]}, key="x" * 50, salt=TOKEN_SALT
        ),
        lambda t: t[: len(t) // 2],
        lambda t: t[:-1],
        lambda t: "",
        lambda t: None,
        lambda t: "x" * 10_240,
        lambda t: base64.b64encode(bytes(range(256)) * 40).decode(),
        lambda t: signing.dumps({"partner": 11, "clicked": "2026-01-01"}, salt=TOKEN_SALT),
        lambda t: signing.dumps({"v": 1, "c": [["nothex", 11, 1]]}, salt=TOKEN_SALT),
        lambda t: signing.dumps({"v": 1, "c": [[A.click_id.hex, "11", 1]]}, salt=TOKEN_SALT),
        lambda t: signing.dumps({"v": 1, "c": []}, salt=TOKEN_SALT),
        lambda t: signing.dumps({"v": 1, "c": [[A.click_id.hex, 11, 10**20]]}, salt=TOKEN_SALT),
        lambda t: signing.dumps([1, 2, 3], salt=TOKEN_SALT),
        lambda t: signing.dumps({"v": 1, "c": [[A.click_id.hex, 11, 1]]}, salt="other"),
        lambda t: "\x00" + t,
        lambda t: t + "é",
    ],
    ids=[
        "one-byte-changed",
        "other-secret",
        "truncated-half",
        "truncated-one-char",
        "empty",
        "none",
        "10kb-garbage",
        "binary-garbage",
        "old-format",
        "bad-click-id",
        "partner-id-not-int",
        "no-clicks",
        "time-out-of-range",
        "not-a-dict",
        "other-salt",
        "nul-byte",
        "non-ascii",
    ],
)
def test_anything_but_a_valid_token_decodes_to_no_clicks(make):
    assert decode_token(make(encode_token([A, B]))) == []


def test_an_old_signature_decodes_to_no_clicks():
    token = encode_token([A])
    assert decode_token(token, max_age=3600) == [A]
    assert decode_token(token, max_age=-1) == []


def test_click_ids_are_time_ordered_uuid7():
    first = new_click_id(AT)
    later = new_click_id(AT + timedelta(milliseconds=1))
    assert first.version == 7
    assert first < later
    assert len({new_click_id(AT) for _ in range(10_000)}) == 10_000
