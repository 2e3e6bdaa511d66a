"""The link of a Partner Center invitation (SPEC §12). No database.

Staff invite a partner from the staff partner page; the email carries a one-time link to
set a password, `/partner/invitation/<uid>/<token>/`. The token is Django's password reset
token with a key salt of its own, so a password reset link is no invitation and the other
way round. It works `PARTNER_INVITE_DAYS` days and stops working once used: it hashes the
login's password and last login (as Django's does), and also whether the login is active
and which partner it belongs to, so revoking access (docs/decisions.md) ends every
invitation sent before.
"""

from typing import Any

from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.utils.encoding import force_bytes
from django.utils.http import base36_to_int, urlsafe_base64_encode

VALID = "valid"
EXPIRED = "expired"  # genuine, but older than PARTNER_INVITE_DAYS
INVALID = "invalid"  # forged, cut short, used already, or made before access was revoked


class InvitationTokenGenerator(PasswordResetTokenGenerator):
    key_salt = "partners.invitations.InvitationTokenGenerator"

    def _make_hash_value(self, user: Any, timestamp: int) -> str:
        partner = getattr(user, "partner", None)  # a login without partner: None
        state = f"{user.is_active}:{partner.pk if partner else ''}"
        return f"{super()._make_hash_value(user, timestamp)}{state}"

    def token_state(self, user: Any, token: str | None) -> str:
        """VALID, EXPIRED or INVALID: Django's check, with the invitation's own lifetime
        and the expired case told apart (the page words it)."""
        if user is None or not token:
            return INVALID
        ts_b36, _, rest = token.partition("-")
        try:
            ts = base36_to_int(ts_b36)
        except ValueError:
            return INVALID
        if not rest or not any(
            constant_time_compare(self._make_token_with_timestamp(user, ts, secret), token)
            for secret in [self.secret, *self.secret_fallbacks]
        ):
            return INVALID
        age = self._num_seconds(self._now()) - ts
        return EXPIRED if age > settings.PARTNER_INVITE_DAYS * 86400 else VALID

    def check_token(self, user: Any, token: str | None) -> bool:
        return self.token_state(user, token) == VALID


invitation_tokens = InvitationTokenGenerator()


def invitation_path(user: Any) -> str:
    """The path of a new invitation link for the partner's login."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return reverse("partner:invitation", args=[uid, invitation_tokens.make_token(user)])
