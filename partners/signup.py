"""Pure rules of the partner sign-up (SPEC §9 "Sign-up"). No database.

- The email confirmation link carries a signed, timestamped token naming the partner and
  the email it was sent to; it works for `SIGNUP_CONFIRM_DAYS` and only while the partner
  still has that email.
- The referring partner is read from the visitor's `rp_ref` token with the rules of a
  cookie click in attribution (`partners.choices`, which attribution imports too): the
  partner is active, the click is within their cookie days, and `partner_selection` picks
  the first or the last click that counts, ties by click id.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core import signing

from .choices import PartnerStatus, click_counts_at, first_or_last
from .models import SignupParent
from .tokens import TokenClick

CONFIRM_SALT = "partners.signup-confirm"
# The sign-up form's trap for robots: a field people never see nor fill.
HONEYPOT_FIELD = "fax"


class ConfirmLinkExpired(Exception):
    """The confirmation link was genuine but is older than it may be."""


@dataclass(frozen=True)
class ConfirmClaim:
    partner_id: int
    email: str  # lower-cased


def confirm_token_make(*, partner_id: int, email: str) -> str:
    return signing.dumps({"p": partner_id, "e": email.lower()}, salt=CONFIRM_SALT, compress=False)


def confirm_token_read(token: str, *, max_age: timedelta) -> ConfirmClaim | None:
    """The partner and email a confirmation token names; None for anything not genuine.

    Raises ConfirmLinkExpired for a genuine token older than `max_age`.
    """
    if not token or len(token) > 512:
        return None
    try:
        data = signing.loads(token, salt=CONFIRM_SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise ConfirmLinkExpired from None
    except (signing.BadSignature, ValueError, TypeError, UnicodeError):
        return None
    if not isinstance(data, dict):
        return None
    partner_id, email = data.get("p"), data.get("e")
    if type(partner_id) is not int or not isinstance(email, str):
        return None
    return ConfirmClaim(partner_id=partner_id, email=email)


@dataclass(frozen=True)
class ReferrerState:
    """What the referring-partner rule needs to know about a partner of the token."""

    status: str
    cookie_days: int | None


def referring_partner_id(
    clicks: list[TokenClick],
    partners: Mapping[int, ReferrerState],
    *,
    selection: str,
    at: datetime,
) -> int | None:
    """The partner whose click in the visitor's token counts at `at`, first or last."""
    counting = [
        click
        for click in clicks
        if (state := partners.get(click.partner_id)) is not None
        and click_counts_at(
            clicked_at=click.at,
            active=state.status == PartnerStatus.ACTIVE,
            cookie_days=state.cookie_days,
            at=at,
        )
    ]
    chosen = first_or_last(counting, selection, key=lambda click: (click.at, click.click_id.hex))
    return chosen.partner_id if chosen is not None else None


def signup_parent_id(
    *,
    mode: str,
    referrer_id: int | None,
    fixed_id: int | None,
    fixed_status: str | None,
) -> int | None:
    """The parent of a new partner: nobody, the referring partner, or the chosen partner
    while that partner is active (else nobody: only active partners recruit)."""
    if mode == SignupParent.REFERRING:
        return referrer_id
    if mode == SignupParent.FIXED and fixed_status == PartnerStatus.ACTIVE:
        return fixed_id
    return None
