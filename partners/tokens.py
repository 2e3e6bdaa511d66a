"""The tracking token `rp_ref` (SPEC §4): signed first and last click. Pure, no database.

A token is `django.core.signing.dumps({"v": 1, "c": [[click_hex, partner_id, epoch], ...]})`
with a salt of its own: the first click, then the last one when it differs. The signature
is timestamped, so a token older than TOKEN_MAX_AGE decodes to no clicks, as does
anything forged, truncated, malformed or of another format.
"""

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

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


def new_click_id(at: datetime) -> uuid.UUID:
    """A time-ordered UUID (version 7 layout): 48 bits of milliseconds, then random bits."""
    millis = int(at.timestamp() * 1000) & ((1 << 48) - 1)
    value = (millis << 80) | secrets.randbits(80)
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return uuid.UUID(int=value)


def encode_token(clicks: list[TokenClick]) -> str:
    rows = [[c.click_id.hex, c.partner_id, int(c.at.timestamp())] for c in clicks]
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
    if not (isinstance(row, list) and len(row) == 3):
        return None
    click_hex, partner_id, epoch = row
    if not (isinstance(click_hex, str) and type(partner_id) is int and type(epoch) is int):
        return None
    try:
        return TokenClick(
            click_id=uuid.UUID(hex=click_hex),
            partner_id=partner_id,
            at=datetime.fromtimestamp(epoch, tz=UTC),
        )
    except (ValueError, OverflowError, OSError):
        return None


def token_after_click(previous: list[TokenClick], click: TokenClick) -> list[TokenClick]:
    """A new click keeps the first click and replaces the last."""
    return [previous[0], click] if previous else [click]
