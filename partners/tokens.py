"""The tracking token `rp_ref` (SPEC §4): signed first and last click. Pure, no database.

A token is `django.core.signing.dumps({"v": 1, "c": [[click_hex, partner_id, epoch, until],
...]})` with a salt of its own: the first click, then the last one when it differs. `until`
(the epoch at which the click's partner window ends) is left out for a click without limit;
tokens made before it was added carry three values per click and still decode. The signature
is timestamped, so a token older than TOKEN_MAX_AGE decodes to no clicks, as does
anything forged, truncated, malformed or of another format.
"""

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.core import signing

TOKEN_SALT = "partners.rp_ref"
TOKEN_VERSION = 1
# The longest a token is honoured after its last click: the cookie's own longest life.
TOKEN_MAX_AGE = 10 * 365 * 24 * 3600
# Longer input is not even looked at (a real token is about 200 characters).
TOKEN_MAX_LENGTH = 2048


@dataclass(frozen=True)
class TokenClick:
    click_id: uuid.UUID
    partner_id: int
    at: datetime
    # When the click stops counting (its partner's cookie days after it); None: no limit, or
    # not known (a token made before tokens carried it).
    until: datetime | None = None


def click_window_end(at: datetime, cookie_days: int | None) -> datetime | None:
    """The end of a click's window: its partner's cookie days after it; None without limit."""
    return at + timedelta(days=cookie_days) if cookie_days else None


def cookie_max_age(clicks: list[TokenClick], *, at: datetime) -> int:
    """The cookie's life in seconds: the longest remaining window of the clicks it carries
    (ten years when one of them has no limit), so a short window of a later click never
    cuts short an earlier click that still counts."""
    ends = [click.until for click in clicks]
    if not ends or None in ends:
        return TOKEN_MAX_AGE
    return max(0, int((max(ends) - at).total_seconds()))


def new_click_id(at: datetime) -> uuid.UUID:
    """A time-ordered UUID (version 7 layout): 48 bits of milliseconds, then random bits."""
    millis = int(at.timestamp() * 1000) & ((1 << 48) - 1)
    value = (millis << 80) | secrets.randbits(80)
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return uuid.UUID(int=value)


def encode_token(clicks: list[TokenClick]) -> str:
    rows = [
        [c.click_id.hex, c.partner_id, int(c.at.timestamp())]
        + ([int(c.until.timestamp())] if c.until else [])
        for c in clicks
    ]
    return signing.dumps({"v": TOKEN_VERSION, "c": rows}, salt=TOKEN_SALT, compress=False)


def decode_token(token: str | None, *, max_age: int = TOKEN_MAX_AGE) -> list[TokenClick]:
    """The token's clicks, first one first; [] for anything that is not a valid token."""
    if not token or not isinstance(token, str) or len(token) > TOKEN_MAX_LENGTH:
        return []
    try:
        data = signing.loads(token, salt=TOKEN_SALT, max_age=max_age)
    except (signing.BadSignature, ValueError, TypeError, UnicodeError):
        return []
    if not isinstance(data, dict) or data.get("v") != TOKEN_VERSION:
        return []
    rows = data.get("c")
    if not isinstance(rows, list) or not 1 <= len(rows) <= 2:
        return []
    clicks = []
    for row in rows:
        click = _click_from_row(row)
        if click is None:
            return []
        clicks.append(click)
    return clicks


def _click_from_row(row: object) -> TokenClick | None:
    if not (isinstance(row, list) and len(row) in (3, 4)):
        return None
    click_hex, partner_id, epoch, *until = row
    if not (isinstance(click_hex, str) and type(partner_id) is int and type(epoch) is int):
        return None
    if until and type(until[0]) is not int:
        return None
    try:
        return TokenClick(
            click_id=uuid.UUID(hex=click_hex),
            partner_id=partner_id,
            at=datetime.fromtimestamp(epoch, tz=UTC),
            until=datetime.fromtimestamp(until[0], tz=UTC) if until else None,
        )
    except (ValueError, OverflowError, OSError):
        return None


def token_after_click(previous: list[TokenClick], click: TokenClick) -> list[TokenClick]:
    """A new click keeps the first click and replaces the last."""
    return [previous[0], click] if previous else [click]
